"""Per-example predictions, streamed to JSON Lines as the loop runs.

A run saved with predictions (`--config.eval.save_predictions=True`, or
`tf_topk.evaluate(..., predictions_dir=...)`) writes, for every example
exactly once (padding excluded), one line of
`<predictions_dir>/predictions-<worker>-of-<workers>.jsonl`:

    {"id": "n01440764/ILSVRC2012_val_00000293.JPEG", "labels": [0],
     "top_classes": [0, 391, ...], "top_scores": [0.93, 0.02, ...]}

- `id`: stable across runs over the same data (`datasets.build(...,
  with_ids=True)`: the path relative to the image folder; the TFRecords'
  `image/filename`, else shard and record; tfds' own `tfds_id`);
  `example <i>` for a dataset without ids (its position).
- `labels`: the true class indices (several, or none, for multi-label
  sets).
- `top_classes` / `top_scores`: the `NUM_TOP` best classes and the model's
  scores for them, best first (fewer for a model with fewer classes).

Each worker of a multi-worker run writes its own file, in the order it
evaluated its examples; `tf_topk.analysis.load_predictions` reads them all.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import tensorflow as tf

from tf_topk import distribute, listeners

DIRECTORY = "predictions"
NUM_TOP = 10


# The names `file_name` gives: (worker, number of workers).
FILE_PATTERN = re.compile(r"^predictions-(\d{5})-of-(\d{5})\.jsonl$")


def file_name(worker: int, num_workers: int) -> str:
    """`predictions-00000-of-00001.jsonl` for worker 0 of 1."""
    return f"predictions-{worker:05d}-of-{num_workers:05d}.jsonl"


class Writer:
    """Appends one worker's predictions to its JSON Lines file.

    Args:
        directory: the predictions folder (created).
        worker: this worker's index.
        num_workers: the number of workers writing files.
        keep_bytes: bytes of an existing file to keep (a resumed run keeps
            what its checkpoint counted, and drops any line written after
            it); None starts a new file.
    """

    def __init__(
        self,
        directory: str,
        *,
        worker: int = 0,
        num_workers: int = 1,
        keep_bytes: int | None = None,
    ):
        tf.io.gfile.makedirs(directory)
        self.path = os.path.join(directory, file_name(worker, num_workers))
        if keep_bytes is None or not os.path.exists(self.path):
            if keep_bytes:
                raise ValueError(
                    f"The predictions file {self.path} of the checkpointed "
                    "run is missing: its first predictions are lost. Start "
                    "afresh (--config.eval.resume=False, `resume=False`)."
                )
            # Line-buffered: every batch reaches the OS as it is written,
            # so a killed process loses no line a checkpoint counted.
            self._file = open(self.path, "w", encoding="utf-8", buffering=1)
        else:
            self._file = open(self.path, "r+", encoding="utf-8", buffering=1)
            self._file.truncate(keep_bytes)
            self._file.seek(keep_bytes)
        self.example_index = 0

    @classmethod
    def for_strategy(
        cls,
        directory: str,
        strategy: tf.distribute.Strategy,
        *,
        keep_bytes: int | None = None,
    ) -> Writer:
        """The writer of this worker of `strategy` (one file per worker)."""
        workers = distribute.num_input_pipelines(strategy)
        return cls(
            directory,
            worker=distribute.task(strategy)[1] if workers > 1 else 0,
            num_workers=workers,
            keep_bytes=keep_bytes,
        )

    def write(self, ids, labels, top_classes, top_scores, weights) -> None:
        """Writes the rows of one batch whose weight is not 0.

        Args:
            ids: string [B] (bytes) or None (positions are used).
            labels: int [B] class indices, or multi-hot [B, C].
            top_classes: int [B, K], best first.
            top_scores: float [B, K].
            weights: [B]; rows of weight 0 (padding) are left out.
        """
        labels = np.asarray(labels)
        lines = []
        for row in np.flatnonzero(np.asarray(weights) > 0):
            if ids is None:
                example_id = f"example {self.example_index}"
            else:
                example_id = ids[row].decode("utf-8", "replace")
            self.example_index += 1
            if labels.ndim == 2:
                true = np.flatnonzero(labels[row] > 0).tolist()
            else:
                true = [int(labels[row])]
            lines.append(
                json.dumps(
                    {
                        "id": example_id,
                        "labels": true,
                        "top_classes": top_classes[row].tolist(),
                        "top_scores": [float(x) for x in top_scores[row]],
                    }
                )
            )
        if lines:
            self._file.write("\n".join(lines) + "\n")

    def flush(self) -> int:
        """Flushes to disk; returns the file's size in bytes."""
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def check_element_spec(spec) -> None:
    """Raises unless `spec` is (images, labels[, weights][, string ids])."""
    strings = [
        isinstance(x, tf.TensorSpec) and x.dtype == tf.string
        for x in (spec[2:] if isinstance(spec, tuple) else ())
    ]
    if (
        not isinstance(spec, tuple)
        or len(spec) not in (2, 3, 4)
        or any(strings[:-1])
        or (len(spec) == 4 and not strings[-1])
    ):
        raise ValueError(
            "Argument `dataset` must yield (images, labels) or (images, "
            "labels, sample_weights) batches, optionally followed by string "
            f"example ids. Received: element_spec={spec}"
        )


