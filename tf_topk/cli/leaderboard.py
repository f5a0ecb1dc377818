"""One row per run of a bulk evaluation: leaderboard.csv and leaderboard.md.

A bulk run evaluates several models on the same data; each run writes its
usual files under `<workdir>/<run>/` and becomes one `Row` here. A run that
failed is a row too, with its error, so the table says what is missing.

The CSV columns (`FIELDS`) are a public contract read by other tools:
fractions in [0, 1] written at full precision, counts as integers, an empty
cell where a value is unknown (a failed run, a k that was not evaluated, no
published figure). The markdown table is for people: percentages, sorted by
top-1.

>>> ok = Row(run="run0", model="resnet50", status=OK, top1=0.7)
>>> bad = failed("run1", "vgg16", FileNotFoundError("no weights"))
>>> [r.run for r in sorted_rows([bad, ok])]
['run0', 'run1']
>>> bad.error
'FileNotFoundError: no weights'
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from tf_topk import results
from tf_topk.runs import files

OK = "ok"
FAILED = "failed"
STATUSES = (OK, FAILED)
# The error cell keeps this many characters; the full error is in the log.
MAX_ERROR_CHARS = 500


@dataclasses.dataclass(frozen=True)
class Row:
    """One run of a bulk evaluation: a line of leaderboard.csv.

    Fractions are in [0, 1]; None means unknown (a failed run, top-5 when 5
    was not among the run's ks, no published figure).

    Attributes:
        run: the run's name, also its folder under the workdir ("run0").
        model: the preset and its overrides (see `describe_model`).
        status: "ok" or "failed".
        error: "TypeName: message" on one line for a failed run, else None.
        num_examples: the accuracy denominator (`EvalResult.num_scored`:
            results.json's num_examples less the unlabeled examples of a
            multi-label set).
        top1, top5: accuracies; top1_correct, top5_correct their counts.
        top1_interval95_low ... top5_interval95_high: Wilson 95% intervals.
        published_top1, published_top5: the published figures.
        top1_minus_published, top5_minus_published: measured - published.
        images_per_s: evaluation throughput after warm-up.
        input_images_per_s: what the input pipeline alone delivers.
        num_parameters: the model's (or ensemble's) parameter count.
        image_size: input side in pixels, e.g. "224"; "224/299" for an
            ensemble whose members' sizes differ.
        preprocessing: e.g. "resize_then_crop 0.875 bilinear aa 1 crop";
            an ensemble's distinct ones joined by " / ".
    """

    run: str
    model: str
    status: str
    error: str | None = None
    num_examples: int | None = None
    top1: float | None = None
    top5: float | None = None
    top1_correct: int | None = None
    top5_correct: int | None = None
    top1_interval95_low: float | None = None
    top1_interval95_high: float | None = None
    top5_interval95_low: float | None = None
    top5_interval95_high: float | None = None
    published_top1: float | None = None
    published_top5: float | None = None
    top1_minus_published: float | None = None
    top5_minus_published: float | None = None
    images_per_s: float | None = None
    input_images_per_s: float | None = None
    num_parameters: int | None = None
    image_size: str | None = None
    preprocessing: str | None = None

    def __post_init__(self):
        _check_name("run", self.run)
        _check_name("model", self.model)
        if self.status not in STATUSES:
            raise ValueError(
                f"Argument `status` must be one of {list(STATUSES)}. "
                f"Received: status={self.status!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The CSV record: `FIELDS` in order, None where unknown."""
        return {name: getattr(self, name) for name in FIELDS}


# The CSV columns, in order: a public contract (tests pin the list).
FIELDS = tuple(field.name for field in dataclasses.fields(Row))


def _check_name(argument: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"Argument `{argument}` must be a string. "
            f"Received: {argument}={value!r} of type {type(value).__name__}"
        )
    if not value.strip():
        raise ValueError(
            f"Argument `{argument}` must be a non-empty name. "
            f"Received: {argument}={value!r}"
        )


def _number(value: Any) -> float | None:
    """A finite float, or None for a missing or non-finite value."""
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _accuracy_fields(result: results.EvalResult, k: int) -> dict[str, Any]:
    """top{k}, its count and interval; all None when k was not evaluated."""
    if k not in result.correct:
        return {}
    low, high = result.interval(k)
    return {
        f"top{k}": _number(result.accuracy(k)),
        f"top{k}_correct": int(result.correct[k]),
        f"top{k}_interval95_low": _number(low),
        f"top{k}_interval95_high": _number(high),
    }


