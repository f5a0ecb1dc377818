"""Per-example predictions files: streamed as the loop runs, read back.

A run saved with predictions (`--config.eval.save_predictions=True`, or
`tf_topk.evaluate(..., listeners=[predictions.Recorder(directory)])`)
writes, for every example exactly once (padding excluded), one line of
`<directory>/predictions-<worker>-of-<workers>.jsonl`:

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

Each worker of a multi-worker run writes its own file (`Writer`), in the
order it evaluated its examples; `load(workdir)` reads them all back into
one `Predictions` record of arrays sorted by id (the paired comparison
reads the arrays; the HTML report reads `Predictions.records()`, one
`Prediction` per example). `tf_topk.analysis.load_predictions` is the old
name of `load`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import numpy as np
import tensorflow as tf

from tf_topk import distribute, listeners
from tf_topk.runs import files

# Classes (and scores) kept per example; a line holds 1 to NUM_TOP.
NUM_TOP = 10
_KEYS = ("id", "labels", "top_classes", "top_scores")


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
        keep_lines: lines of an existing file to keep (a resumed run keeps
            the examples its checkpoint counted, and drops any line written
            after them); 0 starts a new file.

    Raises:
        ValueError: the file to resume holds fewer than `keep_lines` lines
            (or is missing): predictions a checkpoint counted are lost.
    """

    def __init__(
        self,
        directory: str,
        *,
        worker: int = 0,
        num_workers: int = 1,
        keep_lines: int = 0,
    ):
        tf.io.gfile.makedirs(directory)
        self.path = os.path.join(directory, file_name(worker, num_workers))
        if keep_lines:
            keep_bytes = _offset_after_lines(self.path, keep_lines)
            # Line-buffered: every batch reaches the OS as it is written,
            # so a killed process loses no line a checkpoint counted.
            self._file = open(self.path, "r+", encoding="utf-8", buffering=1)
            self._file.truncate(keep_bytes)
            self._file.seek(keep_bytes)
        else:
            self._file = open(self.path, "w", encoding="utf-8", buffering=1)
        # Positions name the examples of a dataset without ids.
        self.example_index = keep_lines

    @classmethod
    def for_strategy(
        cls,
        directory: str,
        strategy: tf.distribute.Strategy,
        *,
        keep_lines: int = 0,
    ) -> Writer:
        """The writer of this worker of `strategy` (one file per worker)."""
        workers = distribute.num_input_pipelines(strategy)
        return cls(
            directory,
            worker=distribute.task(strategy)[1] if workers > 1 else 0,
            num_workers=workers,
            keep_lines=keep_lines,
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

    def close(self) -> None:
        """Closes the file (`flush` first to make it durable)."""
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


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One example's line: its id, true labels and best classes.

    Attributes:
        id: the example id.
        labels: the true class indices (none for an unlabeled example).
        top_classes: the best classes, best first.
        top_scores: the model's scores of `top_classes`.
    """

    id: str
    labels: tuple[int, ...]
    top_classes: tuple[int, ...]
    top_scores: tuple[float, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class Predictions:
    """One run's saved predictions, all workers' files together (`load`).

    Attributes:
        ids: str [N], ascending; the arrays below follow the same order.
        labels: int64 [N] for single-label data, else int64 [N, L] for
            multi-label: rows ascending, -1 padded (may be all -1: ReaL).
        top_classes: int64 [N, NUM_TOP], best first; -1 pads (fewer
            classes).
        top_scores: float64 [N, NUM_TOP], their scores; NaN pads.
        source: the run's workdir (names the run in messages).
    """

    ids: np.ndarray
    labels: np.ndarray
    top_classes: np.ndarray
    top_scores: np.ndarray
    source: str = ""

    def label_sets(self, width: int = 1) -> np.ndarray:
        """Labels as int64 [N, max(L, width)], -1 padded."""
        labels = self.labels.reshape(len(self.labels), -1)
        extra = max(0, width - labels.shape[1])
        return np.pad(labels, ((0, 0), (0, extra)), constant_values=-1)

    def records(self) -> list[Prediction]:
        """One `Prediction` per example, in id order, padding dropped."""
        return [
            Prediction(
                id=str(example_id),
                labels=tuple(int(c) for c in true if c >= 0),
                top_classes=tuple(int(c) for c in classes if c >= 0),
                top_scores=tuple(
                    float(s) for s, c in zip(scores, classes) if c >= 0
                ),
            )
            for example_id, true, classes, scores in zip(
                self.ids, self.label_sets(), self.top_classes, self.top_scores
            )
        ]


def saved(workdir: str) -> bool:
    """Whether the run in `workdir` saved any predictions file."""
    directory = os.path.join(workdir, files.PREDICTIONS_DIR)
    return tf.io.gfile.isdir(directory) and any(
        FILE_PATTERN.match(name.rstrip("/"))
        for name in tf.io.gfile.listdir(directory)
    )


def _prediction_files(workdir: str) -> list[str]:
    """The run's predictions files, one per worker, in worker order."""
    directory = os.path.join(workdir, files.PREDICTIONS_DIR)
    found = []
    if tf.io.gfile.isdir(directory):
        found = sorted(
            filter(FILE_PATTERN.match, tf.io.gfile.listdir(directory))
        )
    expected = []
    if found:
        num_workers = int(FILE_PATTERN.match(found[-1]).group(2))
        expected = [file_name(i, num_workers) for i in range(num_workers)]
    if not found or found != expected:
        raise FileNotFoundError(
            f"Run {workdir!r} has no complete set of saved predictions in "
            f"{directory}: found {found}, expected one predictions-NNNNN-of-"
            "NNNNN.jsonl file per worker. Evaluate it again with "
            "--config.eval.save_predictions=True (CLI) or tf_topk.evaluate("
            "..., listeners=[predictions.Recorder(...)]), then compare again."
        )
    return [os.path.join(directory, name) for name in expected]


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse_line(line: str, where: str) -> tuple[str, list, list, list]:
    """(id, labels, top_classes, top_scores) of one line; else ValueError."""
    problem = (
        f"{where}: expected a JSON object with a non-empty string `id`, "
        f"`labels` (class indices), 1 to {NUM_TOP} `top_classes` (class "
        "indices) and as many numeric `top_scores`. Received: "
        f"{line.strip()[:200]!r}"
    )
    try:
        example = tuple(json.loads(line)[key] for key in _KEYS)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(problem) from e
    example_id, labels, classes, scores = example
    if not (
        isinstance(example_id, str)
        and example_id
        and all(isinstance(v, list) for v in (labels, classes, scores))
        and 0 < len(classes) == len(scores) <= NUM_TOP
        and all(map(_is_index, labels + classes))
        and all(type(x) in (int, float) for x in scores)
    ):
        raise ValueError(problem)
    return example


def _padded(rows: list[list], width: int, fill, dtype) -> np.ndarray:
    array = np.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        array[i, : len(row)] = row
    return array


def load(workdir: str) -> Predictions:
    """Reads a run's saved predictions (all workers' files, line by line).

    Args:
        workdir: the run's folder (holds `predictions/`).

    Returns:
        The predictions, sorted by id.

    Raises:
        FileNotFoundError: no (complete) set of predictions files; names
            the run and `--config.eval.save_predictions=True`.
        ValueError: a malformed line (names file and line) or an id seen
            twice (names it, both lines).
    """
    columns: tuple[list, ...] = ([], [], [], [])
    seen: dict[str, str] = {}
    for path in _prediction_files(workdir):
        with tf.io.gfile.GFile(path) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                example = _parse_line(line, where)
                if example[0] in seen:
                    raise ValueError(
                        f"Example id {example[0]!r} appears twice: at "
                        f"{seen[example[0]]} and at {where}. Each example "
                        "must be evaluated once: evaluate the run again."
                    )
                seen[example[0]] = where
                for column, value in zip(columns, example):
                    column.append(value)
    ids, labels, classes, scores = columns
    order = np.argsort(np.array(ids, dtype=str), kind="stable")
    if all(len(row) == 1 for row in labels):
        label_array = np.array([row[0] for row in labels], dtype=np.int64)
    else:
        width = max(len(row) for row in labels)
        label_array = _padded(list(map(sorted, labels)), width, -1, np.int64)
    return Predictions(
        ids=np.array(ids, dtype=str)[order],
        labels=label_array[order],
        top_classes=_padded(classes, NUM_TOP, -1, np.int64)[order],
        top_scores=_padded(scores, NUM_TOP, np.nan, np.float64)[order],
        source=workdir,
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
        self._writer = Writer.for_strategy(
            self.directory, run.strategy, keep_lines=run.start.examples
        )

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
