"""Likely causes of a top-1 far below the published figure.

A figure means something only under its conditions: when the run's input
size, crop fraction or number of crops differ from those the published
figure was measured under, that is said first, with the flag that matches
them. The usual culprits otherwise are a label offset (1-based labels, a
1001-class model), the wrong preprocess_input mode, and a different resize /
crop. The offset ones are checked on the first batches: if shifting every
label by one explains the predictions far better, the labels are off by one.

Both functions take what `tf_topk.evaluate` takes: a dataset of batches, or
a per-worker dataset function of a `tf.distribute.InputContext` (they read
the whole dataset it returns for one input pipeline).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf
from absl import logging

from tf_topk import distribute, listeners, models, preprocessing, results


def _crops(num_crops: int) -> str:
    return "single crop" if num_crops == 1 else f"{num_crops} crops"


def condition_differences(
    conditions: models.Conditions | None,
    options: preprocessing.Options | None,
) -> list[str]:
    """How the run's conditions differ from the published figure's.

    One message a differing condition (input size, crop fraction, number of
    crops), each naming the flag that matches the published one; a
    condition the source leaves unknown (None) is not compared.

    Args:
        conditions: the published figure's conditions (None: unknown).
        options: the run's resolved preprocessing (None: unknown).

    >>> published = models.Conditions(image_size=299, crop_fraction=0.875)
    >>> condition_differences(published, preprocessing.Options())[0][:47]
    'conditions differ: the published figure is at 2'
    """
    if conditions is None or options is None:
        return []
    differences = []
    size = conditions.image_size
    if size is not None and size != options.image_size:
        differences.append(
            f"conditions differ: the published figure is at {size} px, this "
            f"run at {options.image_size} px; --config.model.image_size={size} "
            "matches it."
        )
    fraction = conditions.crop_fraction
    if fraction is not None and abs(fraction - options.crop_fraction) > 1e-6:
        differences.append(
            f"conditions differ: the published figure uses a centre crop of "
            f"{fraction:.4g}, this run {options.crop_fraction:.4g}; "
            f"--config.preprocess.crop_fraction={fraction:.4g} matches it."
        )
    crops = conditions.num_crops
    if crops is not None and crops != options.num_crops:
        differences.append(
            f"conditions differ: the published figure is {_crops(crops)}, "
            f"this run {_crops(options.num_crops)}; "
            f"--config.data.num_crops={crops} matches it."
        )
    return differences


def label_shift_accuracy(
    model,
    dataset: tf.data.Dataset | distribute.DatasetFn,
    *,
    num_batches: int = 4,
) -> dict[int, float]:
    """Top-1 on the first batches with every label shifted by -1, 0 and +1.

    Args:
        model: the evaluated model.
        dataset: batches of (images, labels[, weights]), or a dataset
            function of a `tf.distribute.InputContext` (see
            `tf_topk.distribute.whole_dataset`).
        num_batches: how many batches to read.

    Returns:
        {shift: accuracy}; an example whose shifted label leaves the class
        range counts as wrong.
    """
    num_classes = int(model.output_shape[-1])
    correct = {-1: 0, 0: 0, 1: 0}
    total = 0
    dataset = distribute.whole_dataset(dataset)
    for images, labels, *_ in dataset.take(num_batches):
        if labels.shape.rank != 1:
            return {}
        predicted = tf.argmax(
            models.predict(model, images, num_classes),
            axis=1,
            output_type=tf.int32,
        )
        labels = tf.cast(labels, tf.int32)
        for shift in correct:
            hits = tf.equal(predicted, labels + shift)
            correct[shift] += int(tf.reduce_sum(tf.cast(hits, tf.int32)))
        total += int(labels.shape[0])
    if not total:
        return {}
    return {shift: n / total for shift, n in correct.items()}


def shortfall_causes(
    model,
    dataset: tf.data.Dataset | distribute.DatasetFn,
    *,
    shortfall: float,
    num_outputs: int,
    num_classes: int,
    num_batches: int = 4,
) -> list[str]:
    """Human-readable likely causes, the checked ones first.

    `dataset` is a dataset or a dataset function, as for
    `label_shift_accuracy`.
    """
    causes = []
    shifted = label_shift_accuracy(model, dataset, num_batches=num_batches)
    if shifted:
        base = shifted[0]
        for shift in (-1, 1):
            if shifted[shift] > max(0.2, 2 * base):
                fix = (
                    "raise config.data.label_offset by 1 (1-based labels)"
                    if shift == -1
                    else "lower config.data.label_offset by 1, or set "
                    "config.model.has_background_class=True for a "
                    "1001-class model"
                )
                causes.append(
                    f"CHECKED: labels look shifted by {-shift:+d}: top-1 on "
                    f"the first batches is {base:.1%} as given but "
                    f"{shifted[shift]:.1%} with every label {shift:+d}; "
                    f"{fix}."
                )
    if num_outputs != num_classes:
        causes.append(
            f"the model has {num_outputs} outputs but the data "
            f"{num_classes} classes (1001 = a background class at index 0: "
            "set config.model.has_background_class=True)."
        )
    causes.append(
        "preprocess_input mode: check config.model.preprocess_mode against "
        "the model family (tf / caffe / torch / none)."
    )
    causes.append(
        "resize and crop: the reference figures use a specific "
        "config.preprocess.interpolation, crop_fraction and crop_mode; "
        "differences cost 1-3 points."
    )
    causes.append(
        f"top-1 is {shortfall:.1%} below the published figure; small "
        "evaluation sets also vary by several points (see the 95% interval)."
    )
    return causes


def diagnose(
    result: results.EvalResult,
    model,
    dataset: tf.data.Dataset | distribute.DatasetFn,
    *,
    published_top1: float | None,
    tolerance: float,
    num_classes: int,
    differences: Sequence[str] = (),
) -> list[str]:
    """Likely causes of a top-1 short of the published one; never raises.

    Only a shortfall that sampling noise cannot explain (the published
    figure above the 95% interval, and more than `tolerance` below it) is
    diagnosed: on 100 images the interval is about +-9 points wide. The
    `differences` of conditions (`condition_differences`) come first. A
    failure here only logs a warning: the counts of the run are kept
    whatever happens.
    """
    if published_top1 is None or 1 not in result.correct:
        return []
    shortfall = published_top1 - result.accuracy(1)
    if shortfall <= tolerance or published_top1 <= result.interval(1)[1]:
        return []
    try:
        causes = shortfall_causes(
            model,
            dataset,
            shortfall=shortfall,
            num_outputs=model.output_shape[-1],
            num_classes=num_classes,
        )
    except Exception as e:  # Optional: the counts must survive.
        logging.warning("The shortfall diagnosis failed (%s); skipped.", e)
        causes = [f"top-1 is {shortfall:.1%} below the published figure."]
    return [*differences, *causes]


class Diagnosis(listeners.Listener):
    """The loop's listener that names the likely causes of a shortfall.

    At the end of a run whose top-1 falls short of the published one by
    more than sampling noise and `tolerance`, it says first where the run's
    conditions differ from the published figure's (`condition_differences`),
    checks the label-offset causes on the run's model and data (`diagnose`)
    and writes what it found into the result's `metadata["diagnostics"]`
    (results.json). It never raises: the counts survive whatever happens
    here.

    Args:
        published_top1: the published top-1 fraction; None takes
            `published.top1` (None too: nothing to compare with, the result
            is left as is).
        published: the published figure with its conditions, e.g.
            `models.get_spec("resnet50").published()`.
        options: the run's resolved preprocessing, compared with
            `published.conditions`.
        tolerance: the shortfall (fraction) tolerated before diagnosing.
        num_classes: the label space of the data (e.g. 1000).

    Usage with `tf_topk.evaluate`:

    ```python
    spec = models.get_spec("resnet50")
    diagnosis = diagnostics.Diagnosis(
        published=spec.published(), options=preprocessing.resolve(spec)
    )
    result = tf_topk.evaluate(model, dataset, listeners=[diagnosis])
    result.metadata["diagnostics"]
    ```
    """

    def __init__(
        self,
        published_top1: float | None = None,
        *,
        published: models.Published | None = None,
        options: preprocessing.Options | None = None,
        tolerance: float = 0.02,
        num_classes: int = 1000,
    ):
        if published_top1 is None and published is not None:
            published_top1 = published.top1
        self.published_top1 = published_top1
        self.published = published
        self.options = options
        self.tolerance = tolerance
        self.num_classes = num_classes
        self._run = None

    def on_begin(self, run: listeners.Run) -> None:
        self._run = run

    def on_end(self, result: results.EvalResult) -> results.EvalResult:
        conditions = self.published.conditions if self.published else None
        try:
            differences = condition_differences(conditions, self.options)
        except Exception as e:  # Optional: the counts must survive.
            logging.warning("Comparing the conditions failed (%s).", e)
            differences = []
        causes = diagnose(
            result,
            self._run.model,
            self._run.dataset,
            published_top1=self.published_top1,
            tolerance=self.tolerance,
            num_classes=self.num_classes,
            differences=differences,
        )
        metadata = {**result.metadata, "diagnostics": list(causes)}
        return dataclasses.replace(result, metadata=metadata)
