"""A run's config as typed records: the one place config sections are read.

`from_config(config)` checks the run-level choices of a config (as built by
`tf_topk.cli.presets`, see configs/*.py) and turns its sections into frozen
records: one `ModelRequest` per model (`tf_topk.models.building`), a
`DataRequest`, a `PreprocessRequest` and an `EvalRequest`, held by one
`RunRequest`. Past this boundary the application and the library take
those records or plain arguments, never a `ConfigDict`; error messages
still name the config path a user sets.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ml_collections import config_dict

from tf_topk import datasets, distribute
from tf_topk.cli import presets
from tf_topk.models import building

# Re-exported: the model section's record is defined where the library
# builds models, so the library can take it without importing the CLI.
ModelRequest = building.ModelRequest

TIES = ("exclusive", "inclusive")


@dataclasses.dataclass(frozen=True)
class DataRequest:
    """`config.data`: the evaluation data (see `presets.data_section`).

    Attributes:
        source: one of `tf_topk.datasets.SOURCES`.
        name, split, data_dir: tfds' dataset, split and data folder.
        download: tfds: prepare the dataset when it is not prepared yet.
        manual_dir: tfds: the folder of manually downloaded archives.
        path: files / folder / tfrecord: the folder or glob of the data.
        labels_file: files: the ground truth.
        image_key, label_key: tfrecord / tfds: the features read.
        label_offset: subtracted from stored labels; None = the source's.
        num_classes: the label space.
        skip_corrupt: skip (and list) unreadable images.
        batch_size: examples per batch.
        num_crops: 1 (centre crop) or 10.
        cache: bulk runs: "auto", "memory", "disk" or "none".
        cache_budget_gb: memory the caches may take; None = half of the
            memory available.
        classes: evaluate only the examples of these class indices (a
            clean baseline restricted to ImageNet-A's or -R's 200
            classes); None = all.
    """

    source: str
    name: str | None
    split: str | None
    data_dir: str | None
    download: bool
    manual_dir: str | None
    path: str | None
    labels_file: str | None
    image_key: str | None
    label_key: str | None
    label_offset: int | None
    num_classes: int
    skip_corrupt: bool
    batch_size: int
    num_crops: int
    cache: str
    cache_budget_gb: float | None
    classes: tuple[int, ...] | None = None

    def build_arguments(self) -> dict[str, Any]:
        """`datasets.build` keyword arguments (all but the preprocessing)."""
        return {
            "source": self.source,
            "path": self.path,
            "labels_file": self.labels_file,
            "name": self.name,
            "split": self.split,
            "data_dir": self.data_dir,
            "batch_size": self.batch_size,
            "label_offset": self.label_offset,
            "num_classes": self.num_classes,
            "skip_corrupt": self.skip_corrupt,
            "image_key": self.image_key,
            "label_key": self.label_key,
            "classes": self.classes,
        }


@dataclasses.dataclass(frozen=True)
class PreprocessRequest:
    """`config.preprocess`: overrides of the model spec's preprocessing.

    Attributes:
        crop_fraction: None = the spec's.
        interpolation: None = the spec's.
        antialias: antialiased resize.
        crop_mode: "resize_then_crop" or "crop_then_resize".
        protocol: a dataset's own input protocol, said in results.json's
            preprocessing record (e.g. ImageNet-C's images fed as
            released); None for the usual resize and crop.
    """

    crop_fraction: float | None
    interpolation: str | None
    antialias: bool
    crop_mode: str
    protocol: str | None = None


@dataclasses.dataclass(frozen=True)
class EvalRequest:
    """`config.eval`: what the loop counts and reports.

    Attributes:
        ks: the k of every top-k.
        ties: "inclusive" or "exclusive".
        jit_compile: compile the step with XLA.
        progress: "auto" | "bar" | "log" | "none".
        log_every_n_examples: progress log period.
        published_top1, published_top5: figures to compare with; None =
            the spec's.
        shortfall_tolerance: shortfall past which causes are diagnosed.
        checkpoint_every_n_examples: checkpoint period (0: on signals only).
        resume: resume from the workdir's checkpoint.
        save_predictions: write every example's predictions.
        oom_backoff: halve a batch that runs out of memory and go on.
        input_probe_batches: batches the input probe times (0: none).
    """

    ks: tuple[int, ...]
    ties: str
    jit_compile: bool
    progress: str
    log_every_n_examples: int
    published_top1: float | None
    published_top5: float | None
    shortfall_tolerance: float
    checkpoint_every_n_examples: int
    resume: bool
    save_predictions: bool
    oom_backoff: bool = True
    input_probe_batches: int = 4


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """One run: what to evaluate, on what, and how.

    Attributes:
        name: what is evaluated (`config.model.name`), for the log and the
            printed summary.
        models: one request per model; several for an ensemble.
        ensemble_weights: an ensemble's relative member weights; None =
            equal.
        data, preprocess, eval: the config's sections.
        distribution: "none" | "mirrored" | "multi_worker" | "tpu".
        bulk_run: the run's name in a bulk command ("run0"), else None.
        config: the whole config as JSON, kept in results.json.
    """

    name: str
    models: tuple[building.ModelRequest, ...]
    ensemble_weights: tuple[float, ...] | None
    data: DataRequest
    preprocess: PreprocessRequest
    eval: EvalRequest
    distribution: str
    bulk_run: str | None
    config: dict[str, Any]

    def preprocessing_overrides(self) -> dict[str, Any]:
        """`building.build` overrides: the config's values, None = spec's."""
        return {
            "crop_fraction": self.preprocess.crop_fraction,
            "interpolation": self.preprocess.interpolation,
            "antialias": self.preprocess.antialias,
            "crop_mode": self.preprocess.crop_mode,
            "num_crops": self.data.num_crops,
        }


def from_config(config: config_dict.ConfigDict) -> RunRequest:
    """The `RunRequest` of a one-run config, checked.

    Args:
        config: a one-run config (configs/*.py, or `presets.run_config` of
            a bulk config).

    Returns:
        The typed request.

    Raises:
        ValueError: a run-level choice or the ensemble weights are invalid
            (the message names the config path).
    """
    check(config)
    models = model_requests(config)
    return RunRequest(
        name=config.model.name,
        models=models,
        ensemble_weights=ensemble_weights(config.ensemble_weights, len(models)),
        data=data_from_config(config),
        preprocess=PreprocessRequest(
            crop_fraction=config.preprocess.crop_fraction,
            interpolation=config.preprocess.interpolation,
            antialias=config.preprocess.antialias,
            crop_mode=config.preprocess.crop_mode,
            protocol=config.preprocess.get("protocol"),
        ),
        eval=eval_from_config(config),
        distribution=config.distribution,
        bulk_run=config.get("bulk_run"),
        config=to_json(config),
    )


def to_json(config: config_dict.ConfigDict) -> dict[str, Any]:
    """The config as JSON values, as results.json keeps it."""
    return json.loads(config.to_json_best_effort())


def _choice(path: str, value: Any, valid) -> Any:
    if value not in valid:
        raise ValueError(
            f"`{path}` must be one of {sorted(valid)}. Received: {value!r}"
        )
    return value


def check(config: config_dict.ConfigDict) -> None:
    """Checks the run-level choices before any model or data work.

    Also the checks of a bulk config, whose runs share these sections.

    Raises:
        ValueError: naming the config path, the value and the choices.
    """
    data = config.data
    _choice("config.data.source", data.source, datasets.SOURCES)
    _choice("config.distribution", config.distribution, distribute.STRATEGIES)
    _choice("config.eval.ties", config.eval.ties, TIES)
    if data.source != "tfds" and not data.path:
        raise ValueError(
            f"`config.data.path` must be set for config.data.source="
            f"{data.source!r}. Received: {data.path!r}"
        )


def ensemble_weights(
    value: str | None, num_models: int
) -> tuple[float, ...] | None:
    """`config.ensemble_weights` ("2,1") as numbers, one per member.

    Raises:
        ValueError: weights for one model, a value that is not a number,
            or not one per member.
    """
    if value is None:
        return None
    if num_models == 1:
        raise ValueError(
            "`config.ensemble_weights` applies to ensembles only (a "
            "preset such as 'mobilenet+resnet50'). Received: "
            f"{value!r} for one model"
        )
    try:
        weights = tuple(float(part) for part in value.split(","))
    except ValueError as e:
        raise ValueError(
            "`config.ensemble_weights` must be comma-separated numbers, "
            f"one per member. Received: {value!r}"
        ) from e
    if len(weights) != num_models:
        raise ValueError(
            f"`config.ensemble_weights` must have {num_models} values, "
            f"one per member. Received: {value!r}"
        )
    return weights


def model_requests(
    config: config_dict.ConfigDict,
) -> tuple[building.ModelRequest, ...]:
    """One `ModelRequest` per model section of a one-run config.

    Each names its config path (`presets.model_sections`), e.g.
    "config.members.member1" or, for a bulk run, "config.runs.run1".
    """
    return tuple(
        _model_request(section, path)
        for path, section in presets.model_sections(config).items()
    )


def _model_request(
    section: config_dict.ConfigDict, path: str
) -> building.ModelRequest:
    kwargs = section.get("kwargs", None)
    if isinstance(kwargs, config_dict.ConfigDict):
        kwargs = kwargs.to_dict()
    # A KerasHub section (presets.hub_section) has `preset` and none of
    # the keras.applications fields.
    preset = None
    if "preset" in section:
        preset = section.preset or section.name
    return building.ModelRequest(
        name=section.name,
        weights=section.get("weights"),
        alpha=section.get("alpha"),
        image_size=section.image_size,
        preprocess_mode=section.get("preprocess_mode"),
        output=section.get("output"),
        has_background_class=section.has_background_class,
        class_subset=section.class_subset,
        kwargs=dict(kwargs or {}),
        path=path,
        preset=preset,
    )


def data_from_config(config: config_dict.ConfigDict) -> DataRequest:
    """`config.data` as a `DataRequest` (one run's or a bulk config's)."""
    data = config.data
    return DataRequest(
        source=data.source,
        name=data.name,
        split=data.split,
        data_dir=data.data_dir,
        download=data.download,
        manual_dir=data.manual_dir,
        path=data.path,
        labels_file=data.labels_file,
        image_key=data.image_key,
        label_key=data.label_key,
        label_offset=data.label_offset,
        num_classes=data.num_classes,
        skip_corrupt=data.skip_corrupt,
        batch_size=data.batch_size,
        num_crops=data.num_crops,
        cache=data.cache,
        cache_budget_gb=data.cache_budget_gb,
        classes=data_classes(data.get("classes")),
    )


def data_classes(value: str | None) -> tuple[int, ...] | None:
    """`config.data.classes` ("1,7,42") as class indices; None = all.

    Raises:
        ValueError: a value that is not comma-separated integers.
    """
    if value is None:
        return None
    parts = [part.strip() for part in str(value).split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise ValueError(
            "`config.data.classes` must be comma-separated class indices, "
            f"e.g. '1,7,42'. Received: {value!r}"
        )
    return tuple(int(part) for part in parts)


def eval_from_config(config: config_dict.ConfigDict) -> EvalRequest:
    """`config.eval` as an `EvalRequest` (one run's or a bulk config's)."""
    section = config.eval
    return EvalRequest(
        ks=tuple(section.ks),
        ties=section.ties,
        jit_compile=section.jit_compile,
        progress=section.progress,
        log_every_n_examples=section.log_every_n_examples,
        published_top1=section.published_top1,
        published_top5=section.published_top5,
        shortfall_tolerance=section.shortfall_tolerance,
        checkpoint_every_n_examples=section.checkpoint_every_n_examples,
        resume=section.resume,
        save_predictions=section.save_predictions,
        oom_backoff=section.oom_backoff,
        input_probe_batches=section.get("input_probe_batches", 4),
    )
