r"""The tf-topk command line: evaluate a Keras classifier from a config file.

  tf-topk --config=configs/imagenet.py:resnet50 --workdir=/tmp/resnet50
  tf-topk --flagfile=runs/mobilenet_075.flags
  python -m tf_topk --config=configs/imagenet.py:mobilenet \
      --config.model.alpha=0.75 --config.data.source=folder \
      --config.data.path=/data/val --workdir=/tmp/out

This is the only module that reads flags or a whole config; `run(config,
workdir)` is a plain function the tests call directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf
from absl import app, flags, logging
from ml_collections import config_dict, config_flags

import tf_topk
from tf_topk import (
    datasets,
    diagnostics,
    distribute,
    evaluation,
    models,
    report,
)

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Config file and preset, e.g. configs/imagenet.py:resnet50. Override "
    "any field with --config.section.field=value.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder for results.json, per_class.csv, ..."
)

DATA_SOURCES = ("files", "folder", "tfds", "tfrecord")


class DataUnavailableError(RuntimeError):
    """A tfds dataset could not be downloaded or prepared."""


_NONE_WEIGHTS = ("none", "random", "")


def _choice(path: str, value: Any, valid) -> Any:
    if value not in valid:
        raise ValueError(
            f"`{path}` must be one of {sorted(valid)}. Received: {value!r}"
        )
    return value


def _weights(value: str | None) -> str | None:
    if value is None or value.strip().lower() in _NONE_WEIGHTS:
        return None
    return value


def _class_subset(value: str | None, path: str):
    """None, a list of indices / synsets, or the string "labels_in_data"."""
    if value is None or value == "labels_in_data":
        return value
    if os.path.exists(value):
        with open(value) as f:
            items = [line.strip() for line in f if line.strip()]
    else:
        items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ValueError(
            f"`{path}` must list class indices or synsets, or name a file of "
            f"them. Received: {value!r}"
        )
    return [int(item) if item.isdigit() else item for item in items]


def _ensemble_weights(value: str | None, num_members: int):
    if value is None:
        return None
    try:
        weights = [float(v) for v in value.split(",")]
    except ValueError as e:
        raise ValueError(
            "`config.ensemble_weights` must be comma-separated numbers, one "
            f"per member. Received: {value!r}"
        ) from e
    if len(weights) != num_members:
        raise ValueError(
            f"`config.ensemble_weights` must have {num_members} values, one "
            f"per member. Received: {value!r}"
        )
    return weights


def _file_sha256(path: str | None) -> str | None:
    if not path or not os.path.exists(path):
        return None
    if os.path.isdir(path):
        path = os.path.join(path, "saved_model.pb")
        if not os.path.exists(path):
            return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _member(section, preprocess, labels_subset, path: str):
    """Builds one inference model; returns (model, options, record)."""
    name = section.name
    weights = _weights(section.weights)
    kwargs = dict(section.get("kwargs", {}) or {})
    if section.alpha is not None:
        kwargs["alpha"] = section.alpha
    subset = _class_subset(section.class_subset, f"{path}.class_subset")
    if subset == "labels_in_data":
        subset = labels_subset()
    spec = None
    if name and name.lower() in models.names():
        spec = models.get_spec(name)
        model = models.build(
            spec.name,
            weights=weights,
            image_size=section.image_size,
            preprocess_input=section.preprocess_mode,
            output=section.output,
            has_background_class=section.has_background_class,
            class_subset=subset,
            **kwargs,
        )
    else:
        raw = models.load(None, weights=weights, **kwargs)
        model = models.inference_model(
            raw,
            preprocess_input=section.preprocess_mode or "none",
            output=section.output or "softmax",
            image_size=section.image_size,
            has_background_class=section.has_background_class,
            class_subset=subset,
        )
    image_size = model.inputs[0].shape[1]
    if image_size is None:
        image_size = section.image_size or 224
    options = dict(
        image_size=int(image_size),
        crop_fraction=preprocess.crop_fraction
        or (spec.crop_fraction if spec else 0.875),
        interpolation=preprocess.interpolation
        or (spec.interpolation if spec else "bilinear"),
        antialias=preprocess.antialias,
        crop_mode=preprocess.crop_mode,
    )
    record = {
        "name": spec.name if spec else (name or "custom"),
        "weights": section.weights,
        "weights_file": getattr(model, "tf_topk_weights_file", weights),
        "weights_sha256": _file_sha256(
            getattr(model, "tf_topk_weights_file", weights)
        ),
        "alpha": section.alpha,
        "image_size": int(image_size),
        "preprocess_mode": section.preprocess_mode
        or (spec.preprocess_mode if spec else "none"),
        "output": section.output or (spec.output if spec else "softmax"),
        "has_background_class": section.has_background_class,
        "class_subset_size": None if subset is None else len(subset),
    }
    published = None
    if spec is not None:
        published = spec.published(
            alpha=section.alpha or 1.0, image_size=int(image_size)
        )
    return model, options, record, published


def _worker_shards(
    whole: tf.data.Dataset, num_examples: int, build_kwargs: dict
):
    """A dataset function: each worker of a run reads only its share.

    With one input pipeline (one process) it is the whole dataset; with W
    workers, worker w builds examples w, w + W, ... in batches of
    ceil(batch_size / W), so each decodes 1/W of the images
    (see `tf_topk.evaluate`).
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        pipelines = context.num_input_pipelines
        if pipelines == 1:
            return whole
        index = context.input_pipeline_id
        dataset, count = datasets.build(
            **{
                **build_kwargs,
                "batch_size": -(-build_kwargs["batch_size"] // pipelines),
            },
            num_shards=pipelines,
            shard_index=index,
        )
        logging.info(
            "Input pipeline %d of %d reads %d of the %d examples.",
            index,
            pipelines,
            count,
            num_examples,
        )
        return dataset

    return dataset_fn


def _labels_in_data(data_kwargs):
    """The sorted classes the evaluation data holds (ImageNet-A / R)."""

    def scan():
        dataset, _ = datasets.build(**data_kwargs)
        present = set()
        for _, labels in dataset:
            present.update(int(x) for x in labels.numpy().reshape(-1))
        return sorted(present)

    return scan


def _versions() -> dict[str, str]:
    return {
        "tf_topk": tf_topk.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def _devices(strategy) -> list[str]:
    """The devices the evaluation runs on (the replicas' devices)."""
    try:
        devices = list(strategy.extended.worker_devices)
    except (AttributeError, RuntimeError):  # The default strategy.
        devices = []
    if devices:
        return devices
    gpus = tf.config.list_logical_devices("GPU")
    return [(gpus or tf.config.list_logical_devices("CPU"))[0].name]


def _device_description() -> str:
    """E.g. 'NVIDIA H100 80GB HBM3 x1' or 'CPU (x86_64, 2 cores)'."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"{details.get('device_name', 'GPU')} x{len(gpus)}"
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def run(config: config_dict.ConfigDict, workdir: str | None):
    """Evaluates the model(s) of `config` on its data; writes the results.

    Args:
        config: a config as built by `configs/imagenet.py:get_config`.
        workdir: output folder; None writes nothing.

    Returns:
        The `evaluation.EvalResult` (with its metadata).
    """
    data = config.data
    _choice("config.data.source", data.source, DATA_SOURCES)
    _choice("config.distribution", config.distribution, distribute.STRATEGIES)
    _choice("config.eval.ties", config.eval.ties, ("exclusive", "inclusive"))
    if data.source != "tfds" and not data.path:
        raise ValueError(
            f"`config.data.path` must be set for config.data.source="
            f"{data.source!r}. Received: None"
        )
    if data.source == "files" and not data.labels_file:
        raise ValueError(
            "`config.data.labels_file` must be set for "
            "config.data.source='files'. Received: None"
        )
    strategy = None
    if config.distribution != "none":
        strategy = distribute.get_strategy(config.distribution)

    if data.source == "tfds":
        _prepare_tfds(data.name, data.data_dir, data.download, data.manual_dir)

    data_kwargs = dict(
        source=data.source,
        path=data.path,
        labels_file=data.labels_file,
        name=data.name,
        split=data.split,
        data_dir=data.data_dir,
        batch_size=data.batch_size,
        label_offset=data.label_offset,
        num_classes=data.num_classes,
        skip_corrupt=data.skip_corrupt,
        num_crops=data.num_crops,
    )
    labels_subset = _labels_in_data(data_kwargs)
    sections = (
        [(f"config.members.{k}", v) for k, v in config.members.items()]
        if config.members
        else [("config.model", config.model)]
    )
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        built = [
            _member(section, config.preprocess, labels_subset, path)
            for path, section in sections
        ]
        if len(built) == 1:
            model = built[0][0]
        else:
            model = models.ensemble(
                [b[0] for b in built],
                weights=_ensemble_weights(config.ensemble_weights, len(built)),
            )
    options = [_preprocessing_options(b[1], data.num_crops) for b in built]
    build_kwargs = {
        **data_kwargs,
        "num_crops": 1,
        "preprocess": options[0] if len(options) == 1 else options,
    }
    dataset, info = datasets.build_with_info(**build_kwargs)
    if strategy is not None:
        dataset = _worker_shards(dataset, info.num_examples, build_kwargs)
    num_examples = info.num_examples
    logging.info(
        "Evaluating %s on %d examples (%s).",
        config.model.name,
        num_examples,
        data.source,
    )
    published = built[0][3] if len(built) == 1 else None
    if config.eval.published_top1 is not None:
        published = (config.eval.published_top1, config.eval.published_top5)
    metadata = {
        "model": built[0][2] if len(built) == 1 else config.model.name,
        "members": [b[2] for b in built] if len(built) > 1 else None,
        "data": {
            "source": data.source,
            "name": data.name if data.source == "tfds" else None,
            "split": data.split if data.source == "tfds" else None,
            "path": data.path,
            "labels_file": data.labels_file,
            "num_examples": num_examples,
            "label_offset": data.label_offset,
            "num_crops": data.num_crops,
            "label_mapping": info.label_mapping,
            "multi_label": info.multi_label,
            # Files left out with skip_corrupt=True, never silently.
            "num_skipped": info.num_skipped,
            "skipped": list(info.skipped),
        },
        "preprocessing": [o.to_dict() for o in options],
        "published": (
            {"top1": published[0], "top5": published[1]} if published else None
        ),
        "versions": _versions(),
        "device": _device_description(),
        "devices": _devices(strategy or tf.distribute.get_strategy()),
        "distribution": config.distribution,
        "config": json.loads(config.to_json_best_effort()),
    }
    result = evaluation.evaluate(
        model,
        dataset,
        ks=tuple(config.eval.ks),
        strategy=strategy,
        expected_num_examples=num_examples,
        batch_size=data.batch_size,
        ties=config.eval.ties,
        jit_compile=config.eval.jit_compile,
        progress=config.eval.progress,
        log_every_n_examples=config.eval.log_every_n_examples,
        metadata=metadata,
    )
    causes = []
    if published and published[0] is not None and 1 in result.correct:
        shortfall = published[0] - result.accuracy(1)
        # Only a shortfall that sampling noise cannot explain (the published
        # figure above the 95% interval) is worth diagnosing: on 100 images
        # the interval is about +-9 points wide.
        if (
            shortfall > config.eval.shortfall_tolerance
            and published[0] > result.interval(1)[1]
        ):
            causes = diagnostics.shortfall_causes(
                model,
                dataset,
                shortfall=shortfall,
                num_outputs=model.output_shape[-1],
                num_classes=data.num_classes,
            )
    result = dataclasses.replace(
        result, metadata={**metadata, "diagnostics": causes}
    )
    if workdir and _is_chief(strategy):
        num_outputs = model.output_shape[-1]
        if len(info.class_names) == num_outputs:
            class_names = list(info.class_names)
        elif num_outputs == 1000:
            class_names = models.imagenet_synsets()
        else:
            class_names = None
        paths = report.write(result, workdir, class_names=class_names)
        logging.info("Wrote %s", paths["results"])
    return result


def _prepare_tfds(
    name: str, data_dir: str | None, download: bool, manual_dir: str | None
) -> None:
    """Downloads and prepares a tfds dataset once, as `tfds.load` does."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for a bad name.
        raise ValueError(
            f"`config.data.name` must name a tfds dataset. Received: "
            f"{name!r} ({e})"
        ) from e
    if builder.is_prepared() or not download:
        return  # datasets.build explains an unprepared dataset.
    if manual_dir is not None and not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            f"`config.data.manual_dir` must be a folder. Received: "
            f"{manual_dir!r}"
        )
    logging.info("Preparing tfds dataset %s in %s.", name, builder.data_dir)
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    except Exception as e:  # Network, checksum and manual-data errors.
        raise DataUnavailableError(
            f"Could not download and prepare tfds dataset {name!r} into "
            f"{builder.data_dir!r}: {e}\nWithout internet, prepare it on a "
            "machine with internet and pass --config.data.data_dir, or "
            "evaluate local data with --config.data.source=files|folder|"
            "tfrecord and --config.data.path. ILSVRC2012 needs its archive "
            "ILSVRC2012_img_val.tar in --config.data.manual_dir."
        ) from e


def _preprocessing_options(options: Mapping[str, Any], num_crops: int):
    from tf_topk import preprocessing

    return preprocessing.Options(**options, num_crops=num_crops)


def _is_chief(strategy) -> bool:
    if strategy is None:
        return True
    return distribute.is_chief(strategy)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(
            f"Unexpected arguments: {argv[1:]}. Pass options as flags, e.g. "
            "--config.data.path=..., and check flag spellings."
        )
    if _CONFIG.value is None:
        raise app.UsageError(
            "--config is required, e.g. --config=configs/imagenet.py:resnet50"
        )
    try:
        result = run(_CONFIG.value, _WORKDIR.value)
    except (ValueError, FileNotFoundError, DataUnavailableError) as e:
        raise app.UsageError(str(e)) from e
    published = result.metadata.get("published") or {}
    title = f"tf_topk: {_CONFIG.value.model.name}"
    print(
        report.format_table(
            result,
            title=title,
            published={
                1: published.get("top1"),
                5: published.get("top5"),
            },
        )
    )
    for cause in result.metadata.get("diagnostics") or []:
        print(f"  likely cause: {cause}")


def _unknown_override(argv: list[str]) -> str | None:
    """Names the first `--config.a.b=...` override that is not a field.

    ml_collections reports an unknown field as a bare AttributeError; this
    re-reads the config and says which override is wrong and what the valid
    fields are.
    """
    args = flags.FLAGS.read_flags_from_files(argv[1:], force_gnu=False)
    spec = next(
        (a.split("=", 1)[1] for a in args if a.startswith("--config=")), None
    )
    if spec is None:
        return None
    path, _, preset = spec.partition(":")
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("_tf_topk_cfg", path)
    if module_spec is None or module_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(preset or None)
    for arg in args:
        if not arg.startswith("--config."):
            continue
        field = arg[len("--config.") :].split("=", 1)[0]
        node, walked = config, "config"
        for part in field.split("."):
            keys = list(node.keys()) if hasattr(node, "keys") else []
            if part not in keys:
                return (
                    f"Unknown config field in --config.{field}: {walked} has "
                    f"no field {part!r}. Valid fields of {walked}: "
                    f"{sorted(keys)}"
                )
            node, walked = node[part], f"{walked}.{part}"
    return None


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        raise SystemExit(
            f"FATAL Flags parsing error: {e}\nPass --helpshort or "
            "--helpfull to see help on flags."
        ) from e
    except (AttributeError, KeyError) as e:
        message = _unknown_override(argv)
        if message is None:
            raise
        raise SystemExit(message) from e


def entrypoint() -> None:
    """The `tf-topk` console script."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    entrypoint()
