"""Paired comparison of two finished runs from their saved predictions.

`compare` takes two runs' predictions (`tf_topk.runs.predictions.load`,
saved with `--config.eval.save_predictions=True`) and gives who got what
right (a 2x2 table), the exact McNemar test, a paired interval for the
accuracy difference and the classes that moved most; `compare_runs` does it
all from two workdirs and writes comparison.json; `format_comparison` is
its printed form (`tf-topk compare`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from tf_topk import imagenet, results
from tf_topk.runs import files, predictions


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """The exact two-sided McNemar p-value of the discordant pairs.

    With n = only_a + only_b, under equal accuracy only_a ~ Binomial(n, 1/2)
    and p = min(1, 2 P(X <= min(only_a, only_b))); p = 1 when n = 0 (the
    exact conditional test: Fagerland, Lydersen & Laake 2013, BMC Medical
    Research Methodology 13:91). Summed in log space: any n works.
    """
    n = only_a + only_b
    smaller = min(only_a, only_b)
    if n == 0:
        return 1.0
    log_comb = (
        math.lgamma(n + 1)
        - math.lgamma(smaller + 1)
        - math.lgamma(n - smaller + 1)
    )
    # P(X = i) / P(X = smaller), i = smaller - 1, ..., 0: falling terms.
    relative = 1.0
    total = 1.0
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
    first = both + only_first
    second = both + only_second
    p1 = first / n
    p2 = second / n
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
        a, b = self.accuracies
        k = self.k
        record = dataclasses.asdict(self)
        del record["k"]
        record["mcnemar_p"] = self.mcnemar_p
        record[f"top{k}_a"] = a
        record[f"top{k}_b"] = b
        record[f"top{k}_difference"] = b - a
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


def _same_labels(
    a: predictions.Predictions, b: predictions.Predictions
) -> np.ndarray:
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


def _hits(labels, run: predictions.Predictions, scored, k: int) -> np.ndarray:
    """bool [N]: a true label among the first k classes, scores finite."""
    top_classes = run.top_classes[scored]
    top_scores = run.top_scores[scored]
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
    a: predictions.Predictions,
    b: predictions.Predictions,
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
    if (
        not isinstance(top_n_classes, int)
        or isinstance(top_n_classes, bool)
        or top_n_classes < 0
    ):
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
    hits = {}
    tables = {}
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


def _results_or_none(workdir: str) -> dict[str, Any] | None:
    """The run's results.json, or None where it has none (nothing to check
    the comparison against)."""
    try:
        return files.read_results(workdir)
    except (OSError, ValueError, tf.errors.OpError):
        return None


def run_class_names(workdir: str) -> tuple[str, ...] | None:
    """A run's per_class.csv names (ImageNet's in words), or None."""
    names = tuple(row.name for row in files.read_per_class(workdir))
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

    Loads both runs' predictions (`tf_topk.runs.predictions.load`),
    compares them (class names from `run_class_names`), logs
    `check_against_results` against their results.json as warnings and
    writes comparison.json atomically. Print the result with
    `format_comparison`.

    Args:
        workdir_a: run A's folder, the baseline.
        workdir_b: run B's folder.
        workdir: where comparison.json goes (created).
        top_n_classes: how many of the classes that moved most to list.

    Returns:
        The comparison.

    Raises:
        ValueError: an empty `workdir`, or runs that `compare` refuses.
        FileNotFoundError: a run without (complete) saved predictions.
    """
    if not workdir:
        raise ValueError(
            "Argument `workdir` must name an output folder. Received: "
            f"workdir={workdir!r}"
        )
    a = predictions.load(workdir_a)
    b = predictions.load(workdir_b)
    names = run_class_names(workdir_a) or run_class_names(workdir_b)
    comparison = compare(a, b, class_names=names, top_n_classes=top_n_classes)
    for message in check_against_results(
        comparison, _results_or_none(workdir_a), _results_or_none(workdir_b)
    ):
        logging.warning("%s", message)
    tf.io.gfile.makedirs(workdir)
    files.write_json(
        os.path.join(workdir, files.COMPARISON_FILE), comparison.to_dict()
    )
    return comparison


def format_comparison(comparison: Comparison) -> str:
    """The printed comparison: tables, accuracies, p-values, classes."""
    top1 = comparison.top1
    top5 = comparison.top5
    lines = [
        f"Paired comparison over {comparison.num_examples} examples",
        f"  A: {comparison.name_a or '-'}",
        f"  B: {comparison.name_b or '-'}",
    ]
    if comparison.unlabeled:
        lines.append(
            f"  ({comparison.unlabeled} examples without a label left out)"
        )
    lines += [
        f"{'top-1':<12}{'B correct':>10}{'B wrong':>10}",
        f"{'A correct':<12}{top1.both_correct:>10}{top1.only_a:>10}",
        f"{'A wrong':<12}{top1.only_b:>10}{top1.neither:>10}",
    ]
    for table in (top1, top5):
        a, b = table.accuracies
        low, high = table.interval95
        lines.append(
            f"top-{table.k}: A {a:.4f}  B {b:.4f}  B - A {b - a:+.4f} [95% "
            f"CI {low:+.4f}, {high:+.4f}]  McNemar p={table.mcnemar_p:.4g}"
        )
    lines += [
        f"top-5 table: both {top5.both_correct}, only A {top5.only_a}, only "
        f"B {top5.only_b}, neither {top5.neither}",
        "(interval: Newcombe 1998 method 10; p: exact McNemar)",
    ]
    if comparison.classes_moved:
        lines.append("Classes whose top-1 moved most (B - A):")
        lines.append(f"{'class':>7}  {'name':<30}{'n':>6}{'A':>8}{'B':>8}")
    lines += [
        f"{m.class_index:>7}  {m.class_name[:29]:<30}{m.count:>6}"
        f"{m.top1_a:>8.4f}{m.top1_b:>8.4f} ({m.change:+.4f})"
        for m in comparison.classes_moved
    ]
    return "\n".join(lines)
