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
import signal
from typing import Any

import tensorflow as tf
from absl import app, flags, logging
from ml_collections import config_dict, config_flags
from ml_collections.config_flags import config_flags as config_files

from tf_topk import (
    checkpoints,
    datasets,
    diagnostics,
    distribute,
    evaluation,
    imagenet,
    members,
    predictions,
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

CHECKPOINT_DIR = "checkpoint"
PROGRESS_FILE = checkpoints.PROGRESS_FILE


def run(config: config_dict.ConfigDict, workdir: str | None):
    """Evaluates the model(s) of `config` on its data; writes the results.

    Args:
        config: a config as built by `tf_topk.presets` (configs/*.py).
        workdir: output folder; None writes nothing.

    Returns:
        The `results.EvalResult` (with its metadata).
    """
    _check(config)
    _check_workdir(workdir)
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
        built = [
            members.build(section, config.preprocess, data, data_kwargs, path)
            for path, section in presets.model_sections(config).items()
        ]
        model = members.combine(built, config.ensemble_weights)
    options = [member.options for member in built]
    # One model reads a batch of images; an ensemble a tuple, one a member.
    save_predictions = bool(workdir and config.eval.save_predictions)
    build_kwargs = {
        **data_kwargs,
        "preprocess": options[0] if len(options) == 1 else options,
        "with_ids": save_predictions,
    }
    checkpoint_dir = _checkpoint_dir(workdir, config)
    # A resumed run's input starts after what its checkpoint counted.
    start_step = checkpoints.saved_steps(
        checkpoint_dir if config.eval.resume else None
    )
    dataset, info = datasets.build(
        **build_kwargs, start=start_step * data.batch_size, with_info=True
    )
    logging.info(
        "Evaluating %s on %d examples (%s).",
        config.model.name,
        info.num_examples,
        data.source,
    )
    metadata = _metadata(config, built, info, strategy)
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
        checkpoint_dir=checkpoint_dir,
        checkpoint_every_n_examples=config.eval.checkpoint_every_n_examples,
        resume=config.eval.resume,
        fingerprint=_fingerprint(metadata),
        progress_file=workdir and os.path.join(workdir, PROGRESS_FILE),
        predictions_dir=os.path.join(workdir, predictions.DIRECTORY)
        if save_predictions
        else None,
        input_start_step=start_step,
    )
    # From here on the counts exist: optional steps may only warn.
    causes = _diagnose(result, model, dataset, metadata, config)
    metadata = dataclasses.replace(metadata, diagnostics=tuple(causes))
    result = dataclasses.replace(result, metadata=metadata.to_dict())
    if workdir and (strategy is None or distribute.is_chief(strategy)):
        names, synsets = _class_names(model, info)
        paths = report.write(
            result, workdir, class_names=names, synsets=synsets
        )
        logging.info("Wrote %s", paths["results"])
        # results.json holds the counts now: the resume state is done.
        checkpoints.remove(checkpoint_dir, os.path.join(workdir, PROGRESS_FILE))
    return result


def _checkpoint_dir(workdir: str | None, config) -> str | None:
    """<workdir>/checkpoint, or None where a run cannot resume."""
    if not workdir:
        return None
    directory = os.path.join(workdir, CHECKPOINT_DIR)
    if config.distribution != "multi_worker":
        return directory
    if config.eval.resume and tf.io.gfile.exists(directory):
        raise ValueError(
            f"`config.distribution`='multi_worker' cannot resume from the "
            f"checkpoint in {directory}: resuming works in one process "
            "(distribution 'none' or 'mirrored'). Received: "
            "distribution='multi_worker'. Resume with the distribution that "
            "saved it, or start afresh with --config.eval.resume=False."
        )
    logging.warning(
        "distribution='multi_worker' saves no checkpoint: an interrupted "
        "run starts again from the first example."
    )
    return None


