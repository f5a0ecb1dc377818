"""What a run measured: `EvalResult` and the Wilson interval of its counts.

Kept apart from the loop that fills it, so that the report, the callback and
the comparisons of runs read results without importing the evaluation.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

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
        images_per_s: the run's throughput: the examples this loop ran
            (`num_examples - resumed_from`) over `wall_time_s`, the first
            (compiling) batch included, as for every rate here.
        input_time_s: seconds spent waiting for the input pipeline.
        model_time_s: seconds spent in the model and metric step.
        ties_rule: "inclusive" or "exclusive".
        resumed_from: examples restored from a checkpoint (0: the run
            started from scratch); throughput covers the others only.
        metadata: what was evaluated (model, data, preprocessing, versions);
            filled in by the loop's listeners (`listeners.Metadata`,
            `diagnostics.Diagnosis`), written into results.json as is.
        input_images_per_s: images/s the input pipeline delivers alone,
            measured on a few batches with the model out of the loop
            (`tf_topk.input_stage.measure`); None when not measured.
        input_limited: True when the pipeline alone delivers fewer
            images/s than the model alone consumes, so the run cannot go
            faster than its input (`tf_topk.input_stage.limits`); None
            when either rate is unknown.
        batch_size: the batch size the run finished with: the input's,
            or the smaller one an out-of-memory back-off went on at
            (`tf_topk.backoff`); None when unknown.
        oom_backoffs: the batch sizes that ran out of memory, in order.
        latency_ms_p50, latency_ms_p95: the median and 95th percentile of
            one step (the model and the metric update on one batch), in
            ms, the first step at each batch size (compilation) excluded;
            None when no step was timed.
        peak_host_bytes: the process's resident high-water mark.
        peak_device_bytes: the largest peak of the local GPUs during the
            run; None without a GPU.
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
    resumed_from: int = 0
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    input_images_per_s: float | None = None
    input_limited: bool | None = None
    batch_size: int | None = None
    oom_backoffs: tuple[int, ...] = ()
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    peak_host_bytes: int | None = None
    peak_device_bytes: int | None = None

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

    @property
    def model_images_per_s(self) -> float | None:
        """Images/s of the model and metric step alone, input wait excluded.

        The examples this run's loop ran (`num_examples - resumed_from`)
        over `model_time_s`: the same batches as `images_per_s`, the first
        (tracing and compiling) step included, so the run's rate never
        exceeds it; short runs understate both. None when the loop ran no
        example or no time was measured.
        """
        ran = self.num_examples - self.resumed_from
        if ran <= 0 or not self.model_time_s or self.model_time_s <= 0:
            return None
        return ran / self.model_time_s

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
        record["resumed_from"] = self.resumed_from
        record["throughput"] = {
            "images_per_s": self.images_per_s,
            "input_time_s": self.input_time_s,
            "model_time_s": self.model_time_s,
            "input_images_per_s": self.input_images_per_s,
            "model_images_per_s": self.model_images_per_s,
            "input_limited": self.input_limited,
            "latency_ms_p50": self.latency_ms_p50,
            "latency_ms_p95": self.latency_ms_p95,
        }
        record["batch_size"] = self.batch_size
        record["oom_backoffs"] = list(self.oom_backoffs)
        record["memory"] = {
            "peak_host_bytes": self.peak_host_bytes,
            "peak_device_bytes": self.peak_device_bytes,
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


def from_record(record: Mapping[str, Any]) -> EvalResult:
    """The `EvalResult` a results.json record describes (`to_dict`'s
    inverse, without the per-class table, which per_class.csv holds).

    Raises:
        KeyError, TypeError, ValueError: not a results.json record.
    """
    ks = tuple(
        sorted(
            int(key[3 : -len("_correct")])
            for key in record
            if re.fullmatch(r"top\d+_correct", key)
        )
    )
    if not ks:
        raise ValueError("The record has no top{k}_correct count.")
    throughput = record["throughput"]
    known = {"num_examples", "num_scored", "ties", "ties_rule", "nonfinite"}
    known |= {"unlabeled", "wall_time_s", "resumed_from", "throughput"}
    known |= {"batch_size", "oom_backoffs", "memory"}
    memory = record.get("memory") or {}
    for k in ks:
        known |= {f"top{k}{s}" for s in ("", "_correct", "_error")}
        known.add(f"top{k}_interval95")
    return EvalResult(
        ks=ks,
        num_examples=int(record["num_examples"]),
        num_scored=int(record["num_scored"]),
        correct={k: int(record[f"top{k}_correct"]) for k in ks},
        ties={k: int(record["ties"][f"top{k}"]) for k in ks},
        nonfinite=int(record["nonfinite"]),
        unlabeled=int(record["unlabeled"]),
        per_class_correct=None,
        per_class_count=None,
        wall_time_s=float(record["wall_time_s"]),
        images_per_s=float(throughput["images_per_s"]),
        input_time_s=float(throughput["input_time_s"]),
        model_time_s=float(throughput["model_time_s"]),
        ties_rule=record["ties_rule"],
        resumed_from=int(record.get("resumed_from") or 0),
        metadata={k: v for k, v in record.items() if k not in known},
        input_images_per_s=throughput.get("input_images_per_s"),
        input_limited=throughput.get("input_limited"),
        batch_size=record.get("batch_size"),
        oom_backoffs=tuple(record.get("oom_backoffs") or ()),
        latency_ms_p50=throughput.get("latency_ms_p50"),
        latency_ms_p95=throughput.get("latency_ms_p95"),
        peak_host_bytes=memory.get("peak_host_bytes"),
        peak_device_bytes=memory.get("peak_device_bytes"),
    )


@dataclasses.dataclass
class Timing:
    """This worker's examples and where its time went (the loop fills it).

    Every rate derived from it covers the same batches, every batch the
    loop ran, the first one (which traces and compiles the step) included:
    the run's rate is its examples over the wall time, the model's over the
    time in the step, so the run can never appear faster than its model.
    """

    local_seen: int = 0
    input_time: float = 0.0
    model_time: float = 0.0
    wall_time: float = 0.0
    # Each step's seconds in ms, the first at each batch size (tracing and
    # compiling) and failed ones left out.
    step_times_ms: list[float] = dataclasses.field(default_factory=list)
    # The step's batch size after an out-of-memory back-off (None: the
    # input's), and the sizes that ran out of memory.
    batch_size: int | None = None
    oom_backoffs: list[int] = dataclasses.field(default_factory=list)
    peak_host_bytes: int | None = None
    peak_device_bytes: int | None = None

    def latency_ms(self, percentile: float) -> float | None:
        """A percentile of the step's latency in ms (None: no step timed).

        >>> Timing(step_times_ms=[1.0, 2.0, 3.0, 10.0]).latency_ms(50)
        2.5
        """
        if not self.step_times_ms:
            return None
        return float(np.percentile(self.step_times_ms, percentile))

    def images_per_s(self, seen: int) -> float:
        """The run's images/s: the `seen` examples (all workers) it ran
        over its wall time (every worker runs the same steps)."""
        return seen / self.wall_time if self.wall_time > 0 else 0.0


def from_counts(
    counts,
    per_class_counts,
    *,
    timing: Timing,
    expected_num_examples: int | None,
    num_classes: int,
    ties_rule: str,
    resumed_from: int = 0,
) -> EvalResult:
    """The checked counts of a finished loop as an `EvalResult`.

    Args:
        counts: a `tf_topk.metrics.Counts` (global: summed over workers).
        per_class_counts: (correct, count) arrays per class, or None.
        timing: what the loop measured.
        expected_num_examples: the count the loop must have seen, if known.
        num_classes: the model's number of classes (for the label error).
        ties_rule: "inclusive" or "exclusive".
        resumed_from: examples restored from a checkpoint.

    Raises:
        ValueError: no example, a count other than `expected_num_examples`,
            or labels out of range (counted under XLA).
    """
    seen = _checked_num_examples(counts, expected_num_examples, num_classes)
    per_class_correct = per_class_count = None
    if per_class_counts is not None:
        per_class_correct = tuple(int(round(x)) for x in per_class_counts[0])
        per_class_count = tuple(int(round(x)) for x in per_class_counts[1])
    ks = tuple(counts.ks)
    return EvalResult(
        ks=ks,
        num_examples=seen,
        num_scored=int(round(counts.num_examples)),
        correct={k: int(round(c)) for k, c in zip(ks, counts.correct)},
        ties={k: int(round(t)) for k, t in zip(ks, counts.ties)},
        nonfinite=int(round(counts.nonfinite)),
        unlabeled=int(round(counts.unlabeled)),
        per_class_correct=per_class_correct,
        per_class_count=per_class_count,
        wall_time_s=timing.wall_time,
        images_per_s=timing.images_per_s(seen - resumed_from),
        input_time_s=timing.input_time,
        model_time_s=timing.model_time,
        ties_rule=ties_rule,
        resumed_from=resumed_from,
        batch_size=timing.batch_size,
        oom_backoffs=tuple(timing.oom_backoffs),
        latency_ms_p50=timing.latency_ms(50),
        latency_ms_p95=timing.latency_ms(95),
        peak_host_bytes=timing.peak_host_bytes,
        peak_device_bytes=timing.peak_device_bytes,
    )


def _checked_num_examples(
    counts, expected_num_examples: int | None, num_classes: int
) -> int:
    """The examples seen; raises unless every one was counted once."""
    seen = int(round(counts.num_examples + counts.unlabeled))
    if seen == 0:
        raise ValueError(
            "Argument `dataset` is empty: there is nothing to evaluate. "
            "Check the data path and split."
        )
    if expected_num_examples is not None and seen != expected_num_examples:
        raise ValueError(
            f"The evaluation saw {seen} examples but "
            f"expected_num_examples={expected_num_examples}: examples were "
            "dropped or duplicated (drop_remainder, repeat(), a filter, or a "
            "wrong count). Refusing to report a number over the wrong set."
        )
    if counts.invalid_labels:
        raise ValueError(
            f"{int(counts.invalid_labels)} examples had labels outside "
            f"[0, {num_classes}). Check the label offset and the model's "
            "number of classes."
        )
    return seen
