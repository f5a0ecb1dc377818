"""How far a running evaluation has got, shown as it runs.

"Progress" means one thing in tf_topk: how far a run has got. This module
shows it while the loop runs (a Keras progress bar, log lines or nothing:
`evaluate(progress=...)`); a checkpointed run also records it in
`progress.json` at every save (`tf_topk.checkpoints`).

The running accuracies come from this worker's own share of the metric
variables: a global read is a collective, and workers reach their progress
updates at different times.
"""

from __future__ import annotations

import math
import sys

import keras
from absl import logging

from tf_topk import listeners

MODES = ("auto", "bar", "log", "none")
DEFAULT_LOG_EVERY_N_EXAMPLES = 12800


def validate(progress: str) -> str:
    """Returns `progress` if it is a valid progress mode, else raises.

    >>> validate("log")
    'log'

    Raises:
        ValueError: not one of "auto", "bar", "log", "none".
    """
    if progress not in MODES:
        raise ValueError(
            f"Argument `progress` must be one of {list(MODES)} or a "
            f"tf_topk.progress.Progress. Received: progress={progress!r}"
        )
    return progress


def uses_bar(progress: str) -> bool:
    """Whether `progress` shows a bar ("auto": on a terminal)."""
    return validate(progress) == "bar" or (
        progress == "auto" and sys.stdout.isatty()
    )


class Progress(listeners.Listener):
    """Shows the running accuracies: a bar, log lines or nothing.

    Args:
        mode: "auto" (a bar on a terminal, log lines otherwise), "bar",
            "log" or "none".
        log_every_n_examples: the interval of the log lines.

    >>> show = Progress("log", log_every_n_examples=1000)
    >>> show.mode, show.log_every_n_examples
    ('log', 1000)
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        log_every_n_examples: int = DEFAULT_LOG_EVERY_N_EXAMPLES,
    ):
        self.mode = validate(mode)
        if (
            isinstance(log_every_n_examples, bool)
            or not isinstance(log_every_n_examples, int)
            or log_every_n_examples < 1
        ):
            raise ValueError(
                "Argument `log_every_n_examples` must be a positive integer. "
                f"Received: log_every_n_examples={log_every_n_examples!r}"
            )
        self.log_every_n_examples = log_every_n_examples
        self._run = None
        self._bar = None
        self._next_log = log_every_n_examples

    def on_begin(self, run: listeners.Run) -> None:
        self._run = run
        self._bar = None
        if uses_bar(self.mode):
            names = [f"top{k}" for k in run.ks]
            self._bar = keras.utils.Progbar(
                run.num_steps, stateful_metrics=names
            )
        self._next_log = run.start.examples + self.log_every_n_examples

    def running(self) -> list[tuple[str, float]]:
        """Running accuracies over this worker's examples so far."""
        correct, count = self._run.local_counts()
        return [
            (f"top{k}", float(c) / count if count else math.nan)
            for k, c in zip(self._run.ks, correct)
        ]

    def on_batch(self, batch: listeners.Batch) -> None:
        if self._bar is not None:
            self._bar.update(batch.step, values=self.running())
            return
        if self.mode == "none" or batch.examples < self._next_log:
            return
        accuracies = " ".join(f"{k}={v:.4f}" for k, v in self.running())
        logging.info("Processed %d images. %s", batch.examples, accuracies)
        while self._next_log <= batch.examples:
            self._next_log += self.log_every_n_examples


def resolve(progress: str | Progress) -> Progress:
    """The display of `evaluate(progress=...)`: a mode or a `Progress`."""
    if isinstance(progress, Progress):
        return progress
    if not isinstance(progress, str):
        raise TypeError(
            "Argument `progress` must be one of "
            f"{list(MODES)} or a tf_topk.progress.Progress. Received: "
            f"progress of type {type(progress).__name__}"
        )
    return Progress(progress)
