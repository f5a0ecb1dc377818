"""Paired comparison of two finished runs from their saved predictions.

`load_predictions` reads `<workdir>/predictions/*.jsonl` (saved with
`--config.eval.save_predictions=True`); `compare` gives who got what right
(a 2x2 table), the exact McNemar test, a paired interval for the accuracy
difference and the classes that moved most; `compare_runs` does it all.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from tf_topk import imagenet, predictions, report, results

PREDICTIONS_DIR = predictions.DIRECTORY
COMPARISON_FILE = "comparison.json"
TOP_WIDTH = 10  # Top classes per line (fewer for a smaller model).
_FILE_PATTERN = predictions.FILE_PATTERN
_KEYS = ("id", "labels", "top_classes", "top_scores")


@dataclasses.dataclass(frozen=True, eq=False)
class Predictions:
    """One run's saved predictions, all workers' files together.

    Attributes:
        ids: str [N], ascending; the arrays below follow the same order.
        labels: int64 [N] for single-label data, else int64 [N, L] for
            multi-label: rows ascending, -1 padded (may be all -1: ReaL).
        top_classes: int64 [N, 10], best first; -1 pads (fewer classes).
        top_scores: float64 [N, 10], their scores; NaN pads.
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


def _prediction_files(workdir: str) -> list[str]:
    """The run's predictions files, one per worker, in worker order."""
    directory = os.path.join(workdir, PREDICTIONS_DIR)
    found = expected = []
    if tf.io.gfile.isdir(directory):
        found = sorted(
            filter(_FILE_PATTERN.match, tf.io.gfile.listdir(directory))
        )
    if found:
        n = int(_FILE_PATTERN.match(found[-1]).group(2))  # Workers.
        expected = [f"predictions-{i:05d}-of-{n:05d}.jsonl" for i in range(n)]
    if not found or found != expected:
        raise FileNotFoundError(
            f"Run {workdir!r} has no complete set of saved predictions in "
            f"{directory}: found {found}, expected one predictions-NNNNN-of-"
            "NNNNN.jsonl file per worker. Evaluate it again with "
            "--config.eval.save_predictions=True (CLI) or tf_topk.evaluate("
            "..., predictions_dir=...), then compare again."
        )
    return [os.path.join(directory, name) for name in expected]


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse_line(line: str, where: str) -> tuple[str, list, list, list]:
    """(id, labels, top_classes, top_scores) of one line; else ValueError."""
    problem = (
        f"{where}: expected a JSON object with a non-empty string `id`, "
        "`labels` (class indices), 1 to 10 `top_classes` (class indices) and "
        f"as many numeric `top_scores`. Received: {line.strip()[:200]!r}"
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
        and 0 < len(classes) == len(scores) <= TOP_WIDTH
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


def load_predictions(workdir: str) -> Predictions:
    """Reads a run's saved predictions (all workers' files, line by line).

    Raises FileNotFoundError without (complete) predictions, naming the run
    and `--config.eval.save_predictions=True`; ValueError for a malformed
    line (names file and line) or an id seen twice (names it, both lines).
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
        top_classes=_padded(classes, TOP_WIDTH, -1, np.int64)[order],
        top_scores=_padded(scores, TOP_WIDTH, np.nan, np.float64)[order],
        source=workdir,
    )


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """The exact two-sided McNemar p-value of the discordant pairs.

    With n = only_a + only_b, under equal accuracy only_a ~ Binomial(n, 1/2)
    and p = min(1, 2 P(X <= min(only_a, only_b))); p = 1 when n = 0 (the
    exact conditional test: Fagerland, Lydersen & Laake 2013, BMC Medical
    Research Methodology 13:91). Summed in log space: any n works.
    """
    n, smaller = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    lgamma = math.lgamma
    log_comb = lgamma(n + 1) - lgamma(smaller + 1) - lgamma(n - smaller + 1)
    # P(X = i) / P(X = smaller), i = smaller - 1, ..., 0: falling terms.
    relative, total = 1.0, 1.0
    for i in range(smaller, 0, -1):
        relative *= i / (n - i + 1)
        total += relative
        if relative < 1e-17 * total:
            break
    return min(1.0, 2 * math.exp(log_comb - n * math.log(2) + math.log(total)))


def newcombe_interval(
    both: int, only_first: int, only_second: int, neither: int
) -> tuple[float, float]:
    """95% interval of p_first - p_second from paired outcomes.

    Newcombe's method 10 (square-and-add of the two Wilson intervals):
    R. G. Newcombe (1998), "Improved confidence intervals for the difference
    between binomial proportions based on paired data", Statistics in
    Medicine 17:2635-2650; as in Fagerland, Lydersen & Laake (2017),
    Statistical Analysis of Contingency Tables, section 8.5. phi, the pairs'
    correlation, is continuity corrected as there. Inside [-1, 1], sound at
    0 and 100% accuracy; (nan, nan) for no pairs.
    """
    n = both + only_first + only_second + neither
    if n == 0:
        return (math.nan, math.nan)
    first, second = both + only_first, both + only_second
    p1, p2 = first / n, second / n
    l1, u1 = results.wilson_interval(first, n)
    l2, u2 = results.wilson_interval(second, n)
    margins = first * (n - first) * second * (n - second)
    association = both * neither - only_first * only_second
    phi = 0.0
    if margins and association > n / 2:
        phi = (association - n / 2) / math.sqrt(margins)
    elif margins and association < 0:
        phi = association / math.sqrt(margins)
    dl1, du1, dl2, du2 = p1 - l1, u1 - p1, p2 - l2, u2 - p2
    lower = math.sqrt(max(0.0, dl1**2 - 2 * phi * dl1 * du2 + du2**2))
    upper = math.sqrt(max(0.0, du1**2 - 2 * phi * du1 * dl2 + dl2**2))
    return (max(-1.0, p1 - p2 - lower), min(1.0, p1 - p2 + upper))


@dataclasses.dataclass(frozen=True)
class PairedTable:
    """Top-k outcomes of runs A and B: both, only A, only B, neither right."""

    k: int
    both_correct: int
    only_a: int
    only_b: int
    neither: int

    @property
    def accuracies(self) -> tuple[float, float]:
        """The top-k accuracies of A and B."""
        n = self.both_correct + self.only_a + self.only_b + self.neither
        return tuple(
            (self.both_correct + x) / n for x in (self.only_a, self.only_b)
        )

    @property
    def mcnemar_p(self) -> float:
        """The exact two-sided McNemar p-value (`mcnemar_exact`)."""
        return mcnemar_exact(self.only_a, self.only_b)

    @property
    def interval95(self) -> tuple[float, float]:
        """Newcombe's 95% interval of B - A (`newcombe_interval`)."""
        return newcombe_interval(
            self.both_correct, self.only_b, self.only_a, self.neither
        )

    def to_dict(self) -> dict[str, Any]:
        """Cells, McNemar p, accuracies, difference B - A, its interval."""
        (a, b), k = self.accuracies, self.k
        record = dataclasses.asdict(self)
        del record["k"]
        record.update(mcnemar_p=self.mcnemar_p, **{f"top{k}_a": a})
        record.update({f"top{k}_b": b, f"top{k}_difference": b - a})
        record["difference_interval95"] = list(self.interval95)
        return record


@dataclasses.dataclass(frozen=True)
class ClassChange:
    """Top-1 accuracy of one true class in runs A and B; change = B - A."""

    class_index: int
    class_name: str
    count: int
    top1_a: float
    top1_b: float
    change: float


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Runs A and B compared (`compare`): `num_examples` labeled examples;
    `unlabeled` ones left out; `name_a`, `name_b` name the runs."""

    num_examples: int
    top1: PairedTable
    top5: PairedTable
    classes_moved: tuple[ClassChange, ...]
    name_a: str = ""
    name_b: str = ""
    unlabeled: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The comparison.json record."""
        return {
            "num_examples": self.num_examples,
            **self.top1.to_dict(),
            "top5": self.top5.to_dict(),
            "classes_moved": list(map(dataclasses.asdict, self.classes_moved)),
        }


def _same_labels(a: Predictions, b: Predictions) -> np.ndarray:
    """The runs' labels as [N, L] (-1 padded); refuses other examples."""
    runs = f"Runs A ({a.source}) and B ({b.source})"
    if not np.array_equal(a.ids, b.ids):
        only_a = np.setdiff1d(a.ids, b.ids, assume_unique=True).tolist()
        only_b = np.setdiff1d(b.ids, a.ids, assume_unique=True).tolist()
        raise ValueError(
            f"{runs} were evaluated on different examples: {len(only_a)} "
            f"id(s) only in A (e.g. {only_a[:3]}) and {len(only_b)} "
            f"only in B (e.g. {only_b[:3]}). A paired comparison needs "
            "the same examples: evaluate both on the same data."
        )
    width = max(a.label_sets().shape[1], b.label_sets().shape[1])
    sets = [a.label_sets(width), b.label_sets(width)]
    differ = np.nonzero((sets[0] != sets[1]).any(axis=1))[0]
    if len(differ):
        shown = [[int(v) for v in s[differ[0]] if v >= 0] for s in sets]
        raise ValueError(
            f"{runs} disagree on the labels of {len(differ)} example(s), e.g."
            f" id {str(a.ids[differ[0]])!r}: {shown[0]} in A, {shown[1]} in "
            "B. Evaluate both with the same ground truth (labels file, "
            "label offset)."
        )
    return sets[0]


def _hits(labels, run: Predictions, scored, k: int) -> np.ndarray:
    """bool [N]: a true label among the first k classes, scores finite."""
    top_classes, top_scores = run.top_classes[scored], run.top_scores[scored]
    top = top_classes[:, :k]
    match = (labels[:, :, None] == top[:, None, :]) & (labels[:, :, None] >= 0)
    finite = np.isfinite(top_scores) | (top_classes < 0)
    return match.any(axis=(1, 2)) & finite.all(axis=1)


def _classes_moved(
    labels: np.ndarray, correct: list, names: Sequence[str], top_n: int
) -> tuple[ClassChange, ...]:
    rows, columns = np.nonzero(labels >= 0)
    classes = labels[rows, columns]
    count = np.bincount(classes)
    right = [np.bincount(classes, c[rows], len(count)) for c in correct]
    # One division per class: equal changes are equal floats (fair ties).
    total = np.maximum(count, 1)
    change = (right[1] - right[0]) / total
    moved = np.nonzero(change)[0]
    order = moved[np.lexsort((moved, -np.abs(change[moved])))][:top_n]
    names = list(names) + [""] * (len(count) - len(names))
    fields = np.stack([right[0] / total, right[1] / total, change], axis=1)
    return tuple(
        ClassChange(c, names[c], int(count[c]), *fields[c].tolist())
        for c in order.tolist()
    )


def compare(
    a: Predictions,
    b: Predictions,
    *,
    class_names: Sequence[str] | None = None,
    top_n_classes: int = 10,
) -> Comparison:
    """Compares run A (the baseline) and run B example by example.

    Correct at top-k: a true label (any, if several) is in `top_classes[:k]`
    with finite scores. Ties follow the stored (model's) order; results.json
    follows tf.math.in_top_k's inclusive rule, so accuracies agree with it
    where it recorded no tie. Unlabeled examples are left out. Classes moved:
    the `top_n_classes` largest nonzero |B - A| of per-class top-1 accuracy
    (ties by index). Raises ValueError for other example sets (with the
    counts of ids only in A and only in B) or labels (names the id).
    """
    if not _is_index(top_n_classes):
        raise ValueError(
            "Argument `top_n_classes` must be an int >= 0. Received: "
            f"top_n_classes={top_n_classes!r}"
        )
    labels = _same_labels(a, b)
    scored = (labels >= 0).any(axis=1)
    if not scored.any():
        raise ValueError(
            f"Runs A ({a.source}) and B ({b.source}) have no labeled example"
            f" to compare. Received: {len(a.ids)} example(s), none labeled."
        )
    labels = labels[scored]
    hits, tables = {}, {}
    for k in (1, 5):
        hits[k] = [_hits(labels, run, scored, k) for run in (a, b)]
        x, y = hits[k]
        cells = (x & y, x & ~y, ~x & y, ~x & ~y)
        tables[k] = PairedTable(k, *(int(cell.sum()) for cell in cells))
    moved = _classes_moved(labels, hits[1], class_names or (), top_n_classes)
    unlabeled = int(len(scored) - scored.sum())
    return Comparison(
        len(labels), tables[1], tables[5], moved, a.source, b.source, unlabeled
    )


def _read_json(path: str) -> Any:
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    except (OSError, ValueError, tf.errors.OpError):
        return None  # No (readable) results.json: nothing to check.


def run_class_names(workdir: str) -> tuple[str, ...] | None:
    """A run's per_class.csv names (ImageNet's in words), or None."""
    names: tuple[str, ...] = ()
    path = os.path.join(workdir, report.PER_CLASS_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            names = tuple(row["class_name"] for row in csv.DictReader(f))
    try:
        if len(names) == imagenet.NUM_CLASSES and names == imagenet.synsets():
            return imagenet.class_names()
    except (ImportError, OSError, ValueError) as e:
        logging.warning("ImageNet class names unavailable (%s).", e)
    return names if any(names) else None


def check_against_results(
    comparison: Comparison,
    results_a: Mapping[str, Any] | None,
    results_b: Mapping[str, Any] | None,
) -> list[str]:
    """A message per accuracy that differs from its run's results.json."""
    messages = []
    for run, record in enumerate((results_a or {}, results_b or {})):
        for table in (comparison.top1, comparison.top5):
            key, ours = f"top{table.k}", table.accuracies[run]
            recorded = record.get(key)
            if recorded is None or abs(ours - recorded) <= 1e-9:
                continue
            ties = (record.get("ties") or {}).get(key, 0)
            why = (
                "expected: tf.math.in_top_k counts a tied true class correct"
                if ties
                else "with no tie they should agree: are both of one run?"
            )
            messages.append(
                f"Run {'AB'[run]}: {key} from its predictions is {ours:.6f} "
                f"(n={comparison.num_examples}) but {recorded:.6f} in its "
                f"results.json (n={record.get('num_scored')}, ties={ties}); "
                f"{why}."
            )
    return messages


def compare_runs(
    workdir_a: str, workdir_b: str, workdir: str, *, top_n_classes: int = 10
) -> Comparison:
    """Compares two finished runs; writes `<workdir>/comparison.json`.

    `load_predictions` and `compare` both runs (class names from
    `run_class_names`), log `check_against_results` as warnings and write
    comparison.json atomically. Print the result with `format_comparison`.
    """
    if not workdir:
        raise ValueError(
            "Argument `workdir` must name an output folder. Received: "
            f"workdir={workdir!r}"
        )
    a, b = load_predictions(workdir_a), load_predictions(workdir_b)
    names = run_class_names(workdir_a) or run_class_names(workdir_b)
    comparison = compare(a, b, class_names=names, top_n_classes=top_n_classes)
    paths = [
        os.path.join(w, report.RESULTS_FILE) for w in (workdir_a, workdir_b)
    ]
    records = map(_read_json, paths)
    for message in check_against_results(comparison, *records):
        logging.warning("%s", message)
    tf.io.gfile.makedirs(workdir)
    path = os.path.join(workdir, COMPARISON_FILE)
    text = json.dumps(comparison.to_dict(), indent=2, allow_nan=False)
    report.write_atomic(path, text)
    return comparison


def format_comparison(comparison: Comparison) -> str:
    """The printed comparison: tables, accuracies, p-values, classes."""
    c, t1, t5 = comparison, comparison.top1, comparison.top5
    lines = [f"Paired comparison over {c.num_examples} examples"]
    lines += [f"  A: {c.name_a or '-'}", f"  B: {c.name_b or '-'}"]
    if c.unlabeled:
        lines.append(f"  ({c.unlabeled} examples without a label left out)")
    lines += [
        f"{'top-1':<12}{'B correct':>10}{'B wrong':>10}",
        f"{'A correct':<12}{t1.both_correct:>10}{t1.only_a:>10}",
        f"{'A wrong':<12}{t1.only_b:>10}{t1.neither:>10}",
    ]
    for t in (t1, t5):
        (a, b), (low, high) = t.accuracies, t.interval95
        lines.append(
            f"top-{t.k}: A {a:.4f}  B {b:.4f}  B - A {b - a:+.4f} [95% CI "
            f"{low:+.4f}, {high:+.4f}]  McNemar p={t.mcnemar_p:.4g}"
        )
    lines += [
        f"top-5 table: both {t5.both_correct}, only A {t5.only_a}, only B "
        f"{t5.only_b}, neither {t5.neither}",
        "(interval: Newcombe 1998 method 10; p: exact McNemar)",
    ]
    if c.classes_moved:
        lines.append("Classes whose top-1 moved most (B - A):")
        lines.append(f"{'class':>7}  {'name':<30}{'n':>6}{'A':>8}{'B':>8}")
    lines += [
        f"{m.class_index:>7}  {m.class_name[:29]:<30}{m.count:>6}"
        f"{m.top1_a:>8.4f}{m.top1_b:>8.4f} ({m.change:+.4f})"
        for m in c.classes_moved
    ]
    return "\n".join(lines)
