"""The input stage of a run: how fast the pipeline alone delivers images.

`measure` times a few batches of the run's `tf.data.Dataset` with the model
out of the loop; `annotate` writes that rate into the `EvalResult`, beside
the model's own rate, and decides whether the input limits the run;
`advice` is the warning that says so and names the remedies as flags.

    rate = input_stage.measure(dataset, num_batches=4)
    result = evaluation.evaluate(model, dataset, ...)
    result = input_stage.annotate(result, rate)
    if result.input_limited:
        logging.warning("%s", input_stage.advice(
            result, options=options, cache="none"))
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import tensorflow as tf
from absl import logging

from tf_topk import listeners, preprocessing, results
from tf_topk.datasets import caching

# The modes a run resolves to ("auto" is resolved before a run).
CACHE_MODES = ("none",) + tuple(
    mode for mode in caching.MODES if mode not in ("auto", "none")
)


@dataclasses.dataclass(frozen=True)
class Remedy:
    """A preprocessing flag, measured against the default preprocessing.

    Attributes:
        flag: the flag as a user pastes it.
        option: the `preprocessing.Options` field and the value the flag
            sets (a run that has it needs no advice on it).
        what: what the flag changes, in a few words.
        images_per_s: input images/s (default, with the flag).
        top1_correct: per model, top-1 correct (default, with the flag).
        note: why the speed-up is what it is ("": nothing to add).

    >>> [remedy.option for remedy in REMEDIES]
    [('antialias', False), ('crop_mode', 'crop_then_resize')]
    """

    flag: str
    option: tuple[str, object]
    what: str
    images_per_s: tuple[float, float]
    top1_correct: tuple[tuple[str, int, int], ...]
    note: str = ""


# Measured on this project's machine (AMD EPYC, 2 cores). Speed: input
# images/s of `python benchmarks/input_bench.py` on 500x375 JPEGs. Top-1:
# the same MobileNet (alpha 0.75, alpha 0.25) runs on the 1,750 real
# ImageNet validation images of ../shared/assets (val_acuity650 +
# val_pjpeg100 + sample_1000), default preprocessing against the flag.
# Measure again and update these together, never one figure alone.
MACHINE = "AMD EPYC, 2 cores"
BENCHMARK = "python benchmarks/input_bench.py"
TOP1_IMAGES = 1750
TOP1_SET = (
    "real ImageNet validation images of ../shared/assets "
    "(val_acuity650 + val_pjpeg100 + sample_1000)"
)
REMEDIES = (
    Remedy(
        flag="--config.preprocess.antialias=False",
        option=("antialias", False),
        what="resizes without the antialias filter",
        images_per_s=(486.0, 1150.0),
        top1_correct=(
            ("MobileNet alpha 0.75", 1421, 1428),
            ("MobileNet alpha 0.25", 1076, 1073),
        ),
    ),
    Remedy(
        flag="--config.preprocess.crop_mode=crop_then_resize",
        option=("crop_mode", "crop_then_resize"),
        what="decodes only the crop window of a JPEG",
        images_per_s=(486.0, 530.0),
        top1_correct=(
            ("MobileNet alpha 0.75", 1421, 1434),
            ("MobileNet alpha 0.25", 1076, 1059),
        ),
        note="most of the cost is the antialiased resize, which it keeps",
    ),
)


@dataclasses.dataclass(frozen=True)
class InputRate:
    """What `measure` timed.

    Attributes:
        images_per_s: images the pipeline delivered per second.
        num_images: images in the timed batches.
        seconds: time to deliver them.
        num_batches: timed batches (the warm-up batch excluded).

    >>> import tensorflow as tf
    >>> dataset = tf.data.Dataset.from_tensor_slices(
    ...     (tf.zeros([10, 2, 2, 3]), tf.range(10))).batch(4)
    >>> rate = measure(dataset, num_batches=4)  # Batches 4, then 4 and 2.
    >>> rate.num_images, rate.num_batches
    (6, 2)
    """

    images_per_s: float
    num_images: int
    seconds: float
    num_batches: int


def measure(
    dataset: tf.data.Dataset, *, num_batches: int = 4
) -> InputRate | None:
    """Times the input pipeline alone on a few batches of `dataset`.

    A fresh iterator reads one warm-up batch (pipeline start, file listing;
    not timed), then up to `num_batches` timed batches. The images of a
    batch are the leading dimension of its labels (`element[1]`). The
    prefetch buffers fill during the warm-up, so a short probe can only
    overstate the pipeline's rate, never understate it.

    Args:
        dataset: the run's dataset of `(images, labels[, ...])` batches.
        num_batches: batches to time after the warm-up batch.

    Returns:
        The measured rate, or None when `dataset` has fewer than 2 batches
        (nothing left to time after the warm-up).

    Raises:
        TypeError: `dataset` is not a `tf.data.Dataset`.
        ValueError: `num_batches` is not a positive integer.
        tf.errors.OpError: reading a batch failed (e.g. a corrupt image);
            propagated unchanged, as the run would fail on it too.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "Argument `dataset` must be a tf.data.Dataset of (images, "
            f"labels) batches. Received: dataset of type "
            f"{type(dataset).__name__}. Pass the dataset before it is "
            "distributed or turned into an iterator."
        )
    if (
        isinstance(num_batches, bool)
        or not isinstance(num_batches, int)
        or num_batches < 1
    ):
        raise ValueError(
            "Argument `num_batches` must be a positive integer. "
            f"Received: num_batches={num_batches!r}"
        )
    iterator = iter(dataset)
    if next(iterator, None) is None:
        logging.info("Input rate not measured: the dataset has no batch.")
        return None
    num_images = 0
    timed = 0
    start = time.perf_counter()
    for element in iterator:
        num_images += _batch_size(element)
        timed += 1
        if timed == num_batches:
            break
    seconds = time.perf_counter() - start
    if timed == 0 or seconds <= 0:
        logging.info(
            "Input rate not measured: the dataset has 1 batch, the warm-up "
            "batch, and nothing left to time."
        )
        return None
    rate = InputRate(num_images / seconds, num_images, seconds, timed)
    logging.info(
        "Input pipeline alone: %.1f images/s (%d images in %d batches, "
        "%.3f s).",
        rate.images_per_s,
        num_images,
        timed,
        seconds,
    )
    return rate


