"""The printed summary of a run: `format_table(result)`.

The only `print` of a run (`tf-topk`'s last lines) is this table: top-k
accuracies with counts, Wilson 95% intervals and published figures, the
tie, non-finite and unlabeled counts, the throughput, and the classes with
the most top-1 errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from tf_topk import results
from tf_topk.runs import files, tallies


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
        f"({result.images_per_s:.1f} images/s after warm-up; input "
        f"{result.input_time_s:.1f} s, model {result.model_time_s:.1f} s)"
    )
    if result.input_images_per_s is not None:
        extras.append(
            f"input pipeline alone: {result.input_images_per_s:.1f} images/s"
            + (" (it limits this run)" if result.input_limited else "")
        )
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
