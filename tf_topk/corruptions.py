"""ImageNet-C: the release's layout, AlexNet's errors and mean corruption error.

ImageNet-C (Hendrycks & Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019) holds the
50,000 validation images under 15 benchmark corruptions and 4 extra ones,
each at severities 1 to 5, extracted as
`ROOT/<corruption>/<severity>/<synset>/<image>.JPEG`, optionally below
the release's group folders (`noise/`, `blur/`, `weather/`, `digital/`,
`extra/`). `find_cells` lists the (corruption, severity) cells of such a
tree; `summarize` turns each cell's counts into the paper's metrics:

- The corruption error of corruption c over the severities S present is
  `CE_c = sum_{s in S} E_{s,c} / sum_{s in S} E^AlexNet_{s,c}` (E: top-1
  error), the paper's definition restricted to S (with all five
  severities it is the paper's CE exactly).
- The relative corruption error is
  `sum_s (E_{s,c} - E_clean) / sum_s (E^AlexNet_{s,c} - E^AlexNet_clean)`.
- `mCE` (and relative mCE) is the mean over the benchmark corruptions
  present; the 4 extra corruptions are reported, never averaged in.

AlexNet's per-severity errors of the 15 benchmark corruptions are those
timm keeps (`timm/utils/metrics.py`, `imagenetc_alexnet_error_rates_list`,
from Hendrycks & Dietterich's released AlexNet evaluation); their means
over the five severities equal, to the 6 digits published, the
per-corruption averages of hendrycks/robustness (`ImageNet-C/test.py`,
also AugMix's `ALEXNET_ERR`), which a test pins. For the 4 extra
corruptions only those averages are published, so their CE is given only
when all five severities are present (the sum of AlexNet's errors is then
5 x its average) and is None otherwise.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

SEVERITIES = (1, 2, 3, 4, 5)
# The release's group folders and the corruptions each holds.
GROUPS = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": (
        "contrast",
        "elastic_transform",
        "pixelate",
        "jpeg_compression",
    ),
    "extra": ("speckle_noise", "gaussian_blur", "spatter", "saturate"),
}
# The 15 corruptions mCE averages, in the paper's order.
BENCHMARK = tuple(c for group in list(GROUPS)[:4] for c in GROUPS[group])
EXTRA = GROUPS["extra"]
CORRUPTIONS = BENCHMARK + EXTRA

ALEXNET_SOURCE = (
    "Hendrycks & Dietterich 2019 (ICLR), AlexNet top-1 errors on "
    "ImageNet-C: per severity for the 15 benchmark corruptions as kept by "
    "timm (timm/utils/metrics.py imagenetc_alexnet_error_rates_list); per "
    "corruption (mean over severities 1-5) for the 4 extra ones, from "
    "hendrycks/robustness ImageNet-C/test.py"
)
# AlexNet's top-1 error at severities 1..5 (fractions).
# fmt: off
ALEXNET_TOP1_ERROR = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.9487, 0.9872, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.5843, 0.70048, 0.82108, 0.8975, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.9187, 0.94952),
    "frost": (0.6139, 0.79734, 0.8879, 0.89942, 0.9343),
    "fog": (0.67474, 0.7605, 0.84378, 0.8726, 0.945),
    "brightness": (0.4514, 0.48502, 0.54048, 0.62166, 0.7244),
    "contrast": (0.64548, 0.7615, 0.88874, 0.9776, 0.9927),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.5462, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}
# AlexNet's top-1 error averaged over severities 1..5 (hendrycks/robustness).
ALEXNET_MEAN_TOP1_ERROR = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468,
    "impulse_noise": 0.922640, "defocus_blur": 0.819880,
    "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360,
    "snow": 0.866816, "frost": 0.826572, "fog": 0.819324,
    "brightness": 0.564592, "contrast": 0.853204,
    "elastic_transform": 0.646056, "pixelate": 0.717840,
    "jpeg_compression": 0.606500, "speckle_noise": 0.845388,
    "gaussian_blur": 0.787108, "spatter": 0.717512, "saturate": 0.658248,
}
# fmt: on
# AlexNet's clean top-1 error (Hendrycks & Dietterich 2019, used for the
# relative mCE).
ALEXNET_CLEAN_TOP1_ERROR = 0.4348


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (corruption, severity) folder of an ImageNet-C tree.

    >>> Cell("fog", 3, "/data/imagenet-c/weather/fog/3").name
    'fog/3'

    Attributes:
        corruption: e.g. "gaussian_noise".
        severity: 1 to 5.
        path: the folder of synset folders.
    """

    corruption: str
    severity: int
    path: str

    @property
    def name(self) -> str:
        """ "<corruption>/<severity>", also its folder under a workdir."""
        return f"{self.corruption}/{self.severity}"