def _fingerprint(metadata: provenance.RunMetadata) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed by this run."""
    record = metadata.to_dict()
    data = record["data"]
    return {
        "model": record["model"],
        "members": record["members"],
        "data": {
            key: data[key]
            for key in (
                "source", "name", "split", "path", "labels_file",
                "num_examples", "label_offset", "num_crops",
            )
        },
        "preprocessing": record["preprocessing"],
    }  # fmt: skip


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
            f"{data.source!r}. Received: {data.path!r}"
        )


def _check_workdir(workdir: str | None) -> None:
    """The workdir must be a folder, or creatable, before any work."""
    if not workdir:
        return
    if tf.io.gfile.exists(workdir) and not tf.io.gfile.isdir(workdir):
        raise ValueError(
            "Argument `workdir` must be a folder (or a path where one can be "
            f"created). Received: workdir={workdir!r}, which is a file."
        )
    try:
        tf.io.gfile.makedirs(workdir)
    except (OSError, tf.errors.OpError) as e:
        raise ValueError(
            "Argument `workdir` must be a folder (or a path where one can be "
            f"created). Received: workdir={workdir!r} ({e})."
        ) from e


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
        image_key=data.image_key,
        label_key=data.label_key,
    )


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


def _metadata(config, built, info, strategy) -> provenance.RunMetadata:
    data = config.data
    published = built[0].published if len(built) == 1 else None
    if config.eval.published_top1 is not None:
        published = (config.eval.published_top1, config.eval.published_top5)
    tfds = data.source == "tfds"
    return provenance.RunMetadata(
        model=built[0].record if len(built) == 1 else config.model.name,
        members=None if len(built) == 1 else tuple(m.record for m in built),
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
        preprocessing=tuple(m.options.to_dict() for m in built),
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


def _class_names(model, info) -> tuple[list[str] | None, list[str] | None]:
    """(names in words, synsets) of the classes, where known.

    The 1000 ImageNet classes are named in words ("tabby, tabby cat"),
    other label spaces by the source's class names.
    """
    num_outputs = model.output_shape[-1]
    names = list(info.class_names) if info.class_names else None
    if num_outputs == imagenet.NUM_CLASSES and (
        names is None or names == list(imagenet.synsets())
    ):
        return list(imagenet.class_names()), list(imagenet.synsets())
    if names is not None and len(names) == num_outputs:
        return names, None
    return None, None


def main(argv: list[str]) -> None:
    if len(argv) > 1 and argv[1] in COMMANDS:
        _command(argv[1], argv[2:])
        return
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
    except checkpoints.Interrupted as e:
        logging.warning("%s", e)
        # 128 + the signal number, as a shell reports a killed command.
        raise SystemExit(128 + signal.Signals[e.signal_name].value) from e
    print(_summary(result, _CONFIG.value.model.name))


COMMANDS = {
    "compare": "tf-topk compare RUN_A RUN_B --workdir=OUT: a paired "
    "comparison of two finished runs saved with "
    "--config.eval.save_predictions=True (writes OUT/comparison.json).",
    "report": "tf-topk report RUN: writes RUN/report.html, one "
    "self-contained page of plots and tables (and the plots to the run's "
    "TensorBoard log).",
}


def _command(name: str, args: list[str]) -> None:
    """`tf-topk compare A B --workdir=C` and `tf-topk report A`."""
    wanted = 2 if name == "compare" else 1
    if len(args) != wanted or (name == "compare" and not _WORKDIR.value):
        raise app.UsageError(
            f"Usage: {COMMANDS[name]} Received: {[name, *args]} with "
            f"--workdir={_WORKDIR.value!r}"
        )
    # Lazy: matplotlib and the analysis are not needed to evaluate.
    from tf_topk import analysis, html_report

    try:
        if name == "compare":
            comparison = analysis.compare_runs(*args, _WORKDIR.value)
            print(analysis.format_comparison(comparison))
        else:
            print(f"Wrote {html_report.write(args[0])}")
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e


def _summary(result: results.EvalResult, name: str) -> str:
    published = result.metadata.get("published") or {}
    table = report.format_table(
        result,
        title=f"tf_topk: {name}",
        published={1: published.get("top1"), 5: published.get("top5")},
        class_names=imagenet.class_names()
        if len(result.per_class_count or ()) == imagenet.NUM_CLASSES
        else None,
    )
    causes = result.metadata.get("diagnostics") or []
    return "\n".join([table] + [f"  likely cause: {c}" for c in causes])


class _ConfigFileParser(config_files.ConfigFileFlagParser):
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
        text = str(e)
        if "Error whilst parsing config file" in text:
            # The config's own error (e.g. an unknown preset), without the
            # traceback ml_collections wraps around it.
            last = text.strip().splitlines()[-1]
            raise SystemExit(last.split(": ", 1)[-1]) from e
        raise SystemExit(
            f"FATAL Flags parsing error: {text}\nPass --helpshort or "
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
