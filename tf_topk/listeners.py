"""What plugs into the evaluation loop: the listener protocol and its records.

`tf_topk.evaluate(model, dataset, listeners=[...])` calls each listener at
three points, in the spirit of Keras callbacks:

- `on_begin(run)`: once, before the first batch, with the `Run` (what the
  loop resolved: ks, batch size, strategy, the metric state, where it
  starts).
- `on_batch(batch)`: after every batch, with the `Batch` (its position, this
  worker's labels, weights and example ids, and, for a listener that sets
  `needs_predictions`, each example's decisions and top classes).
- `on_end(result)`: once, after the last batch, with the `EvalResult`; a
  listener may return an annotated copy (input rate, diagnostics, run
  metadata), which the next listener and the caller receive.
- `on_exit()`: always, last, whether the loop finished or raised (release
  files, signal handlers).

The loop's own concerns plug in this way: the progress display
(`tf_topk.progress.Progress`), checkpointing and resume
(`tf_topk.checkpoints.Checkpointer`, the one listener that may say where the
run resumes: its `start`), the per-example predictions writer, the input
rate (`tf_topk.input_stage.InputProbe`), the shortfall diagnosis
(`tf_topk.diagnostics.Diagnosis`) and run metadata (`Metadata`). A user
subclasses `Listener` and overrides what they need:

>>> class CountBatches(Listener):
...     def __init__(self):
...         self.num_batches = 0
...     def on_batch(self, batch):
...         self.num_batches += 1
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tf_topk import results


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a run starts: what a checkpoint had counted.

    Attributes:
        steps: batches already counted.
        examples: examples already counted (padding excluded).
        input_resumed: True when the dataset handed to the loop already
            leaves out those batches (`tf_topk.datasets.build(start=...)`,
            nothing decoded twice); False when the loop must skip them.
    """

    steps: int = 0
    examples: int = 0
    input_resumed: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """What the loop resolved before its first batch (given to `on_begin`).

    Attributes:
        model: the model evaluated.
        dataset: the whole dataset (one input pipeline's view).
        ks: the k values, ascending.
        num_classes: the model's number of classes.
        batch_size: the global batch size every batch is padded to.
        expected_num_examples: the examples the run must count, if known.
        ties: the tie rule, "inclusive" or "exclusive".
        strategy: the `tf.distribute` strategy the loop runs under.
        num_input_pipelines: workers reading their own share of the data
            (1 unless a dataset function runs on several workers).
        num_steps: the batches of the whole run per worker, if known.
        start: where the run starts (a resumed run: past what its
            checkpoint counted).
        state: the metric state a checkpoint saves and restores, by name.
        local_counts: () -> (correct per k, examples scored) counted by
            this worker so far, read without a collective.
    """

    model: Any
    dataset: tf.data.Dataset
    ks: tuple[int, ...]
    num_classes: int
    batch_size: int
    expected_num_examples: int | None
    ties: str
    strategy: tf.distribute.Strategy
    num_input_pipelines: int
    num_steps: int | None
    start: Position
    state: Mapping[str, Sequence[tf.Variable]]
    local_counts: Callable[[], tuple[Sequence[float], float]]

    def identity(self) -> dict[str, Any]:
        """What the loop knows identifies the run (part of a checkpoint's
        fingerprint)."""
        return {
            "model": self.model.name,
            "num_classes": self.num_classes,
            "ks": list(self.ks),
            "ties": self.ties,
            "batch_size": self.batch_size,
            "expected_num_examples": self.expected_num_examples,
        }


@dataclasses.dataclass(frozen=True, eq=False)
class Batch:
    """One batch the loop counted, as this worker saw it (`on_batch`).

    Attributes:
        step: batches counted so far, this one included (a resumed run
            counts from its checkpoint).
        examples: examples counted so far, this one included (this
            worker's and a checkpoint's; padding excluded).
        labels: this worker's labels, [B] class indices or [B, C]
            multi-hot.
        weights: [B]; padding rows have weight 0.
        ids: [B] example ids (bytes), or None when the dataset has none.
        correct: bool [B, len(ks)], whether each example's class is in
            its top k under the tie rule (None unless a listener set
            `needs_predictions`).
        top_classes: int [B, min(10, C)], best first (same condition).
        top_scores: float [B, min(10, C)], their scores.
    """

    step: int
    examples: int
    labels: np.ndarray
    weights: np.ndarray
    ids: np.ndarray | None = None
    correct: np.ndarray | None = None
    top_classes: np.ndarray | None = None
    top_scores: np.ndarray | None = None


class Listener:
    """Base class of what plugs into the loop; every method is optional.

    Attributes:
        needs_predictions: set True to receive each batch's decisions and
            top classes (`Batch.correct`, `top_classes`, `top_scores`);
            the step then also returns them, at some cost.
        saves_state: set True for a listener that saves the run's state
            (a checkpoint): it is called after the others, so what it
            saves covers what they did with each batch. At most one.
        start: where the run resumes; only a listener that saves the
            state may set it (None: from the first example).
    """

    needs_predictions: bool = False
    saves_state: bool = False
    start: Position | None = None

    def on_begin(self, run: Run) -> None:
        """Called once, before the first batch."""

    def on_batch(self, batch: Batch) -> None:
        """Called after every batch the loop counted."""

    def on_end(self, result: results.EvalResult) -> results.EvalResult | None:
        """Called once after the last batch; may return an annotated copy
        of `result` (None keeps it)."""
        return None

    def on_exit(self) -> None:
        """Called last, whether the loop finished or raised."""


class Metadata(Listener):
    """Copies the caller's run metadata into the result (results.json).

    Args:
        metadata: JSON-able values (model, data, preprocessing, ...); a key
            the result already holds is replaced.

    >>> from tf_topk import testing
    >>> result = Metadata({"epoch": 3}).on_end(testing.eval_result())
    >>> result.metadata["epoch"]
    3
    """

    def __init__(self, metadata: Mapping[str, Any]):
        if not isinstance(metadata, Mapping):
            raise TypeError(
                "Argument `metadata` must be a mapping of JSON-able values. "
                f"Received: metadata of type {type(metadata).__name__}"
            )
        self.metadata = dict(metadata)

    def on_end(self, result: results.EvalResult) -> results.EvalResult:
        return dataclasses.replace(
            result, metadata={**result.metadata, **self.metadata}
        )


def check(listeners: Sequence[Listener] | None) -> list[Listener]:
    """The listeners as a list, checked; a checkpoint last.

    A checkpoint covers what every other listener did with a batch (e.g.
    the predictions lines written), so it is called after them.

    Raises:
        TypeError: an entry is not a `Listener`.
        ValueError: more than one listener saves the run's state, or one
            that does not save it says where the run starts.
    """
    checked = list(listeners or ())
    for listener in checked:
        if not isinstance(listener, Listener):
            raise TypeError(
                "Argument `listeners` must hold tf_topk.listeners.Listener "
                f"instances. Received: an entry of type "
                f"{type(listener).__name__}. Subclass Listener."
            )
    saving = [type(item).__name__ for item in checked if item.saves_state]
    if len(saving) > 1:
        raise ValueError(
            "Argument `listeners` may hold one listener that saves the run's "
            f"state (a checkpoint). Received: {len(saving)} ({saving})."
        )
    for listener in checked:
        if listener.start is not None and not listener.saves_state:
            raise ValueError(
                "Only a listener that saves the run's state may set `start`. "
                f"Received: start={listener.start} on "
                f"{type(listener).__name__}."
            )
    return sorted(checked, key=lambda listener: listener.saves_state)