def row(run: str, model: str, result: results.EvalResult) -> Row:
    """The row of a finished run.

    Args:
        run: the run's name, e.g. "run0".
        model: what was evaluated, e.g. `describe_model("mobilenet",
            {"alpha": 0.25})`.
        result: the run's result; its `metadata` (as
            `tf_topk.cli.run.run_one` writes it) gives the published
            figures, parameters, input size and preprocessing. Missing
            metadata leaves those cells empty.

    Returns:
        A `Row` with status "ok".

    Raises:
        TypeError: `result` is not an `EvalResult`, or a name not a string.
        ValueError: an empty `run` or `model`.
    """
    if not isinstance(result, results.EvalResult):
        raise TypeError(
            "Argument `result` must be a tf_topk.results.EvalResult (what "
            "evaluation.evaluate returns); for a run that raised, use "
            "leaderboard.failed(run, model, error). "
            f"Received: result of type {type(result).__name__}"
        )
    metadata = result.metadata or {}
    fields: dict[str, Any] = {"num_examples": int(result.num_scored)}
    fields.update(_accuracy_fields(result, 1))
    fields.update(_accuracy_fields(result, 5))
    published = metadata.get("published") or {}
    for k in (1, 5):
        reference = _number(published.get(f"top{k}"))
        fields[f"published_top{k}"] = reference
        measured = fields.get(f"top{k}")
        if reference is not None and measured is not None:
            fields[f"top{k}_minus_published"] = measured - reference
    throughput = result.to_dict().get("throughput") or {}
    parameters = metadata.get("num_parameters")
    return Row(
        run=run,
        model=model,
        status=OK,
        images_per_s=_number(throughput.get("images_per_s")),
        input_images_per_s=_number(throughput.get("input_images_per_s")),
        num_parameters=None if parameters is None else int(parameters),
        image_size=_image_size(metadata),
        preprocessing=_preprocessing(metadata.get("preprocessing")),
        **fields,
    )


def _image_size(metadata: Mapping[str, Any]) -> str | None:
    """E.g. "224"; "224/299" for an ensemble whose members' sizes differ.
    Read from the model's record or the members', else the preprocessing."""
    model = metadata.get("model")
    records = [model] if isinstance(model, Mapping) else []
    for key in ("members", "preprocessing"):
        records = records or list(metadata.get(key) or [])
    records = [r for r in records if isinstance(r, Mapping)]
    sizes = [str(r["image_size"]) for r in records if r.get("image_size")]
    if not sizes:
        return None
    return sizes[0] if len(set(sizes)) == 1 else "/".join(sizes)


def describe_preprocessing(options: Mapping[str, Any]) -> str:
    """A `preprocessing.Options.to_dict()` on one line, missing keys left
    out: crop mode, crop fraction, interpolation, antialias, crops.

    >>> describe_preprocessing({"crop_mode": "crop_then_resize",
    ...     "crop_fraction": 1.0, "interpolation": "bicubic",
    ...     "antialias": False, "num_crops": 10})
    'crop_then_resize 1 bicubic no-aa 10 crops'
    """
    parts = []
    if options.get("crop_mode"):
        parts.append(str(options["crop_mode"]))
    if options.get("crop_fraction") is not None:
        parts.append(f"{float(options['crop_fraction']):g}")
    if options.get("interpolation"):
        parts.append(str(options["interpolation"]))
    if options.get("antialias") is not None:
        parts.append("aa" if options["antialias"] else "no-aa")
    crops = options.get("num_crops")
    if crops is not None:
        parts.append(f"{crops} crop" if crops == 1 else f"{crops} crops")
    return " ".join(parts)


def _preprocessing(options: Any) -> str | None:
    """The distinct preprocessing of the model or members, joined by / ."""
    described = []
    for entry in options or []:
        if isinstance(entry, Mapping):
            text = describe_preprocessing(entry)
            if text and text not in described:
                described.append(text)
    return " / ".join(described) or None


def failed(run: str, model: str, error: BaseException | str) -> Row:
    """The row of a run that raised (missing weights, out of memory).

    Args:
        run: the run's name, e.g. "run3".
        model: what was to be evaluated (see `describe_model`).
        error: the exception, or a description of the failure.

    Returns:
        A `Row` with status "failed", the error on one line ("TypeName:
        message", cut to `MAX_ERROR_CHARS`), and no measurement.

    Raises:
        TypeError: `error` is neither an exception nor a string.
        ValueError: an empty `run`, `model` or `error` string.
    """
    if isinstance(error, BaseException):
        message = str(error).strip()
        name = type(error).__name__
        text = f"{name}: {message}" if message else name
    elif isinstance(error, str):
        text = error
    else:
        raise TypeError(
            "Argument `error` must be the exception the run raised or a "
            f"string. Received: error={error!r} of type "
            f"{type(error).__name__}"
        )
    text = re.sub(r"\s*[\r\n]+\s*", " ", text).strip()
    if not text:
        raise ValueError(
            "Argument `error` must say why the run failed. "
            f"Received: error={error!r}"
        )
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return Row(run=run, model=model, status=FAILED, error=text)


def describe_model(name: str, overrides: Mapping[str, Any]) -> str:
    """The "model" cell: the preset and its overrides, sorted by key.

    Args:
        name: the preset, e.g. "mobilenet".
        overrides: the values the run changed, e.g. {"alpha": 0.25}.

    Returns:
        E.g. "mobilenet alpha=0.25"; just the name without overrides.
        Values are written plainly: 0.25, True, /path/x.h5, a string
        without quotes.

    >>> describe_model("mobilenet", {"weights": "/w/x.h5", "alpha": 0.25})
    'mobilenet alpha=0.25 weights=/w/x.h5'
    """
    _check_name("name", name)
    if not isinstance(overrides, Mapping):
        raise TypeError(
            "Argument `overrides` must be a mapping of setting to value, "
            "e.g. {'alpha': 0.25} ({} for none). "
            f"Received: overrides={overrides!r}"
        )
    parts = [name]
    parts.extend(f"{key}={overrides[key]}" for key in sorted(overrides))
    return " ".join(parts)


