"""One row per run of a bulk evaluation: what leaderboard.csv and .md hold.

A bulk run evaluates several models on the same data; each run writes its
usual files under `<workdir>/<run>/` and becomes one `Row` here. A run that
failed is a row too, with its error, so the table says what is missing.
`tf_topk.cli.leaderboard_files` renders the rows as the two files.

The CSV columns (`FIELDS`) are a public contract read by other tools:
fractions in [0, 1] written at full precision, counts as integers, an empty
cell where a value is unknown (a failed run, a k that was not evaluated, no
published figure, a figure an older run did not record).

>>> ok = Row(run="run0", model="resnet50", status=OK, top1=0.7)
>>> bad = failed("run1", "vgg16", FileNotFoundError("no weights"))
>>> bad.error
'FileNotFoundError: no weights'
>>> any_failed([ok, bad])
True
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tf_topk import results

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
        images_per_s: the run's throughput (its examples over its wall time).
        input_images_per_s: what the input pipeline alone delivers.
        num_parameters: the model's (or ensemble's) parameter count.
        image_size: input side in pixels, e.g. "224"; "224/299" for an
            ensemble whose members' sizes differ.
        preprocessing: e.g. "resize_then_crop 0.875 bilinear aa 1 crop";
            an ensemble's distinct ones joined by " / ".
        batch_size: the batch size the run finished with (smaller than
            the config's after an out-of-memory back-off).
        oom_backoffs: the batch sizes that ran out of memory, in order,
            joined by " ", e.g. "64 32"; None (an empty cell) when none
            did.
        latency_ms_p50, latency_ms_p95: the median and 95th percentile of
            the model step on one batch, in ms, compilation excluded.
        peak_host_bytes: the process's resident high-water mark.
        peak_device_bytes: the largest GPU peak; None without a GPU.
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
    batch_size: int | None = None
    oom_backoffs: str | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    peak_host_bytes: int | None = None
    peak_device_bytes: int | None = None

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


def _integer(value: Any) -> int | None:
    """An int, or None for a missing value."""
    return None if value is None else int(value)


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
            metadata leaves those cells empty, as do the batch size,
            latency and memory a result read from an older results.json
            lacks.

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
        batch_size=_integer(result.batch_size),
        oom_backoffs=" ".join(str(int(b)) for b in result.oom_backoffs) or None,
        latency_ms_p50=_number(result.latency_ms_p50),
        latency_ms_p95=_number(result.latency_ms_p95),
        peak_host_bytes=_integer(result.peak_host_bytes),
        peak_device_bytes=_integer(result.peak_device_bytes),
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


def checked_rows(rows: Iterable[Row]) -> list[Row]:
    """The rows as a list.

    Raises:
        TypeError: an entry that is not a `Row`.
        ValueError: a run named twice.
    """
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
    return any(r.status == FAILED for r in checked_rows(rows))