def top(outputs: tf.Tensor, num_classes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(classes int32 [B, K], scores float32 [B, K]) of the best K classes."""
    scores, classes = tf.math.top_k(outputs, k=min(NUM_TOP, num_classes))
    return classes, scores


def write_step(
    writer: Writer, element, local_outputs, strategy: tf.distribute.Strategy
) -> None:
    """Writes one step's rows of this worker (its replicas, in order).

    Args:
        writer: this worker's writer.
        element: the step's (images, labels, weights[, ids]) batch.
        local_outputs: the step's local results, one
            (weight sum, top classes, top scores) per local replica.
        strategy: the strategy the step ran under.
    """

    def local(value):
        parts = strategy.experimental_local_results(value)
        return np.concatenate([np.asarray(part) for part in parts])

    _, labels, weights, *ids = element
    writer.write(
        local(ids[0]) if ids else None,
        local(labels),
        np.concatenate([np.asarray(part[1]) for part in local_outputs]),
        np.concatenate([np.asarray(part[2]) for part in local_outputs]),
        local(weights),
    )


def _offset_after_lines(path: str, num_lines: int) -> int:
    """The byte offset just past the first `num_lines` lines of `path`.

    Raises:
        ValueError: the file is missing or holds fewer lines (predictions a
            checkpoint counted are lost).
    """
    offset = 0
    if num_lines and os.path.exists(path):
        with open(path, "rb") as f:
            for _ in range(num_lines):
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                num_lines -= 1
    if num_lines:
        raise ValueError(
            f"The predictions file {path} of the checkpointed run lacks "
            f"{num_lines} of the lines its checkpoint counted: its "
            "predictions are lost. Start afresh (--config.eval.resume=False, "
            "`resume=False`)."
        )
    return offset


class Recorder(listeners.Listener):
    """The loop's listener that streams every prediction to its file.

    Each worker writes `<directory>/predictions-<worker>-of-<workers>.jsonl`
    (see the module docstring); a resumed run keeps the lines of the
    examples its checkpoint counted and drops any written after it.

    Args:
        directory: the predictions folder (created).

    Usage with `tf_topk.evaluate` (ids from `datasets.build(...,
    with_ids=True)`, else positions):

    ```python
    result = tf_topk.evaluate(
        model, dataset, listeners=[predictions.Recorder("/out/predictions")]
    )
    ```
    """

    needs_predictions = True

    def __init__(self, directory: str):
        self.directory = os.fspath(directory)
        self._writer = None

    def on_begin(self, run: listeners.Run) -> None:
        keep_bytes = None
        if run.start.examples:
            path = os.path.join(
                self.directory,
                file_name(
                    _worker(run.strategy),
                    distribute.num_input_pipelines(run.strategy),
                ),
            )
            keep_bytes = _offset_after_lines(path, run.start.examples)
        self._writer = Writer.for_strategy(
            self.directory, run.strategy, keep_bytes=keep_bytes
        )
        self._writer.example_index = run.start.examples

    def on_batch(self, batch: listeners.Batch) -> None:
        self._writer.write(
            batch.ids,
            batch.labels,
            batch.top_classes,
            batch.top_scores,
            batch.weights,
        )

    def on_exit(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _worker(strategy) -> int:
    """This worker's index among the input pipelines (0 with one)."""
    if distribute.num_input_pipelines(strategy) > 1:
        return distribute.task(strategy)[1]
    return 0
