"""What a run measured: `EvalResult` and the Wilson interval of its counts.

Kept apart from the loop that fills it, so that the report, the callback and
the comparisons of runs read results without importing the evaluation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

# Two-sided 95% normal quantile, for the Wilson score interval.
_Z95 = 1.959963984540054


def wilson_interval(
    correct: float, total: float, z: float = _Z95
) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and behaves at
    0 and 100% accuracy, which small evaluation sets reach.
    """
    if total <= 0:
        return (math.nan, math.nan)
    p = correct / total
    z2 = z * z
    denominator = 1.0 + z2 / total
    center = (p + z2 / (2.0 * total)) / denominator
    half = (
        z
        * math.sqrt(p * (1.0 - p) / total + z2 / (4.0 * total * total))
        / denominator
    )
    return (max(0.0, center - half), min(1.0, center + half))


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """What one evaluation measured. `to_dict()` gives the results.json keys.

    Attributes:
        ks: the k values, ascending.
        num_examples: examples the loop saw (padding excluded).
        num_scored: examples in the accuracy denominators (differs from
            num_examples only for multi-label sets with unlabeled examples).
        correct: exact correct count per k.
        ties: per k, examples whose outcome a tie at the k-th place decided.
        nonfinite: examples whose predictions held NaN or Inf (counted
            wrong).
        unlabeled: multi-label examples with no true label (left out).
        per_class_correct: top-1 correct count per true class (None for
            multi-label sets).
        per_class_count: examples per true class (None for multi-label).
        wall_time_s: seconds for the whole loop.
        images_per_s: throughput after the first (warm-up) batch.
        input_time_s: seconds spent waiting for the input pipeline.
        model_time_s: seconds spent in the model and metric step.
        ties_rule: "inclusive" or "exclusive".
        metadata: what was evaluated (model, data, preprocessing, versions);
            filled in by the caller, written into results.json as is.
    """

    ks: tuple[int, ...]
    num_examples: int
    num_scored: int
    correct: Mapping[int, int]
    ties: Mapping[int, int]
    nonfinite: int
    unlabeled: int
    per_class_correct: tuple[int, ...] | None
    per_class_count: tuple[int, ...] | None
    wall_time_s: float
    images_per_s: float
    input_time_s: float
    model_time_s: float
    ties_rule: str = "inclusive"
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def accuracy(self, k: int) -> float:
        """Fraction of scored examples whose class is in the top k."""
        if k not in self.correct:
            raise ValueError(
                f"Argument `k` must be one of the evaluated ks {list(self.ks)}."
                f" Received: k={k}"
            )
        if self.num_scored == 0:
            return math.nan
        return self.correct[k] / self.num_scored

    def interval(self, k: int) -> tuple[float, float]:
        """95% Wilson interval of the top-k accuracy."""
        self.accuracy(k)
        return wilson_interval(self.correct[k], self.num_scored)

    @property
    def per_class_top1(self) -> tuple[float, ...] | None:
        """Top-1 accuracy per true class; NaN for a class with no example."""
        if self.per_class_count is None:
            return None
        return tuple(
            c / n if n else math.nan
            for c, n in zip(self.per_class_correct, self.per_class_count)
        )

    def to_dict(self) -> dict[str, Any]:
        """The results.json record (without the per-class table)."""
        record: dict[str, Any] = {"num_examples": self.num_examples}
        for k in self.ks:
            record[f"top{k}"] = self.accuracy(k)
            record[f"top{k}_correct"] = self.correct[k]
        record["num_scored"] = self.num_scored
        for k in self.ks:
            record[f"top{k}_error"] = 1.0 - self.accuracy(k)
            record[f"top{k}_interval95"] = list(self.interval(k))
        record["ties"] = {f"top{k}": self.ties[k] for k in self.ks}
        record["ties_rule"] = self.ties_rule
        record["nonfinite"] = self.nonfinite
        record["unlabeled"] = self.unlabeled
        record["wall_time_s"] = self.wall_time_s
        record["throughput"] = {
            "images_per_s": self.images_per_s,
            "input_time_s": self.input_time_s,
            "model_time_s": self.model_time_s,
        }
        record.update(self.metadata)
        return record

    def summary(self) -> str:
        """One line: 'top1=0.7032 [0.69, 0.71] top5=... (n=50000)'."""
        parts = []
        for k in self.ks:
            low, high = self.interval(k)
            parts.append(
                f"top{k}={self.accuracy(k):.4f} [{low:.4f}, {high:.4f}]"
            )
        return " ".join(parts) + f" (n={self.num_scored})"
