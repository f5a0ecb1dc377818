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
import json
import os
import signal
from typing import Any

import tensorflow as tf
from absl import app, flags, logging
from ml_collections import config_dict, config_flags
from ml_collections.config_flags import config_flags as config_files

from tf_topk import (
    bulk,
    checkpoints,
    datasets,
    diagnostics,
    distribute,
    evaluation,
    imagenet,
    input_stage,
    leaderboard,
    listeners,
    members,
    presets,
    progress,
    provenance,
    results,
)
from tf_topk.runs import files, predictions, summary

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


def run(config: config_dict.ConfigDict, workdir: str | None):
    """Evaluates the model(s) of `config` on its data; writes the results.

    Args:
        config: a config as built by `tf_topk.presets` (configs/*.py).
        workdir: output folder; None writes nothing.

    Returns:
        The `results.EvalResult` (with its metadata); for a bulk config
        (`config.runs`), a `bulk.BulkResult` of every run.
    """
    _check(config)
    _check_workdir(workdir)
    if config.runs:
        return bulk.run(config, workdir, run_one=_run_one)
    return _run_one(config, workdir)


def _run_one(
    config: config_dict.ConfigDict,
    workdir: str | None,
    inputs: datasets.InputCache | None = None,
) -> results.EvalResult:
    """One run; `inputs` shares decoded images with the other bulk runs."""
    strategy = _strategy(config.distribution)
    data = config.data
    data_kwargs = _data_kwargs(data)
    built, model = _models(config, strategy, data_kwargs)
    options = [member.options for member in built]
    # One model reads a batch of images; an ensemble a tuple, one a member.
    save_predictions = bool(workdir and config.eval.save_predictions)
    build_kwargs = {
        **data_kwargs,
        "preprocess": options[0] if len(options) == 1 else options,
        "with_ids": save_predictions,
    }
    checkpointer = _checkpointer(workdir, config)
    start = checkpointer.start if checkpointer else None
    # A resumed run's input starts after what its checkpoint counted.
    input_kwargs = {
        **build_kwargs,
        "start": start.steps * data.batch_size if start else 0,
        "with_info": True,
    }
    build = inputs.build if inputs else datasets.build
    dataset, info = build(**input_kwargs)
    logging.info(
        "Evaluating %s on %d examples (%s).",
        config.model.name,
        info.num_examples,
        data.source,
    )
    metadata = _metadata(config, built, info, strategy)
    hooks = [
        listeners.Metadata(metadata.to_dict()),
        input_stage.InputProbe(
            inputs.for_probe(**input_kwargs) if inputs else None,
            options=options[0],
            cache=info.cache,
        ),
        diagnostics.Diagnosis(
            (metadata.published or {}).get("top1"),
            tolerance=config.eval.shortfall_tolerance,
            num_classes=config.data.num_classes,
        ),
    ]
    if save_predictions:
        directory = os.path.join(workdir, files.PREDICTIONS_DIR)
        hooks.insert(0, predictions.Recorder(directory))
    if workdir and (strategy is None or distribute.is_chief(strategy)):
        names, synsets = imagenet.names_for(
            model.output_shape[-1], info.class_names
        )
        hooks.append(
            files.ResultsWriter(workdir, class_names=names, synsets=synsets)
        )
    if checkpointer:
        checkpointer.fingerprint.update(metadata.fingerprint())
        hooks.append(checkpointer)
    return evaluation.evaluate(
        model,
        datasets.worker_shards(dataset, info.num_examples, build_kwargs)
        if strategy
        else dataset,
        ks=tuple(config.eval.ks),
        strategy=strategy,
        expected_num_examples=info.num_examples,
        batch_size=data.batch_size,
        ties=config.eval.ties,
        jit_compile=config.eval.jit_compile,
        progress=progress.Progress(
            config.eval.progress,
            log_every_n_examples=config.eval.log_every_n_examples,
        ),
        listeners=hooks,
    )


def _checkpointer(workdir, config) -> checkpoints.Checkpointer | None:
    """The run's checkpoint in <workdir>/checkpoint, read once; None where
    a run cannot resume."""
    directory = _checkpoint_dir(workdir, config)
    if directory is None:
        return None
    return checkpoints.Checkpointer(
        directory,
        every_n_examples=config.eval.checkpoint_every_n_examples,
        resume=config.eval.resume,
        progress_file=os.path.join(workdir, files.PROGRESS_FILE),
        input_resumed=True,
        # results.json holds the counts then: the resume state is done.
        remove_when_done=True,
    )


def _models(config, strategy, data_kwargs) -> tuple[list, Any]:
    """(the members, built under the strategy; the model to evaluate)."""
    data = config.data
    if data.source == "tfds":
        datasets.prepare_tfds(
            data.name,
            data_dir=data.data_dir,
            download=data.download,
            manual_dir=data.manual_dir,
        )
    with strategy.scope() if strategy else contextlib.nullcontext():
        built = [
            members.build(section, config.preprocess, data, data_kwargs, path)
            for path, section in presets.model_sections(config).items()
        ]
        return built, members.combine(built, config.ensemble_weights)


def _checkpoint_dir(workdir: str | None, config) -> str | None:
    """<workdir>/checkpoint, or None where a run cannot resume."""
    if not workdir:
        return None
    directory = os.path.join(workdir, files.CHECKPOINT_DIR)
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
            cache=info.cache,
        ),
        preprocessing=tuple(m.options.to_dict() for m in built),
        published=(
            {"top1": published[0], "top5": published[1]} if published else None
        ),
        distribution=config.distribution,
        config=json.loads(config.to_json_best_effort()),
        devices=provenance.devices(strategy),
        num_parameters=sum(int(m.model.count_params()) for m in built),
    )


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
    if isinstance(result, bulk.BulkResult):
        print(leaderboard.to_markdown(result.rows))
        if result.failed:
            failed = [r.run for r in result.rows if r.status != "ok"]
            raise SystemExit(f"Failed runs: {failed} (see the log).")
        return
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
    # Lazy: matplotlib and the comparison are not needed to evaluate.
    from tf_topk.runs import compare, report

    try:
        if name == "compare":
            comparison = compare.compare_runs(*args, _WORKDIR.value)
            print(compare.format_comparison(comparison))
        else:
            print(f"Wrote {report.write(args[0])}")
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e


def _summary(result: results.EvalResult, name: str) -> str:
    published = result.metadata.get("published") or {}
    table = summary.format_table(
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
