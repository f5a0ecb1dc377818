"""The printed summary of a run: `format_table(result)`.

The only `print` of a run (`tf-topk`'s last lines) is this table: top-k
accuracies with counts, Wilson 95% intervals and published figures, the
tie, non-finite and unlabeled counts, the throughput, the step's latency
and the peak memory, the out-of-memory back-offs, and the classes with the
most top-1 errors.

The phrases for the latency, memory and back-offs (`describe_latency`,
`describe_memory`, `describe_backoffs`, `format_bytes`) are public: the
report and the leaderboard say them the same way. An unknown figure (a
results.json written before they were recorded) reads "n/a".
"""

from __future__ import annotations

from collections.abc import Sequence

from tf_topk import results
from tf_topk.runs import files, tallies

NOT_AVAILABLE = "n/a"
_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_bytes(num_bytes: int) -> str:
    """A size in binary units with one decimal, e.g. "1.5 GiB".

    >>> format_bytes(512), format_bytes(1536), format_bytes(3 * 2**29)
    ('512 B', '1.5 KiB', '1.5 GiB')
    """
    if num_bytes < 1024:
        return f"{num_bytes} B"
    value = float(num_bytes)
    for unit in _BINARY_UNITS:
        value /= 1024
        if round(value, 1) < 1024 or unit == _BINARY_UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def describe_latency(p50: float | None, p95: float | None) -> str:
    """The step's latency percentiles, e.g. "p50 12.35 ms, p95 15.60 ms";
    "n/a" when no step was timed.

    >>> describe_latency(12.345, 15.6), describe_latency(None, None)
    ('p50 12.35 ms, p95 15.60 ms', 'n/a')
    """
    parts = [
        f"{name} {value:.2f} ms"
        for name, value in (("p50", p50), ("p95", p95))
        if value is not None
    ]
    return ", ".join(parts) or NOT_AVAILABLE


def describe_memory(host: int | None, device: int | None) -> str:
    """The peak memory, e.g. "host 1.5 GiB, device 3.0 GiB"; the device
    only when known (a GPU), "n/a" when neither is.

    >>> describe_memory(3 * 2**29, None)
    'host 1.5 GiB'
    """
    parts = [
        f"{name} {format_bytes(value)}"
        for name, value in (("host", host), ("device", device))
        if value is not None
    ]
    return ", ".join(parts) or NOT_AVAILABLE


def describe_backoffs(
    oom_backoffs: Sequence[int], batch_size: int | None
) -> str:
    """The out-of-memory back-offs of a run; "" when there were none.

    >>> describe_backoffs([64, 32], 16)
    'out of memory at batch 64, 32: finished at batch 16'
    """
    if not oom_backoffs:
        return ""
    text = "out of memory at batch " + ", ".join(map(str, oom_backoffs))
    if batch_size is None:
        return text
    return f"{text}: finished at batch {batch_size}"


def format_table(
    result: results.EvalResult,
    *,
    title: str = "",
    published: dict[int, float] | None = None,
    class_names: Sequence[str] | None = None,
    num_worst: int = 5,
) -> str:
    """A short human-readable table of the result.

    With `class_names`, a last line names the `num_worst` classes with
    the most top-1 errors (`tf_topk.runs.tallies.classes_by_errors`) and
    their correct / count.
    """
    published = published or {}
    lines = [title] if title else []
    lines.append(
        f"{'k':>4}  {'accuracy':>9}  {'correct / total':>17}  "
        f"{'95% interval':>17}  {'published':>9}"
    )
    for k in result.ks:
        low, high = result.interval(k)
        reference = published.get(k)
        reference_text = f"{100 * reference:8.2f}%" if reference else ""
        lines.append(
            f"{k:>4}  {100 * result.accuracy(k):8.2f}%  "
            f"{result.correct[k]:>7} / {result.num_scored:<7}  "
            f"[{100 * low:6.2f}, {100 * high:6.2f}]%  {reference_text:>9}"
        )
    extras = []
    if result.nonfinite:
        extras.append(f"{result.nonfinite} non-finite predictions")
    if any(result.ties.values()):
        ties = ", ".join(f"top{k}: {n}" for k, n in result.ties.items() if n)
        extras.append(f"tie-decided ({result.ties_rule}): {ties}")
    if result.unlabeled:
        extras.append(f"{result.unlabeled} unlabeled examples left out")
    extras.append(
        f"{result.num_examples} images in {result.wall_time_s:.1f} s "
        f"({result.images_per_s:.1f} images/s; waiting for the input "
        f"{result.input_time_s:.1f} s, model {result.model_time_s:.1f} s)"
    )
    if result.input_images_per_s is not None:
        extras.append(
            f"input pipeline alone: {result.input_images_per_s:.1f} images/s"
            + (" (it limits this run)" if result.input_limited else "")
        )
    extras.append(
        "step latency "
        + describe_latency(result.latency_ms_p50, result.latency_ms_p95)
        + "; peak memory "
        + describe_memory(result.peak_host_bytes, result.peak_device_bytes)
    )
    if result.oom_backoffs:
        extras.append(describe_backoffs(result.oom_backoffs, result.batch_size))
    lines.extend(extras)
    if class_names and result.per_class_count and num_worst:
        rows = [
            files.ClassRow(index, name, correct, count, None)
            for index, (name, correct, count) in enumerate(
                zip(
                    class_names,
                    result.per_class_correct,
                    result.per_class_count,
                )
            )
        ]
        worst = tallies.classes_by_errors(rows, limit=num_worst)
        if worst:
            lines.append(
                "most top-1 errors: "
                + "; ".join(
                    f"{row.name} {row.correct}/{row.count}" for row in worst
                )
            )
    return "\n".join(lines)
