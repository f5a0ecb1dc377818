"""What a run evaluated: the self-describing part of results.json.

`RunMetadata` is written into results.json beside the counts, so a result
file alone says which model and weights file (with its SHA-256), which data
and preprocessing, which versions and devices produced it.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

import tf_topk

# The `DataRecord` fields a run must share with the checkpoint it resumes:
# what was read, how it was labelled and how many views each example had.
_FINGERPRINT_DATA_KEYS = (
    "source",
    "name",
    "split",
    "path",
    "labels_file",
    "num_examples",
    "label_offset",
    "num_crops",
)


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """One evaluated model (or ensemble member) as results.json names it."""

    name: str
    weights: str | None
    weights_file: str | None
    weights_sha256: str | None
    alpha: float | None
    image_size: int
    preprocess_mode: str
    output: str
    has_background_class: bool
    class_subset_size: int | None
    # KerasHub presets (tf_topk.models.hub): the handle, the checkpoint the
    # weights were converted from, the preset whose weights an alias
    # loads, and the converter's normalisation (x * scale + offset).
    preset: str | None = None
    source: str | None = None
    alias_of: str | None = None
    scale: float | list[float] | None = None
    offset: float | list[float] | None = None


@dataclasses.dataclass(frozen=True)
class DataRecord:
    """The evaluated data, as read (see `tf_topk.datasets.SourceInfo`)."""

    source: str
    name: str | None
    split: str | None
    path: str | None
    labels_file: str | None
    num_examples: int
    label_offset: int | None
    num_crops: int
    label_mapping: str
    multi_label: bool
    # Files left out with skip_corrupt=True, never silently.
    num_skipped: int
    skipped: tuple[str, ...]
    # Where the decoded images were kept for other runs (bulk runs).
    cache: str = "none"


@dataclasses.dataclass(frozen=True)
class RunMetadata:
    """Everything results.json says about a run besides its counts.

    Attributes:
        model: the model's record, or the ensemble's name.
        members: the ensemble members' records (None for one model).
        data: the data record.
        preprocessing: the resolved preprocessing of each model, as dicts.
        published: the figure to compare with, or None: {"top1", "top5",
            "source", "conditions"}, conditions being {"image_size",
            "crop_fraction", "num_crops", "weights"} or None where unknown
            (`tf_topk.models.Published.to_dict`).
        distribution: `config.distribution`.
        config: the whole config, as JSON-able values.
        devices: the devices the evaluation ran on.
        device: a one-line description of the hardware.
        versions: tf_topk, TensorFlow, Keras and Python versions.
        diagnostics: likely causes of a shortfall against `published`.
        num_parameters: the model's (or the ensemble's) parameter count.
    """

    model: ModelRecord | str
    members: tuple[ModelRecord, ...] | None
    data: DataRecord
    preprocessing: tuple[dict[str, Any], ...]
    published: dict[str, Any] | None
    distribution: str
    config: dict[str, Any]
    devices: tuple[str, ...] = ()
    device: str = dataclasses.field(default_factory=lambda: device())
    versions: dict[str, str] = dataclasses.field(
        default_factory=lambda: versions()
    )
    diagnostics: tuple[str, ...] = ()
    num_parameters: int | None = None

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed by a run."""
        record = self.to_dict()
        data = record["data"]
        return {
            "model": record["model"],
            "members": record["members"],
            "data": {key: data[key] for key in _FINGERPRINT_DATA_KEYS},
            "preprocessing": record["preprocessing"],
        }

    def to_dict(self) -> dict[str, Any]:
        """The results.json keys, JSON-able."""
        record = dataclasses.asdict(self)
        record["members"] = (
            None if self.members is None else list(record["members"])
        )
        record["data"]["skipped"] = list(self.data.skipped)
        record["preprocessing"] = list(record["preprocessing"])
        record["devices"] = list(self.devices)
        record["diagnostics"] = list(self.diagnostics)
        return record


def versions() -> dict[str, str]:
    """Versions of tf_topk and what it runs on."""
    return {
        "tf_topk": tf_topk.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def devices(strategy: tf.distribute.Strategy | None) -> tuple[str, ...]:
    """The devices the evaluation runs on (the replicas' devices)."""
    strategy = strategy or tf.distribute.get_strategy()
    try:
        names: Sequence[str] = list(strategy.extended.worker_devices)
    except (AttributeError, RuntimeError):  # The default strategy.
        names = []
    if names:
        return tuple(names)
    gpus = tf.config.list_logical_devices("GPU")
    return ((gpus or tf.config.list_logical_devices("CPU"))[0].name,)


def device() -> str:
    """E.g. 'NVIDIA H100 80GB HBM3 x1' or 'CPU (x86_64, 2 cores)'."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"{details.get('device_name', 'GPU')} x{len(gpus)}"
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
