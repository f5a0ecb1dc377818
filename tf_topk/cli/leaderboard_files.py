"""leaderboard.csv and leaderboard.md: the rows of a bulk run as files.

`tf_topk.cli.leaderboard` makes the rows (one per run); this module renders
them. The CSV (`to_csv`) keeps the run order and `leaderboard.FIELDS` as
its columns, at full precision. The markdown table (`to_markdown`) is for
people: sorted by top-1 (`sorted_rows`), accuracies in percent with their
95% intervals, the batch size with its out-of-memory back-offs ("16 (64, 32
OOM)"), the step's latency, and the peak memory in binary units (the
device's column only when some run had a GPU). `write` writes both,
atomically.

>>> ok = leaderboard.Row(run="run0", model="resnet50", status="ok")
>>> bad = leaderboard.failed("run1", "vgg16", "MemoryError")
>>> [r.run for r in sorted_rows([bad, ok])]
['run0', 'run1']
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import tensorflow as tf

from tf_topk.cli import leaderboard
from tf_topk.runs import files, summary


def to_csv(rows: Iterable[leaderboard.Row]) -> str:
    """leaderboard.csv: header `FIELDS`, one line per run in the given
    order; floats at full precision, an empty cell for None."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=leaderboard.FIELDS, lineterminator="\n"
    )
    writer.writeheader()
    for entry in leaderboard.checked_rows(rows):
        writer.writerow(entry.to_dict())
    return buffer.getvalue()


def _run_key(run: str) -> tuple:
    """Natural order: run2 before run10."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", run)
        if part
    )


def sorted_rows(rows: Iterable[leaderboard.Row]) -> list[leaderboard.Row]:
    """Best top-1 first; runs without a top-1 next, failed runs last; ties
    in the run's name order (natural: run2 before run10)."""
    return sorted(
        leaderboard.checked_rows(rows),
        key=lambda r: (
            r.status == leaderboard.FAILED,
            r.top1 is None,
            -(r.top1 or 0.0),
            _run_key(r.run),
        ),
    )


def _fixed(value: float | None, scale: float = 100, spec: str = ".2f") -> str:
    """`scale * value` in fixed point (a percent by default); "" for None."""
    return "" if value is None else format(scale * value, spec)


def _accuracy_cell(entry: leaderboard.Row, k: int) -> str:
    """E.g. "77.54 [74.17, 80.58]": percent and its 95% interval."""
    value = getattr(entry, f"top{k}")
    if value is None:
        return ""
    low = getattr(entry, f"top{k}_interval95_low")
    high = getattr(entry, f"top{k}_interval95_high")
    if low is None or high is None:
        return _fixed(value)
    return f"{_fixed(value)} [{_fixed(low)}, {_fixed(high)}]"


def _correct_cell(entry: leaderboard.Row, k: int) -> str:
    correct = getattr(entry, f"top{k}_correct")
    return "" if correct is None else f"{correct} / {entry.num_examples}"


def _published_cell(entry: leaderboard.Row, k: int) -> str:
    """E.g. "68.40 (+9.14)": the published percent and the difference in
    percentage points."""
    reference = getattr(entry, f"published_top{k}")
    if reference is None:
        return ""
    difference = getattr(entry, f"top{k}_minus_published")
    if difference is None:
        return _fixed(reference)
    return f"{_fixed(reference)} ({100 * difference:+.2f})"


def _parameters_cell(count: int | None) -> str:
    """E.g. "2.60 M"; small counts in full ("1,234")."""
    if count is None:
        return ""
    return f"{count / 1e6:.2f} M" if count >= 10_000 else f"{count:,}"


def _batch_cell(entry: leaderboard.Row) -> str:
    """E.g. "16 (64, 32 OOM)": the batch size the run finished with and
    the sizes that ran out of memory first; "16" without a back-off."""
    size = "" if entry.batch_size is None else str(entry.batch_size)
    if not entry.oom_backoffs:
        return size
    backoffs = ", ".join(entry.oom_backoffs.split())
    return f"{size} ({backoffs} OOM)".strip()


def _latency_cell(entry: leaderboard.Row) -> str:
    """E.g. "12.35 / 15.60": p50 / p95 in ms; "" when not timed."""
    p50, p95 = entry.latency_ms_p50, entry.latency_ms_p95
    if p50 is None or p95 is None:
        return ""
    return f"{p50:.2f} / {p95:.2f}"