def limits(input_images_per_s: float, model_images_per_s: float) -> bool:
    """Whether the input limits a run: it cannot go faster than its input.

    Args:
        input_images_per_s: images/s the pipeline delivers alone.
        model_images_per_s: images/s the model consumes alone.

    Returns:
        True when the pipeline delivers fewer images/s than the model
        consumes; False when it keeps up (equal rates included).

    Raises:
        ValueError: a rate is negative or NaN.

    >>> limits(486.0, 1200.0), limits(1150.0, 1150.0)
    (True, False)
    """
    for name, value in (
        ("input_images_per_s", input_images_per_s),
        ("model_images_per_s", model_images_per_s),
    ):
        if math.isnan(value) or value < 0:
            raise ValueError(
                f"Argument `{name}` must be a non-negative number of "
                f"images/s. Received: {name}={value!r}"
            )
    return input_images_per_s < model_images_per_s


def annotate(
    result: results.EvalResult, rate: InputRate | None
) -> results.EvalResult:
    """`result` with the input rate and whether the input limits the run.

    Args:
        result: what the evaluation measured.
        rate: what `measure` returned (None: not measured).

    Returns:
        A copy of `result` with `input_images_per_s` and `input_limited`
        set; both stay None when a rate is unknown.
    """
    input_rate = None if rate is None else rate.images_per_s
    model_rate = result.model_images_per_s
    limited = None
    if input_rate is not None and model_rate is not None:
        limited = limits(input_rate, model_rate)
    return dataclasses.replace(
        result, input_images_per_s=input_rate, input_limited=limited
    )


def advice(
    result: results.EvalResult,
    *,
    options: preprocessing.Options,
    cache: str,
) -> str:
    """The warning for a run its input limits, with flags to paste.

    Args:
        result: an annotated result (`annotate`) with both rates known.
        options: the preprocessing the run used; a remedy it already
            applies is reported as such.
        cache: the run's decoded-image cache: "none", "memory" or "disk".

    Returns:
        A multi-line text: both rates, then one remedy per line.

    Raises:
        ValueError: `cache` is not a known mode, or `result` lacks a rate.
    """
    if cache not in CACHE_MODES:
        raise ValueError(
            f"Argument `cache` must be one of {list(CACHE_MODES)}. "
            f"Received: cache={cache!r}"
        )
    input_rate = result.input_images_per_s
    model_rate = result.model_images_per_s
    if input_rate is None or model_rate is None:
        raise ValueError(
            "Argument `result` must carry both rates: "
            f"input_images_per_s={input_rate!r}, "
            f"model_images_per_s={model_rate!r}. Pass the result of "
            "input_stage.annotate(result, input_stage.measure(dataset))."
        )
    cores = os.cpu_count()
    lines = [
        f"The input pipeline limits this run: it delivers "
        f"{input_rate:.0f} images/s alone while the model alone consumes "
        f"{model_rate:.0f} images/s, so the run cannot go faster than its "
        "input. Remedies:",
        f"  - more CPU cores (this machine has {cores or 'an unknown number'}"
        "): decoding and resizing scale with cores, and tf.data uses all "
        "of them.",
    ]
    for remedy in REMEDIES:
        name, value = remedy.option
        if getattr(options, name) == value:
            lines.append(f"  - {remedy.flag}: already set for this run.")
        else:
            lines.append(f"  - {_remedy_line(remedy)}")
    lines.append(f"  - {_cache_line(cache)}")
    lines.append(_provenance())
    return "\n".join(lines)


