"""Likely causes of a top-1 far below the published figure.

The usual culprits are a label offset (1-based labels, a 1001-class model),
the wrong preprocess_input mode, and a different resize / crop. The offset
ones are checked on the first batches: if shifting every label by one
explains the predictions far better, the labels are off by one.

Both functions take what `tf_topk.evaluate` takes: a dataset of batches, or
a per-worker dataset function of a `tf.distribute.InputContext` (they read
the whole dataset it returns for one input pipeline).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
from absl import logging

from tf_topk import distribute, listeners, models, results


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
) -> list[str]:
    """Likely causes of a top-1 short of the published one; never raises.

    Only a shortfall that sampling noise cannot explain (the published
    figure above the 95% interval, and more than `tolerance` below it) is
    diagnosed: on 100 images the interval is about +-9 points wide. A
    failure here only logs a warning: the counts of the run are kept
    whatever happens.
    """
    if published_top1 is None or 1 not in result.correct:
        return []
    shortfall = published_top1 - result.accuracy(1)
    if shortfall <= tolerance or published_top1 <= result.interval(1)[1]:
        return []
    try:
        return shortfall_causes(
            model,
            dataset,
            shortfall=shortfall,
            num_outputs=model.output_shape[-1],
            num_classes=num_classes,
        )
    except Exception as e:  # Optional: the counts must survive.
        logging.warning("The shortfall diagnosis failed (%s); skipped.", e)
        return [f"top-1 is {shortfall:.1%} below the published figure."]


class Diagnosis(listeners.Listener):
    """The loop's listener that names the likely causes of a shortfall.

    At the end of a run whose top-1 falls short of `published_top1` by
    more than sampling noise and `tolerance`, it checks the label-offset
    causes on the run's model and data (`diagnose`) and writes what it
    found into the result's `metadata["diagnostics"]` (results.json). It
    never raises: the counts survive whatever happens here.

    Args:
        published_top1: the published top-1 fraction (None: nothing to
            compare with, the result is left as is).
        tolerance: the shortfall (fraction) tolerated before diagnosing.
        num_classes: the label space of the data (e.g. 1000).

    Usage with `tf_topk.evaluate`:

    ```python
    result = tf_topk.evaluate(
        model, dataset, listeners=[diagnostics.Diagnosis(published_top1=0.749)]
    )
    result.metadata["diagnostics"]
    ```
    """

    def __init__(
        self,
        published_top1: float | None,
        *,
        tolerance: float = 0.02,
        num_classes: int = 1000,
    ):
        self.published_top1 = published_top1
        self.tolerance = tolerance
        self.num_classes = num_classes
        self._run = None

    def on_begin(self, run: listeners.Run) -> None:
        self._run = run

    def on_end(self, result: results.EvalResult) -> results.EvalResult:
        causes = diagnose(
            result,
            self._run.model,
            self._run.dataset,
            published_top1=self.published_top1,
            tolerance=self.tolerance,
            num_classes=self.num_classes,
        )
        metadata = {**result.metadata, "diagnostics": list(causes)}
        return dataclasses.replace(result, metadata=metadata)