def find_cells(root: str) -> tuple[Cell, ...]:
    """The (corruption, severity) cells of an ImageNet-C tree.

    Args:
        root: `ROOT` of `ROOT/<corruption>/<severity>/<synset>/...`, the
            corruptions possibly below the group folders (`noise/`, ...).

    Returns:
        The cells, in `CORRUPTIONS` order, then by severity.

    Raises:
        FileNotFoundError: `root` is not a folder.
        ValueError: `root` holds a folder that is neither a corruption nor
            a group, a corruption holds a folder that is not a severity,
            or no cell at all.
    """
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(
            "Argument `root` must be the folder of an ImageNet-C tree "
            "(ROOT/<corruption>/<severity>/<synset>/<image>). Received: "
            f"root={root!r}, which is not a folder."
        )
    found = {}
    for name in _folders(root):
        if name in GROUPS:
            for corruption in _folders(os.path.join(root, name)):
                _check_corruption(corruption, os.path.join(root, name))
                found[corruption] = os.path.join(root, name, corruption)
        else:
            _check_corruption(name, root)
            found[name] = os.path.join(root, name)
    cells = []
    for corruption in CORRUPTIONS:
        if corruption in found:
            cells.extend(_severities(corruption, found[corruption]))
    if not cells:
        raise ValueError(
            "Argument `root` must hold ImageNet-C cells "
            "(<corruption>/<severity>/ folders, e.g. gaussian_noise/3/). "
            f"Received: root={root!r}, which holds none."
        )
    return tuple(cells)


def _folders(path: str) -> list[str]:
    return sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(path)
        if tf.io.gfile.isdir(os.path.join(path, name))
    )


def _check_corruption(name: str, parent: str) -> None:
    if name not in CORRUPTIONS:
        raise ValueError(
            f"Folder {os.path.join(parent, name)!r} is not an ImageNet-C "
            f"corruption. Received: {name!r}; valid corruptions: "
            f"{list(CORRUPTIONS)} (optionally below the groups "
            f"{list(GROUPS)}). Move other folders out of the tree."
        )


def _severities(corruption: str, path: str) -> list[Cell]:
    cells = []
    for name in _folders(path):
        if name not in {str(s) for s in SEVERITIES}:
            raise ValueError(
                f"Folder {os.path.join(path, name)!r} is not a severity. "
                f"Received: {name!r}; ImageNet-C severities are "
                f"{list(SEVERITIES)}."
            )
        cells.append(Cell(corruption, int(name), os.path.join(path, name)))
    return sorted(cells, key=lambda cell: cell.severity)


@dataclasses.dataclass(frozen=True)
class CellCounts:
    """What a model counted on one cell.

    >>> counts = CellCounts("fog", 1, num_examples=10, top1_correct=6)
    >>> round(counts.top1_error, 6)
    0.4

    Attributes:
        corruption, severity: the cell.
        num_examples: images evaluated.
        top1_correct, top5_correct: correct counts (top5 None when 5 was
            not among the run's ks).
    """

    corruption: str
    severity: int
    num_examples: int
    top1_correct: int
    top5_correct: int | None = None

    @property
    def top1(self) -> float:
        return self.top1_correct / self.num_examples

    @property
    def top5(self) -> float | None:
        if self.top5_correct is None:
            return None
        return self.top5_correct / self.num_examples

    @property
    def top1_error(self) -> float:
        return 1.0 - self.top1

    def to_dict(self) -> dict[str, Any]:
        """robustness.json's `cells` entry."""
        return {
            "corruption": self.corruption,
            "severity": self.severity,
            "num_examples": self.num_examples,
            "top1_correct": self.top1_correct,
            "top5_correct": self.top5_correct,
            "top1": self.top1,
            "top5": self.top5,
        }


@dataclasses.dataclass(frozen=True)
class Summary:
    """ImageNet-C's metrics of one model (robustness.json's keys).

    >>> summary = summarize([CellCounts("fog", 1, 10, 6)])
    >>> round(summary.mce, 4), summary.missing_severities["fog"]
    (0.5928, (2, 3, 4, 5))

    Attributes:
        cells: the counts of every cell evaluated.
        corruption_errors: {corruption: CE} (a fraction; None for an extra
            corruption without all five severities).
        relative_corruption_errors: {corruption: relative CE}; {} without
            a clean top-1.
        mce: the mean CE of the benchmark corruptions present (None when
            none is).
        relative_mce: the mean relative CE of the benchmark corruptions
            present; None without a clean top-1.
        clean_top1: the model's clean top-1, or None.
        missing_corruptions: benchmark and extra corruptions absent.
        missing_severities: {corruption: severities absent}, for the
            corruptions present.
    """

    cells: tuple[CellCounts, ...]
    corruption_errors: dict[str, float | None]
    relative_corruption_errors: dict[str, float | None]
    mce: float | None
    relative_mce: float | None
    clean_top1: float | None
    missing_corruptions: tuple[str, ...]
    missing_severities: dict[str, tuple[int, ...]]

    def to_dict(self) -> dict[str, Any]:
        """robustness.json's ImageNet-C keys."""
        return {
            "cells": [cell.to_dict() for cell in self.cells],
            "corruption_errors": dict(self.corruption_errors),
            "relative_corruption_errors": dict(self.relative_corruption_errors),
            "mce": self.mce,
            "relative_mce": self.relative_mce,
            "clean_top1": self.clean_top1,
            "missing_corruptions": list(self.missing_corruptions),
            "missing_severities": {
                c: list(s) for c, s in self.missing_severities.items()
            },
            "benchmark_corruptions": list(BENCHMARK),
            "extra_corruptions": list(EXTRA),
            "alexnet_source": ALEXNET_SOURCE,
            "alexnet_clean_top1_error": ALEXNET_CLEAN_TOP1_ERROR,
        }


