"""A finished run's files: results.json, per_class.csv, predictions/*.jsonl.

Readers return plain records (`ClassRow`, `Prediction`), and small
functions summarize the predictions (top-k for k = 1..10, confused pairs,
per-class top-1, the most confident errors) for the HTML report. The
prediction lines are `{"id", "labels", "top_classes", "top_scores"}`, one
per example, in `predictions/predictions-<worker>-of-<workers>.jsonl`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import tensorflow as tf

from tf_topk import analysis, imagenet, predictions, report

RESULTS_FILE = report.RESULTS_FILE
PER_CLASS_FILE = report.PER_CLASS_FILE
PREDICTIONS_DIR = predictions.DIRECTORY
MAX_K = 10
NUM_PAIRS = 20


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One line of predictions/*.jsonl: an example's labels and top classes."""

    id: str
    labels: tuple[int, ...]
    top_classes: tuple[int, ...]
    top_scores: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class ClassRow:
    """One row of per_class.csv (`top1` is None for a class with no example)."""

    index: int
    name: str
    correct: int
    count: int
    top1: float | None


def read_results(workdir: str) -> dict[str, Any]:
    """The run's results.json as a dict."""
    path = os.path.join(workdir, RESULTS_FILE)
    runs = sorted(
        name
        for name in _listdir(workdir)
        if tf.io.gfile.exists(os.path.join(workdir, name, RESULTS_FILE))
    )
    if not tf.io.gfile.exists(path) and runs:
        raise FileNotFoundError(
            f"Argument `workdir` must hold a finished run's results.json. "
            f"Received: workdir={workdir!r}, the workdir of a bulk command "
            f"(runs {runs}); pass one run's folder, e.g. "
            f"{os.path.join(workdir, runs[0])!r}"
        )
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"Argument `workdir` must hold a finished run's results.json. "
            f"Received: workdir={workdir!r} ({path} does not exist); run "
            "`tf-topk --workdir=...` first or pass that run's workdir"
        )
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _listdir(directory: str) -> list[str]:
    if not tf.io.gfile.isdir(directory):
        return []
    return [name.rstrip("/") for name in tf.io.gfile.listdir(directory)]


def read_per_class(workdir: str) -> list[ClassRow]:
    """per_class.csv's rows; an empty list when the file is absent."""
    path = os.path.join(workdir, PER_CLASS_FILE)
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return [
            ClassRow(
                index=int(row["class_index"]),
                name=row["class_name"],
                correct=int(row["correct"]),
                count=int(row["count"]),
                top1=float(row["top1"]) if row["top1"] else None,
            )
            for row in csv.DictReader(f)
        ]


def read_predictions(workdir: str) -> list[Prediction] | None:
    """The saved predictions as records, sorted by id; None when none were
    saved. Read (and checked) by `tf_topk.analysis.load_predictions`.

    Raises:
        ValueError: a malformed line (names file and line) or an id twice.
        FileNotFoundError: some worker's file is missing.
    """
    if not tf.io.gfile.glob(os.path.join(workdir, PREDICTIONS_DIR, "*.jsonl")):
        return None
    loaded = analysis.load_predictions(workdir)
    labels = loaded.labels.reshape(len(loaded.ids), -1)
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
            loaded.ids, labels, loaded.top_classes, loaded.top_scores
        )
    ]


def topk_accuracies(
    predictions: Iterable[Prediction], *, max_k: int = MAX_K
) -> list[float]:
    """Top-k accuracy for k = 1..max_k over the labeled predictions.

    An example is correct at k when any of its labels is among its k best
    classes (one label: the usual top-k). Unlabeled examples are left out,
    as in results.json. The list stops at the fewest classes a line holds.
    """
    labeled = [p for p in predictions if p.labels]
    if not labeled:
        return []
    max_k = min(max_k, min(len(p.top_classes) for p in labeled))
    hits = [0] * max_k
    for p in labeled:
        labels = set(p.labels)
        for rank, c in enumerate(p.top_classes[:max_k]):
            if c in labels:
                for k in range(rank, max_k):
                    hits[k] += 1
                break
    return [h / len(labeled) for h in hits]


def confused_pairs(
    predictions: Iterable[Prediction], *, limit: int = NUM_PAIRS
) -> list[tuple[int, int, int]]:
    """The most frequent (true class, predicted class, count) top-1 errors.

    A wrong example counts once for each of its true labels; ties in count
    are ordered by class index, so the list is deterministic.
    """
    counts: Counter[tuple[int, int]] = Counter()
    for p in predictions:
        if p.labels and p.top_classes and p.top_classes[0] not in p.labels:
            for label in p.labels:
                counts[(label, p.top_classes[0])] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(t, c, n) for (t, c), n in ranked[:limit]]


def per_class_from_predictions(
    predictions: Iterable[Prediction],
) -> list[ClassRow]:
    """Per-class top-1 rows computed from predictions (no per_class.csv)."""
    correct: Counter[int] = Counter()
    count: Counter[int] = Counter()
    for p in predictions:
        for label in p.labels:
            count[label] += 1
            correct[label] += bool(p.top_classes) and p.top_classes[0] in (
                p.labels
            )
    return [
        ClassRow(c, "", correct[c], count[c], correct[c] / count[c])
        for c in sorted(count)
    ]


def class_namer(rows: Sequence[ClassRow]) -> Callable[[int], str]:
    """Class index -> a name in words.

    ImageNet's names when per_class.csv has 1000 rows, else its
    `class_name` column, else the index itself.
    """
    if len(rows) == imagenet.NUM_CLASSES:
        names = imagenet.class_names()
        return lambda c: names[c] if 0 <= c < len(names) else str(c)
    by_index = {row.index: row.name for row in rows if row.name}
    return lambda c: by_index.get(c, str(c))


def wrong_predictions(
    predictions: Iterable[Prediction], *, limit: int
) -> list[Prediction]:
    """The `limit` most confident top-1 errors (ties by id)."""
    wrong = [
        p
        for p in predictions
        if p.labels and p.top_classes and p.top_classes[0] not in p.labels
    ]
    wrong.sort(key=lambda p: (-p.top_scores[0] if p.top_scores else 0, p.id))
    return wrong[:limit]
