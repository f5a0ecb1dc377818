"""One run, from its request to its files: `run_one`, and `run(config)`.

`run(config, workdir)` is what the command line calls (and the tests call
directly): it checks the config, then evaluates one run (`run_one`) or,
for a bulk config (`config.runs`), every run (`tf_topk.cli.bulk`), which
calls `run_one` for each.

`run_one` builds the model(s) (`tf_topk.models.building`) under the
distribution strategy, reads the run's checkpoint once
(`checkpoints.Checkpointer`: where it resumes), builds the input from there
(`tf_topk.datasets`: nothing counted is decoded again) and evaluates
(`tf_topk.evaluation.evaluate`, called in `_evaluate` only) with the
listeners of a command-line run: run metadata, the input probe, the
shortfall diagnosis, the predictions files, the results files
(`runs.files.ResultsWriter`) and, last, the checkpoint, which removes
itself once results.json holds the counts.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import tensorflow as tf
from absl import logging
from ml_collections import config_dict

from tf_topk import (
    backoff,
    checkpoints,
    datasets,
    diagnostics,
    distribute,
    evaluation,
    imagenet,
    input_stage,
    listeners,
    models,
    progress,
    provenance,
    results,
)

# bulk calls run_one: the two modules import each other, and each reads
# the other's functions only when called.
from tf_topk.cli import bulk, requests, robustness
from tf_topk.models import building
from tf_topk.runs import files, predictions


def run(config: config_dict.ConfigDict, workdir: str | None):
    """Evaluates the model(s) of `config` on its data; writes the results.

    Args:
        config: a config as built by `tf_topk.cli.presets` (configs/*.py).
        workdir: output folder; None writes nothing.

    Returns:
        The `results.EvalResult` (with its metadata); for a bulk config
        (`config.runs`), a `bulk.BulkResult` of every run; for a
        robustness config (`config.robustness`), a
        `robustness.RobustnessResult`.

    Raises:
        ValueError: a config value or the workdir is invalid (the message
            names it).
    """
    if "robustness" in config:
        check_workdir(workdir)
        return robustness.run(config, workdir)
    if config.runs:
        requests.check(config)
        check_workdir(workdir)
        return bulk.run(config, workdir)
    request = requests.from_config(config)
    check_workdir(workdir)
    return run_one(request, workdir)


def run_one(
    request: requests.RunRequest,
    workdir: str | None,
    *,
    inputs: datasets.InputCache | None = None,
    start_batch_size: int | None = None,
    built: list[building.BuiltModel] | None = None,
) -> results.EvalResult:
    """Evaluates one run and writes its files into `workdir`.

    Args:
        request: the run (`requests.from_config`).
        workdir: output folder (an existing one, see `check_workdir`);
            None writes nothing.
        inputs: the bulk command's cache of decoded images, shared with
            its other runs; None reads the input directly.
        start_batch_size: the step's batch size to start at, below the
            input's (what fitted an earlier run of a bulk command after an
            out-of-memory back-off); None: the input's.
        built: the run's model(s), already built (`building.build`) by a
            command that evaluates one model on several inputs
            (`tf_topk.cli.robustness`); None builds them from the request.

    Returns:
        The `results.EvalResult`, with the run's metadata, input rate and
        diagnostics.

    Raises:
        checkpoints.Interrupted: a signal stopped the run after it saved
            its checkpoint.
    """
    strategy = _strategy(request.distribution)
    data_arguments = request.data.build_arguments()
    if built is None:
        built, model = _models(request, strategy, data_arguments)
    else:
        model = building.combine(built, request.ensemble_weights)
    options = [member.options for member in built]
    save_predictions = bool(workdir and request.eval.save_predictions)
    # One model reads a batch of images; an ensemble a tuple, one a member.
    build_arguments = {
        **data_arguments,
        "preprocess": options[0] if len(options) == 1 else options,
        "with_ids": save_predictions,
    }
    checkpointer = _checkpointer(workdir, request)
    start = checkpointer.start if checkpointer else None
    # A resumed run's input starts after what its checkpoint counted.
    input_arguments = {
        **build_arguments,
        "start": start.steps * request.data.batch_size if start else 0,
        "with_info": True,
    }
    build = inputs.build if inputs else datasets.build
    dataset, info = build(**input_arguments)
    logging.info(
        "Evaluating %s on %d examples (%s).",
        request.name,
        info.num_examples,
        request.data.source,
    )
    metadata = _metadata(request, built, info, strategy)
    hooks = [
        listeners.Metadata(metadata.to_dict()),
        input_stage.InputProbe(
            inputs.for_probe(**input_arguments) if inputs else None,
            num_batches=request.eval.input_probe_batches,
            options=options[0],
            cache=info.cache,
        ),
        diagnostics.Diagnosis(
            published=_published(request, built),
            options=options[0] if len(options) == 1 else None,
            tolerance=request.eval.shortfall_tolerance,
            num_classes=request.data.num_classes,
        ),
    ]
    hooks.append(
        backoff.OomBackoff(
            request.eval.oom_backoff, batch_size=start_batch_size
        )
    )
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
    if strategy:
        dataset = datasets.worker_shards(
            dataset, info.num_examples, build_arguments
        )
    return _evaluate(request, model, dataset, strategy, info, hooks)


def _evaluate(
    request: requests.RunRequest,
    model,
    dataset,
    strategy: tf.distribute.Strategy | None,
    info: datasets.SourceInfo,
    hooks: list[listeners.Listener],
) -> results.EvalResult:
    """The one call of the evaluation loop."""
    return evaluation.evaluate(
        model,
        dataset,
        ks=request.eval.ks,
        strategy=strategy,
        expected_num_examples=info.num_examples,
        batch_size=request.data.batch_size,
        ties=request.eval.ties,
        jit_compile=request.eval.jit_compile,
        progress=progress.Progress(
            request.eval.progress,
            log_every_n_examples=request.eval.log_every_n_examples,
        ),
        listeners=hooks,
    )


def _checkpointer(
    workdir: str | None, request: requests.RunRequest
) -> checkpoints.Checkpointer | None:
    """The run's checkpoint in <workdir>/checkpoint, read once here; None
    where a run cannot resume."""
    directory = _checkpoint_dir(workdir, request)
    if directory is None:
        return None
    return checkpoints.Checkpointer(
        directory,
        every_n_examples=request.eval.checkpoint_every_n_examples,
        resume=request.eval.resume,
        progress_file=os.path.join(workdir, files.PROGRESS_FILE),
        input_resumed=True,
        # results.json holds the counts then: the resume state is done.
        remove_when_done=True,
    )


def _models(
    request: requests.RunRequest, strategy, data_arguments: dict[str, Any]
) -> tuple[list[building.BuiltModel], Any]:
    """(the models, built under the strategy; the model to evaluate)."""
    data = request.data
    if data.source == "tfds":
        datasets.prepare_tfds(
            data.name,
            data_dir=data.data_dir,
            download=data.download,
            manual_dir=data.manual_dir,
        )
    overrides = request.preprocessing_overrides()
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        built = [
            building.build(model, overrides=overrides, data=data_arguments)
            for model in request.models
        ]
        return built, building.combine(built, request.ensemble_weights)


def _checkpoint_dir(
    workdir: str | None, request: requests.RunRequest
) -> str | None:
    """<workdir>/checkpoint, or None where a run cannot resume."""
    if not workdir:
        return None
    directory = os.path.join(workdir, files.CHECKPOINT_DIR)
    if request.distribution != "multi_worker":
        return directory
    if request.eval.resume and tf.io.gfile.exists(directory):
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


def check_workdir(workdir: str | None) -> None:
    """The workdir must be a folder, or creatable, before any work.

    Creates it.

    Raises:
        ValueError: `workdir` is a file, or cannot be created.
    """
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
    if name == "none":
        return None
    return distribute.get_strategy(name)


def _published(
    request: requests.RunRequest, built: list[building.BuiltModel]
) -> models.Published | None:
    """The figure to compare with: the config's, else the one model's."""
    if request.eval.published_top1 is not None:
        # Figures given on the command line come without their conditions.
        return models.Published(
            request.eval.published_top1,
            request.eval.published_top5,
            source="config",
        )
    return built[0].published if len(built) == 1 else None


def _metadata(request, built, info, strategy) -> provenance.RunMetadata:
    """What results.json says of the run besides its counts."""
    data = request.data
    single = len(built) == 1
    published = _published(request, built)
    tfds = data.source == "tfds"
    return provenance.RunMetadata(
        model=built[0].record if single else request.name,
        members=None if single else tuple(m.record for m in built),
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
        preprocessing=tuple(
            _preprocessing_record(m.options, request.preprocess.protocol)
            for m in built
        ),
        published=published.to_dict() if published else None,
        distribution=request.distribution,
        config=request.config,
        devices=provenance.devices(strategy),
        num_parameters=sum(int(m.model.count_params()) for m in built),
    )


def _preprocessing_record(options, protocol: str | None) -> dict[str, Any]:
    """results.json's record of one model's preprocessing."""
    record = options.to_dict()
    if protocol is not None:
        record["protocol"] = protocol
    return record