def alexnet_error_sum(corruption: str, severities: Sequence[int]) -> float:
    """AlexNet's top-1 errors of `corruption` summed over `severities`.

    Raises:
        ValueError: an unknown corruption, or an extra corruption over
            fewer than the five severities (only its average is
            published).
    """
    if corruption in ALEXNET_TOP1_ERROR:
        return sum(ALEXNET_TOP1_ERROR[corruption][s - 1] for s in severities)
    if corruption not in ALEXNET_MEAN_TOP1_ERROR:
        raise ValueError(
            f"Argument `corruption` must be one of {list(CORRUPTIONS)}. "
            f"Received: corruption={corruption!r}"
        )
    if sorted(severities) != list(SEVERITIES):
        raise ValueError(
            f"AlexNet's errors on {corruption!r} are published as their "
            "mean over severities 1-5 only, so its CE needs all five. "
            f"Received: severities={sorted(severities)}"
        )
    return len(SEVERITIES) * ALEXNET_MEAN_TOP1_ERROR[corruption]


def summarize(
    cells: Sequence[CellCounts], *, clean_top1: float | None = None
) -> Summary:
    """CE per corruption, mCE and (with a clean top-1) relative mCE.

    Args:
        cells: one entry per (corruption, severity) evaluated.
        clean_top1: the model's top-1 on clean ImageNet validation (for
            the relative CE), or None.

    Returns:
        The `Summary`.

    Raises:
        ValueError: a cell repeats, or names an unknown corruption or
            severity.
    """
    errors: dict[str, dict[int, float]] = {}
    for cell in cells:
        if cell.corruption not in CORRUPTIONS or cell.severity not in (
            SEVERITIES
        ):
            raise ValueError(
                "Argument `cells` must hold ImageNet-C cells (corruptions "
                f"{list(CORRUPTIONS)}, severities {list(SEVERITIES)}). "
                f"Received: {cell.corruption!r} at severity {cell.severity}"
            )
        by_severity = errors.setdefault(cell.corruption, {})
        if cell.severity in by_severity:
            raise ValueError(
                "Argument `cells` must hold each cell once. Received: "
                f"{cell.corruption!r} at severity {cell.severity} twice."
            )
        by_severity[cell.severity] = cell.top1_error
    ce, relative = {}, {}
    for corruption in CORRUPTIONS:
        if corruption not in errors:
            continue
        ce[corruption], relative[corruption] = _errors(
            corruption, errors[corruption], clean_top1
        )
    present = [c for c in BENCHMARK if c in ce]
    return Summary(
        cells=tuple(
            sorted(
                cells,
                key=lambda c: (CORRUPTIONS.index(c.corruption), c.severity),
            )
        ),
        corruption_errors=ce,
        relative_corruption_errors=relative if clean_top1 is not None else {},
        mce=_mean([ce[c] for c in present]),
        relative_mce=None
        if clean_top1 is None
        else _mean([relative[c] for c in present]),
        clean_top1=clean_top1,
        missing_corruptions=tuple(c for c in CORRUPTIONS if c not in errors),
        missing_severities={
            c: tuple(s for s in SEVERITIES if s not in errors[c])
            for c in CORRUPTIONS
            if c in errors and len(errors[c]) < len(SEVERITIES)
        },
    )


def _errors(corruption, by_severity, clean_top1):
    """(CE, relative CE) of one corruption; None where undefined."""
    severities = sorted(by_severity)
    if corruption in EXTRA and severities != list(SEVERITIES):
        return None, None
    alexnet = alexnet_error_sum(corruption, severities)
    model = sum(by_severity[s] for s in severities)
    ce = model / alexnet
    if clean_top1 is None:
        return ce, None
    clean_error = 1.0 - clean_top1
    relative = (model - len(severities) * clean_error) / (
        alexnet - len(severities) * ALEXNET_CLEAN_TOP1_ERROR
    )
    return ce, relative


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
