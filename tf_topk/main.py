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
import json
import os
from typing import Any

import tensorflow as tf
from absl import app, flags, logging
from ml_collections import config_dict, config_flags

from tf_topk import (
    datasets,
    diagnostics,
    distribute,
    evaluation,
    imagenet,
    models,
    preprocessing,
    presets,
    provenance,
    report,
    results,
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

_NONE_WEIGHTS = ("none", "random", "")


@dataclasses.dataclass(frozen=True)
class _Member:
    """One built inference model and what results.json says of it."""

    model: Any
    options: preprocessing.Options
    record: provenance.ModelRecord
    published: tuple[float, float] | None


def run(config: config_dict.ConfigDict, workdir: str | None):
    """Evaluates the model(s) of `config` on its data; writes the results.

    Args:
        config: a config as built by `tf_topk.presets` (configs/*.py).
        workdir: output folder; None writes nothing.

    Returns:
        The `results.EvalResult` (with its metadata).
    """
    _check(config)
    strategy = _strategy(config.distribution)
    data = config.data
    if data.source == "tfds":
        datasets.prepare_tfds(
            data.name,
            data_dir=data.data_dir,
            download=data.download,
            manual_dir=data.manual_dir,
        )
    data_kwargs = _data_kwargs(data)
    with strategy.scope() if strategy else contextlib.nullcontext():
        members = [
            _member(section, config.preprocess, data, data_kwargs, path)
            for path, section in presets.model_sections(config).items()
        ]
        model = _combine(members, config.ensemble_weights)
    options = [member.options for member in members]
    # One model reads a batch of images; an ensemble a tuple, one a member.
    build_kwargs = {
        **data_kwargs,
        "preprocess": options[0] if len(options) == 1 else options,
    }
    dataset, info = datasets.build(**build_kwargs, with_info=True)
    logging.info(
        "Evaluating %s on %d examples (%s).",
        config.model.name,
        info.num_examples,
        data.source,
    )
    metadata = _metadata(config, members, info, strategy)
    result = evaluation.evaluate(
        model,
        _worker_shards(dataset, info.num_examples, build_kwargs)
        if strategy
        else dataset,
        ks=tuple(config.eval.ks),
        strategy=strategy,
        expected_num_examples=info.num_examples,
        batch_size=data.batch_size,
        ties=config.eval.ties,
        jit_compile=config.eval.jit_compile,
        progress=config.eval.progress,
        log_every_n_examples=config.eval.log_every_n_examples,
        metadata=metadata.to_dict(),
    )
    # From here on the counts exist: optional steps may only warn.
    causes = _diagnose(result, model, dataset, metadata, config)
    metadata = dataclasses.replace(metadata, diagnostics=tuple(causes))
    result = dataclasses.replace(result, metadata=metadata.to_dict())
    if workdir and (strategy is None or distribute.is_chief(strategy)):
        paths = report.write(
            result, workdir, class_names=_class_names(model, info)
        )
        logging.info("Wrote %s", paths["results"])
    return result


def _choice(path: str, value: Any, valid) -> Any:
    if value not in valid:
        raise ValueError(
            f"`{path}` must be one of {sorted(valid)}. Received: {value!r}"
        )
    return value


def _check(config: config_dict.ConfigDict) -> None:
    """Checks the run-level choices before any model or data work."""
    data = config.data
    _choice("config.data.source", data.source, datasets.SOURCES)
    _choice("config.distribution", config.distribution, distribute.STRATEGIES)
    _choice("config.eval.ties", config.eval.ties, ("exclusive", "inclusive"))
    if data.source != "tfds" and not data.path:
        raise ValueError(
            f"`config.data.path` must be set for config.data.source="
            f"{data.source!r}. Received: None"
        )


def _strategy(name: str) -> tf.distribute.Strategy | None:
    return None if name == "none" else distribute.get_strategy(name)


def _data_kwargs(data: config_dict.ConfigDict) -> dict[str, Any]:
    """`datasets.build` arguments from `config.data` (all but preprocess)."""
    return dict(
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
    )


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


def _labels_in_data(data_kwargs: dict[str, Any]) -> list[int]:
    """The sorted classes the evaluation data holds (ImageNet-A / R)."""
    dataset, _ = datasets.build(**data_kwargs)
    present = set()
    for _, labels in dataset:
        present.update(int(x) for x in labels.numpy().reshape(-1))
    return sorted(present)


def _member(section, preprocess, data, data_kwargs, path: str) -> _Member:
    """Builds one inference model from a model section of the config."""
    kwargs = dict(section.get("kwargs", {}) or {})
    if section.alpha is not None:
        kwargs["alpha"] = section.alpha
    subset = _class_subset(section.class_subset, f"{path}.class_subset")
    if subset == "labels_in_data":
        subset = _labels_in_data(data_kwargs)
    name = (section.name or "").lower()
    spec = models.get_spec(name) if name in models.names() else None
    wrapper = dict(
        image_size=section.image_size,
        output=section.output,
        has_background_class=section.has_background_class,
        class_subset=subset,
    )
    if spec is not None:
        model, weights = models.build(
            spec.name,
            weights=_weights(section.weights),
            preprocess_input=section.preprocess_mode,
            **wrapper,
            **kwargs,
        )
    else:
        raw, weights = models.load(
            None, weights=_weights(section.weights), **kwargs
        )
        wrapper["output"] = section.output or "softmax"
        model = models.inference_model(
            raw, preprocess_input=section.preprocess_mode or "none", **wrapper
        )
    image_size = int(model.inputs[0].shape[1] or section.image_size or 224)
    options = preprocessing.resolve(
        spec,
        dict(
            image_size=image_size,
            crop_fraction=preprocess.crop_fraction,
            interpolation=preprocess.interpolation,
            antialias=preprocess.antialias,
            crop_mode=preprocess.crop_mode,
            num_crops=data.num_crops,
        ),
    )
    record = provenance.ModelRecord(
        name=spec.name if spec else (section.name or "custom"),
        weights=section.weights,
        weights_file=weights.path,
        weights_sha256=weights.sha256,
        alpha=section.alpha,
        image_size=image_size,
        preprocess_mode=section.preprocess_mode
        or (spec.preprocess_mode if spec else "none"),
        output=section.output or (spec.output if spec else "softmax"),
        has_background_class=section.has_background_class,
        class_subset_size=None if subset is None else len(subset),
    )
    published = (
        spec.published(alpha=section.alpha or 1.0, image_size=image_size)
        if spec
        else None
    )
    return _Member(model, options, record, published)


def _combine(members: list[_Member], ensemble_weights: str | None):
    """The one model to evaluate: a member, or their weighted average."""
    if len(members) == 1:
        if ensemble_weights is not None:
            raise ValueError(
                "`config.ensemble_weights` applies to ensembles only (a "
                "preset such as 'mobilenet+resnet50'). Received: "
                f"{ensemble_weights!r} for one model"
            )
        return members[0].model
    weights = None
    if ensemble_weights is not None:
        try:
            weights = [float(v) for v in ensemble_weights.split(",")]
        except ValueError as e:
            raise ValueError(
                "`config.ensemble_weights` must be comma-separated numbers, "
                f"one per member. Received: {ensemble_weights!r}"
            ) from e
        if len(weights) != len(members):
            raise ValueError(
                f"`config.ensemble_weights` must have {len(members)} values, "
                f"one per member. Received: {ensemble_weights!r}"
            )
    return models.ensemble([m.model for m in members], weights=weights)


def _worker_shards(whole, num_examples: int, build_kwargs: dict[str, Any]):
    """A dataset function: each worker of a run reads only its share.

    With one input pipeline (one process) it is the whole dataset; with W
    workers, worker w builds examples w, w + W, ... in batches of
    `distribute.per_worker_batch_size`, so each decodes 1/W of the images
    (see `tf_topk.evaluate`).
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        pipelines = context.num_input_pipelines
        if pipelines == 1:
            return whole
        index = context.input_pipeline_id
        batch_size = distribute.per_worker_batch_size(
            build_kwargs["batch_size"], pipelines
        )
        dataset, count = datasets.build(
            **{**build_kwargs, "batch_size": batch_size},
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


def _metadata(config, members, info, strategy) -> provenance.RunMetadata:
    data = config.data
    published = members[0].published if len(members) == 1 else None
    if config.eval.published_top1 is not None:
        published = (config.eval.published_top1, config.eval.published_top5)
    tfds = data.source == "tfds"
    return provenance.RunMetadata(
        model=members[0].record if len(members) == 1 else config.model.name,
        members=None if len(members) == 1 else tuple(m.record for m in members),
        data=provenance.DataRecord(
            source=data.source,
            name=data.name if tfds else None,
            split=data.split if tfds else None,
            path=data.path,
            labels_file=data.labels_file,
            num_examples=info.num_examples,
            label_offset=data.label_offset,
            num_crops=data.num_crops,
            label_mapping=info.label_mapping,
            multi_label=info.multi_label,
            num_skipped=info.num_skipped,
            skipped=tuple(info.skipped),
        ),
        preprocessing=tuple(m.options.to_dict() for m in members),
        published=(
            {"top1": published[0], "top5": published[1]} if published else None
        ),
        distribution=config.distribution,
        config=json.loads(config.to_json_best_effort()),
        devices=provenance.devices(strategy),
    )


def _diagnose(result, model, dataset, metadata, config) -> list[str]:
    """Likely causes of a top-1 short of the published one; never raises.

    Only a shortfall that sampling noise cannot explain (the published
    figure above the 95% interval) is diagnosed: on 100 images the interval
    is about +-9 points wide. A failure here only logs a warning: the
    counts of the run are kept whatever happens.
    """
    published = (metadata.published or {}).get("top1")
    if published is None or 1 not in result.correct:
        return []
    shortfall = published - result.accuracy(1)
    if (
        shortfall <= config.eval.shortfall_tolerance
        or published <= result.interval(1)[1]
    ):
        return []
    try:
        return diagnostics.shortfall_causes(
            model,
            dataset,
            shortfall=shortfall,
            num_outputs=model.output_shape[-1],
            num_classes=config.data.num_classes,
        )
    except Exception as e:  # Optional: the counts must survive.
        logging.warning("The shortfall diagnosis failed (%s); skipped.", e)
        return [f"top-1 is {shortfall:.1%} below the published figure."]


def _class_names(model, info) -> list[str] | None:
    """Class names for per_class.csv: the source's, else the synsets."""
    num_outputs = model.output_shape[-1]
    if len(info.class_names) == num_outputs:
        return list(info.class_names)
    if num_outputs == imagenet.NUM_CLASSES:
        return list(imagenet.synsets())
    return None


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
    except (ValueError, FileNotFoundError, datasets.DataUnavailableError) as e:
        raise app.UsageError(str(e)) from e
    print(_summary(result, _CONFIG.value.model.name))


def _summary(result: results.EvalResult, name: str) -> str:
    published = result.metadata.get("published") or {}
    table = report.format_table(
        result,
        title=f"tf_topk: {name}",
        published={1: published.get("top1"), 5: published.get("top5")},
    )
    causes = result.metadata.get("diagnostics") or []
    return "\n".join([table] + [f"  likely cause: {c}" for c in causes])


class _ConfigFileParser(config_flags.ConfigFileFlagParser):
    """Keeps the config it loaded, to name an unknown override field."""

    loaded: config_dict.ConfigDict | None = None

    def parse(self, path):
        self.loaded = super().parse(path)
        return self.loaded


def _unknown_override(argv: list[str], config) -> str | None:
    """Names the first `--config.a.b=...` override that is not a field.

    ml_collections reports an unknown field as a bare AttributeError; this
    walks the loaded config and says which override is wrong and what the
    valid fields are.
    """
    args = flags.FLAGS.read_flags_from_files(argv[1:], force_gnu=False)
    for arg in args:
        if config is None or not arg.startswith("--config."):
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
    parser = _ConfigFileParser(name="config")
    flags.FLAGS["config"].parser = parser
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        raise SystemExit(
            f"FATAL Flags parsing error: {e}\nPass --helpshort or "
            "--helpfull to see help on flags."
        ) from e
    except (AttributeError, KeyError) as e:
        message = _unknown_override(argv, parser.loaded)
        if message is None:
            raise
        raise SystemExit(message) from e


def entrypoint() -> None:
    """The `tf-topk` console script."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    entrypoint()
