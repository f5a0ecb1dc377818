"""robustness.json and robustness.md: a robustness command's one table.

`record` turns the runs of a robustness command (`tf_topk.cli.robustness`:
leaderboard rows, one per ImageNet-C cell or dataset) into robustness.json:

- the ImageNet-C keys of `tf_topk.corruptions.Summary.to_dict` (`cells`,
  `corruption_errors`, `mce`, `relative_mce`, the corruptions and
  severities missing, AlexNet's source), when cells ran;
- `datasets`: one entry per suite dataset (top-1 / top-5, counts, 95%
  intervals, `top1_drop_from_clean`, and for ImageNet-A / R
  `top1_drop_from_clean200` against `<name>_clean200`);
- `failed_runs`: the runs that failed, with their errors (a failed cell
  is left out of the mCE and listed as missing).

`write` writes it and its markdown table; `to_markdown` renders the table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tf_topk import corruptions
from tf_topk.runs import files

CLEAN = "clean"
CLEAN200_SUFFIX = "_clean200"


def record(
    rows: Sequence[Any],
    *,
    cells: Sequence[tuple[str, int, str]] = (),
    clean_top1: float | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """robustness.json's content.

    Args:
        rows: the command's `tf_topk.cli.leaderboard.Row`s (run, status,
            num_examples, top1, top1_correct, ...).
        cells: (corruption, severity, run) of each ImageNet-C cell.
        clean_top1: the model's clean top-1 (relative mCE), or None.
        model: what was evaluated.

    Returns:
        A JSON-able dict (see the module docstring).
    """
    by_run = {row.run: row for row in rows}
    content: dict[str, Any] = {"model": model}
    counts = []
    for corruption, severity, run in cells:
        row = by_run.get(run)
        if row is None or row.status != "ok":
            continue
        counts.append(
            corruptions.CellCounts(
                corruption=corruption,
                severity=severity,
                num_examples=row.num_examples,
                top1_correct=row.top1_correct,
                top5_correct=row.top5_correct,
            )
        )
    if counts:
        summary = corruptions.summarize(counts, clean_top1=clean_top1)
        content.update(summary.to_dict())
    cell_runs = {run for _, _, run in cells}
    content["datasets"] = _datasets(
        [row for row in rows if row.run not in cell_runs]
    )
    content["failed_runs"] = {
        row.run: row.error for row in rows if row.status != "ok"
    }
    return content


def _datasets(rows) -> list[dict[str, Any]]:
    """The suite's table: one entry per dataset run, drops from clean."""
    by_run = {row.run: row for row in rows}
    clean = by_run.get(CLEAN)
    clean_top1 = clean.top1 if clean and clean.status == "ok" else None
    entries = []
    for row in rows:
        entry = {
            "dataset": row.run,
            "status": row.status,
            "num_examples": row.num_examples,
            "top1": row.top1,
            "top5": row.top5,
            "top1_correct": row.top1_correct,
            "top5_correct": row.top5_correct,
            "top1_interval95": _pair(
                row.top1_interval95_low, row.top1_interval95_high
            ),
            "top5_interval95": _pair(
                row.top5_interval95_low, row.top5_interval95_high
            ),
            "top1_drop_from_clean": _drop(clean_top1, row.top1),
        }
        baseline = by_run.get(row.run + CLEAN200_SUFFIX)
        if baseline is not None:
            entry["clean200_top1"] = baseline.top1
            entry["top1_drop_from_clean200"] = _drop(baseline.top1, row.top1)
        entries.append(entry)
    return entries


def _pair(low, high) -> list[float] | None:
    return None if low is None or high is None else [low, high]


def _drop(baseline: float | None, top1: float | None) -> float | None:
    if baseline is None or top1 is None:
        return None
    return baseline - top1


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def to_markdown(content: dict[str, Any]) -> str:
    """robustness.md: the suite's table, then ImageNet-C's."""
    lines = [f"# Robustness: {content.get('model')}", ""]
    if content.get("datasets"):
        lines += [
            "| dataset | images | top-1 % | top-5 % | top-1 95% interval | "
            "drop from clean | clean-200 top-1 % | drop from clean-200 |",
            "|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for entry in content["datasets"]:
            interval = entry["top1_interval95"]
            lines.append(
                "| {} | {} | {} | {} | {} | {} | {} | {} |".format(
                    entry["dataset"]
                    + ("" if entry["status"] == "ok" else " (failed)"),
                    entry["num_examples"] or "",
                    _percent(entry["top1"]),
                    _percent(entry["top5"]),
                    ""
                    if interval is None
                    else f"{_percent(interval[0])}-{_percent(interval[1])}",
                    _percent(entry["top1_drop_from_clean"]),
                    _percent(entry.get("clean200_top1")),
                    _percent(entry.get("top1_drop_from_clean200")),
                )
            )
        lines.append("")
    if "cells" in content:
        lines += _imagenet_c_markdown(content)
    if content.get("failed_runs"):
        lines += ["Failed runs:", ""]
        lines += [f"- {run}: {e}" for run, e in content["failed_runs"].items()]
        lines.append("")
    return "\n".join(lines)


def _imagenet_c_markdown(content: dict[str, Any]) -> list[str]:
    """Top-1 error per corruption and severity, CE, mCE."""
    errors: dict[str, dict[int, float]] = {}
    for cell in content["cells"]:
        errors.setdefault(cell["corruption"], {})[cell["severity"]] = (
            1.0 - cell["top1"]
        )
    severities = corruptions.SEVERITIES
    lines = [
        "## ImageNet-C (top-1 error %, CE % against AlexNet)",
        "",
        "| corruption | "
        + " | ".join(f"s{s}" for s in severities)
        + " | CE | relative CE |",
        "|---|" + "---:|" * (len(severities) + 2),
    ]
    relative = content.get("relative_corruption_errors") or {}
    for corruption, by_severity in errors.items():
        extra = " (extra)" if corruption in corruptions.EXTRA else ""
        lines.append(
            f"| {corruption}{extra} | "
            + " | ".join(_percent(by_severity.get(s)) for s in severities)
            + f" | {_percent(content['corruption_errors'].get(corruption))}"
            + f" | {_percent(relative.get(corruption))} |"
        )
    lines += [
        "",
        f"mCE (mean over the {len(corruptions.BENCHMARK)} benchmark "
        "corruptions present, extra ones not averaged in): "
        f"{_percent(content['mce'])}%",
    ]
    if content.get("relative_mce") is not None:
        lines.append(
            f"Relative mCE (clean top-1 {_percent(content['clean_top1'])}%): "
            f"{_percent(content['relative_mce'])}%"
        )
    if content.get("missing_corruptions"):
        lines.append(
            "Missing corruptions: " + ", ".join(content["missing_corruptions"])
        )
    for corruption, missing in (
        content.get("missing_severities") or {}
    ).items():
        lines.append(
            f"Missing severities of {corruption}: "
            + ", ".join(str(s) for s in missing)
        )
    lines += ["", f"AlexNet errors: {content['alexnet_source']}.", ""]
    return lines


def write(content: dict[str, Any], workdir: str) -> dict[str, str]:
    """Writes robustness.json and robustness.md into `workdir`.

    Returns:
        {"json": path, "markdown": path}.
    """
    paths = {
        "json": os.path.join(workdir, files.ROBUSTNESS_JSON),
        "markdown": os.path.join(workdir, files.ROBUSTNESS_MARKDOWN),
    }
    files.write_json(paths["json"], content)
    files.write_atomic(paths["markdown"], to_markdown(content))
    return paths