def _checked_rows(rows: Iterable[Row]) -> list[Row]:
    """The rows as a list; raises on a non-Row or a repeated run name."""
    checked = list(rows)
    seen = set()
    for index, entry in enumerate(checked):
        if not isinstance(entry, Row):
            raise TypeError(
                "Argument `rows` must hold leaderboard.Row values (from "
                "leaderboard.row or leaderboard.failed). Received: "
                f"rows[{index}] of type {type(entry).__name__}"
            )
        if entry.run in seen:
            raise ValueError(
                "Argument `rows` must name each run once: run names are "
                "the runs' folders. Received: run="
                f"{entry.run!r} twice. Give each run its own name."
            )
        seen.add(entry.run)
    return checked


def any_failed(rows: Iterable[Row]) -> bool:
    """Whether any run failed (e.g. for the exit status of a bulk run)."""
    return any(r.status == FAILED for r in _checked_rows(rows))


def to_csv(rows: Iterable[Row]) -> str:
    """leaderboard.csv: header `FIELDS`, one line per run in the given
    order; floats at full precision, an empty cell for None."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for entry in _checked_rows(rows):
        writer.writerow(entry.to_dict())
    return buffer.getvalue()


def _run_key(run: str) -> tuple:
    """Natural order: run2 before run10."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", run)
        if part
    )


def sorted_rows(rows: Iterable[Row]) -> list[Row]:
    """Best top-1 first; runs without a top-1 next, failed runs last; ties
    in the run's name order (natural: run2 before run10)."""
    return sorted(
        _checked_rows(rows),
        key=lambda r: (
            r.status == FAILED,
            r.top1 is None,
            -(r.top1 or 0.0),
            _run_key(r.run),
        ),
    )


def _fixed(value: float | None, scale: float = 100, spec: str = ".2f") -> str:
    """`scale * value` in fixed point (a percent by default); "" for None."""
    return "" if value is None else format(scale * value, spec)


def _accuracy_cell(entry: Row, k: int) -> str:
    """E.g. "77.54 [74.17, 80.58]": percent and its 95% interval."""
    value = getattr(entry, f"top{k}")
    if value is None:
        return ""
    low = getattr(entry, f"top{k}_interval95_low")
    high = getattr(entry, f"top{k}_interval95_high")
    if low is None or high is None:
        return _fixed(value)
    return f"{_fixed(value)} [{_fixed(low)}, {_fixed(high)}]"


def _correct_cell(entry: Row, k: int) -> str:
    correct = getattr(entry, f"top{k}_correct")
    return "" if correct is None else f"{correct} / {entry.num_examples}"


def _published_cell(entry: Row, k: int) -> str:
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


def _escape(cell: Any) -> str:
    """A markdown table cell: "|" escaped, line breaks as spaces."""
    text = "" if cell is None else str(cell)
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    return text.replace("|", r"\|")


# The markdown columns: header and cell, in order.
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
    ("parameters", lambda r: _parameters_cell(r.num_parameters)),
    ("input size", lambda r: r.image_size),
    ("preprocessing", lambda r: r.preprocessing),
    ("error", lambda r: r.error),
)


def _markdown_line(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(_escape(c) for c in cells) + " |"


def to_markdown(rows: Iterable[Row]) -> str:
    """leaderboard.md: a count of runs, then a GitHub markdown table sorted
    by top-1 (see `sorted_rows`), accuracies in percent.

    The first line reads e.g. "3 runs: 2 ok, 1 failed."
    """
    ordered = sorted_rows(rows)
    num_failed = sum(r.status == FAILED for r in ordered)
    noun = "run" if len(ordered) == 1 else "runs"
    lines = [
        f"{len(ordered)} {noun}: {len(ordered) - num_failed} ok, "
        f"{num_failed} failed.",
        "",
        _markdown_line([name for name, _ in _MARKDOWN_COLUMNS]),
        "|" + "|".join(" --- " for _ in _MARKDOWN_COLUMNS) + "|",
    ]
    lines.extend(
        _markdown_line([cell(r) for _, cell in _MARKDOWN_COLUMNS])
        for r in ordered
    )
    return "\n".join(lines) + "\n"


def write(rows: Iterable[Row], workdir: str) -> dict[str, str]:
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
    checked = _checked_rows(rows)
    tf.io.gfile.makedirs(workdir)
    paths = {
        "csv": os.path.join(workdir, files.LEADERBOARD_CSV),
        "markdown": os.path.join(workdir, files.LEADERBOARD_MARKDOWN),
    }
    files.write_atomic(paths["csv"], to_csv(checked))
    files.write_atomic(paths["markdown"], to_markdown(checked))
    return paths
