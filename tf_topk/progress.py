"""What a running evaluation shows: a progress bar, log lines or nothing.

The running accuracies come from this worker's own share of the metric
variables: a global read is a collective, and workers reach their progress
updates at different times.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import keras
import tensorflow as tf
from absl import logging

from tf_topk import metrics

MODES = ("auto", "bar", "log", "none")


def validate(progress: str) -> str:
    """Returns `progress` if it is a valid progress mode, else raises.

    >>> validate("log")
    'log'

    Raises:
        ValueError: not one of "auto", "bar", "log", "none".
    """
    if progress not in MODES:
        raise ValueError(
            f"Argument `progress` must be one of {list(MODES)}. "
            f"Received: progress={progress!r}"
        )
    return progress


def uses_bar(progress: str) -> bool:
    """Whether `progress` shows a bar ("auto": on a terminal)."""
    return validate(progress) == "bar" or (
        progress == "auto" and sys.stdout.isatty()
    )


def running(
    topk: metrics.TopKAccuracies, strategy: tf.distribute.Strategy
) -> list[tuple[str, float]]:
    """Running accuracies over this worker's examples, without a collective."""
    correct, count = topk.local_counts(strategy)
    return [
        (f"top{k}", float(c) / count if count else math.nan)
        for k, c in zip(topk.ks, correct)
    ]


def display(
    topk: metrics.TopKAccuracies,
    *,
    progress: str,
    strategy: tf.distribute.Strategy,
    num_steps: int | None,
    log_every_n_examples: int,
) -> Callable[[int, float], None]:
    """A function `show(num_steps_done, examples_done)` called per step.

    Args:
        topk: the metric whose running accuracies are shown.
        progress: "auto" (a bar on a terminal, log lines otherwise), "bar",
            "log" or "none".
        strategy: the strategy the metric lives under.
        num_steps: the steps of the whole run, if known (the bar's target).
        log_every_n_examples: interval of the log lines.
    """
    bar = None
    if uses_bar(progress):
        names = [f"top{k}" for k in topk.ks]
        bar = keras.utils.Progbar(num_steps, stateful_metrics=names)
    next_log = log_every_n_examples

    def show(num_steps_done: int, examples_done: float) -> None:
        nonlocal next_log
        if bar is not None:
            bar.update(num_steps_done, values=running(topk, strategy))
        elif progress != "none" and examples_done >= next_log:
            accuracies = " ".join(
                f"{k}={v:.4f}" for k, v in running(topk, strategy)
            )
            logging.info("Processed %d images. %s", examples_done, accuracies)
            while next_log <= examples_done:
                next_log += log_every_n_examples

    return show