def _batch_size(element) -> int:
    """Images in one batch: the leading dimension of its labels."""
    labels = element[1] if isinstance(element, (tuple, list)) else element
    return int(tf.shape(tf.nest.flatten(labels)[0])[0])


def _remedy_line(remedy: Remedy) -> str:
    before, after = remedy.images_per_s
    ratio = after / before
    # 2.4x, but 1.09x: a ratio near 1 needs its second decimal.
    speedup = f"{ratio:.1f}" if ratio >= 2 else f"{ratio:.2f}"
    note = f"; {remedy.note}" if remedy.note else ""
    effects = ", ".join(
        f"{(flag - default) / TOP1_IMAGES * 100:+.2f} points for {model} "
        f"({default} -> {flag} correct)"
        for model, default, flag in remedy.top1_correct
    )
    return (
        f"{remedy.flag}: {remedy.what}; {speedup}x faster input "
        f"({before:.0f} -> {after:.0f} images/s on 500x375 JPEGs{note}); "
        f"top-1 {effects}."
    )


def _cache_line(cache: str) -> str:
    if cache == "none":
        return (
            "--config.data.cache=memory (or disk): later runs of a bulk "
            "command and every later epoch of the Keras callback read "
            "decoded images instead of decoding again."
        )
    return (
        f"the decoded-image cache is on (--config.data.cache={cache}): it "
        "helps the later runs of a bulk command and the later epochs of "
        "the Keras callback, not the first pass."
    )


def _provenance() -> str:
    errors = [
        math.sqrt(p * (1 - p) / TOP1_IMAGES) * 100
        for p in {
            default / TOP1_IMAGES
            for remedy in REMEDIES
            for _, default, _ in remedy.top1_correct
        }
    ]
    return (
        f"Speeds measured with `{BENCHMARK}` on {MACHINE}; top-1 on "
        f"{TOP1_IMAGES:,} {TOP1_SET}. "
        "The top-1 effects are within sampling noise at this sample size "
        f"(one standard error is about 1 point at n={TOP1_IMAGES}: "
        f"{min(errors):.1f} to {max(errors):.1f}). Both flags change what "
        "the run measures: compare its accuracy only with runs that used "
        "the same preprocessing."
    )


class InputProbe(listeners.Listener):
    """The loop's listener that measures the input pipeline alone.

    Before the first batch it times a few batches of the input with the
    model out of the loop (`measure`); at the end it writes the rate into
    the result beside the model's (`annotate`) and, when the input limits
    the run, logs the warning with the remedies (`advice`). `evaluate`
    adds one unless the caller passes their own. A failure to read the
    input here is logged: the loop reports a bad input itself.

    Args:
        dataset: what to time; None: the run's dataset. (A shared cache
            being filled is timed on `InputCache.for_probe`.)
        num_batches: batches to time after the warm-up batch; 0 measures
            nothing.
        options: the run's preprocessing, for the advice (None: the
            library defaults, `preprocessing.Options()`).
        cache: the run's decoded-image cache mode, for the advice.

    Usage with `tf_topk.evaluate`:

    ```python
    probe = input_stage.InputProbe(num_batches=8)
    result = tf_topk.evaluate(model, dataset, listeners=[probe])
    result.input_images_per_s, result.input_limited
    ```
    """

    def __init__(
        self,
        dataset: tf.data.Dataset | None = None,
        *,
        num_batches: int = 4,
        options: preprocessing.Options | None = None,
        cache: str = "none",
    ):
        if (
            isinstance(num_batches, bool)
            or not isinstance(num_batches, int)
            or num_batches < 0
        ):
            raise ValueError(
                "Argument `num_batches` must be a non-negative integer (0: "
                f"measure nothing). Received: num_batches={num_batches!r}"
            )
        if cache not in CACHE_MODES:
            raise ValueError(
                f"Argument `cache` must be one of {list(CACHE_MODES)}. "
                f"Received: cache={cache!r}"
            )
        self.dataset = dataset
        self.num_batches = num_batches
        self.options = options or preprocessing.Options()
        self.cache = cache
        self.rate: InputRate | None = None

    def on_begin(self, run: listeners.Run) -> None:
        self.rate = None
        # With several workers each reads its own share: one pipeline's
        # rate says nothing of the run's.
        if not self.num_batches or run.num_input_pipelines > 1:
            return
        try:
            self.rate = measure(
                self.dataset or run.dataset, num_batches=self.num_batches
            )
        except tf.errors.OpError as e:
            logging.info("The input probe stopped: %s", e.message[:200])

    def on_end(self, result: results.EvalResult) -> results.EvalResult:
        result = annotate(result, self.rate)
        if result.input_limited:
            logging.warning(
                "%s", advice(result, options=self.options, cache=self.cache)
            )
        return result