def _bytes_cell(num_bytes: int | None) -> str:
    """E.g. "1.5 GiB"; "" when unknown."""
    return "" if num_bytes is None else summary.format_bytes(num_bytes)


def _escape(cell: Any) -> str:
    """A markdown table cell: "|" escaped, line breaks as spaces."""
    text = "" if cell is None else str(cell)
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    return text.replace("|", r"\|")


_DEVICE_MEMORY = "peak device memory"
# The markdown columns: header and cell, in order. The device memory's
# only when a run knows it (a GPU): a column empty on CPU says nothing.
_MARKDOWN_COLUMNS = (
    ("run", lambda r: r.run),
    ("model", lambda r: r.model),
    ("status", lambda r: r.status),
    ("top-1 % [95%]", lambda r: _accuracy_cell(r, 1)),
    ("top-5 % [95%]", lambda r: _accuracy_cell(r, 5)),
    ("top-1 correct", lambda r: _correct_cell(r, 1)),
    ("top-5 correct", lambda r: _correct_cell(r, 5)),
    ("published top-1 % (diff)", lambda r: _published_cell(r, 1)),
    ("published top-5 % (diff)", lambda r: _published_cell(r, 5)),
    ("images/s", lambda r: _fixed(r.images_per_s, 1, ".1f")),
    ("input images/s", lambda r: _fixed(r.input_images_per_s, 1, ".1f")),
    ("batch", _batch_cell),
    ("latency p50 / p95 ms", _latency_cell),
    ("peak host memory", lambda r: _bytes_cell(r.peak_host_bytes)),
    (_DEVICE_MEMORY, lambda r: _bytes_cell(r.peak_device_bytes)),
    ("parameters", lambda r: _parameters_cell(r.num_parameters)),
    ("input size", lambda r: r.image_size),
    ("preprocessing", lambda r: r.preprocessing),
    ("error", lambda r: r.error),
)


def _markdown_line(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(_escape(c) for c in cells) + " |"


def to_markdown(rows: Iterable[leaderboard.Row]) -> str:
    """leaderboard.md: a count of runs, then a GitHub markdown table sorted
    by top-1 (see `sorted_rows`), accuracies in percent.

    The first line reads e.g. "3 runs: 2 ok, 1 failed."
    """
    ordered = sorted_rows(rows)
    columns = [
        (name, cell)
        for name, cell in _MARKDOWN_COLUMNS
        if name != _DEVICE_MEMORY
        or any(r.peak_device_bytes is not None for r in ordered)
    ]
    num_failed = sum(r.status == leaderboard.FAILED for r in ordered)
    noun = "run" if len(ordered) == 1 else "runs"
    lines = [
        f"{len(ordered)} {noun}: {len(ordered) - num_failed} ok, "
        f"{num_failed} failed.",
        "",
        _markdown_line([name for name, _ in columns]),
        "|" + "|".join(" --- " for _ in columns) + "|",
    ]
    lines.extend(
        _markdown_line([cell(r) for _, cell in columns]) for r in ordered
    )
    return "\n".join(lines) + "\n"


def write(rows: Iterable[leaderboard.Row], workdir: str) -> dict[str, str]:
    """Writes leaderboard.csv and leaderboard.md into `workdir`, atomically.

    Args:
        rows: one per run, in run order (the CSV keeps it).
        workdir: the bulk run's folder (created; any tf.io.gfile path).

    Returns:
        The written paths: {"csv": ..., "markdown": ...}.

    Raises:
        ValueError: an empty `workdir` or a run named twice (nothing is
            written); TypeError: an entry of `rows` that is not a `Row`.
    """
    if not isinstance(workdir, str) or not workdir:
        raise ValueError(
            "Argument `workdir` must name an output folder. Received: "
            f"workdir={workdir!r}"
        )
    checked = leaderboard.checked_rows(rows)
    tf.io.gfile.makedirs(workdir)
    paths = {
        "csv": os.path.join(workdir, files.LEADERBOARD_CSV),
        "markdown": os.path.join(workdir, files.LEADERBOARD_MARKDOWN),
    }
    files.write_atomic(paths["csv"], to_csv(checked))
    files.write_atomic(paths["markdown"], to_markdown(checked))
    return paths
