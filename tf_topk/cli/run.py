"""One run, from its request to its files: `run_one`, and `run(config)`.

`run(config, workdir)` is what the command line calls (and the tests call
directly): it checks the config, then evaluates one run (`run_one`) or,
for a bulk config (`config.runs`), every run (`tf_topk.cli.bulk`), which
calls `run_one` for each.

`run_one` builds the model(s) (`tf_topk.models.building`) under the
distribution strategy, the input (`tf_topk.datasets`, started after what a
checkpoint already counted), measures what the input alone delivers,
evaluates (`tf_topk.evaluation.evaluate`, called in `_evaluate` only),
diagnoses a shortfall against the published figure and writes the results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import tensorflow as tf
from absl import logging
from ml_collections import config_dict

from tf_topk import (
    checkpoints,
    datasets,
    diagnostics,
    distribute,
    evaluation,
    imagenet,
    input_stage,
    predictions,
    provenance,
    report,
    results,
)

# bulk calls run_one: the two modules import each other, and each reads
# the other's functions only when called.
from tf_topk.cli import bulk, requests
from tf_topk.models import building

CHECKPOINT_DIR = "checkpoint"
PROGRESS_FILE = checkpoints.PROGRESS_FILE


def run(config: config_dict.ConfigDict, workdir: str | None):
    """Evaluates the model(s) of `config` on its data; writes the results.

    Args:
        config: a config as built by `tf_topk.cli.presets` (configs/*.py).
        workdir: output folder; None writes nothing.

    Returns:
        The `results.EvalResult` (with its metadata); for a bulk config
        (`config.runs`), a `bulk.BulkResult` of every run.

    Raises:
        ValueError: a config value or the workdir is invalid (the message
            names it).
    """
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
) -> results.EvalResult:
    """Evaluates one run and writes its files into `workdir`.

    Args:
        request: the run (`requests.from_config`).
        workdir: output folder (an existing one, see `check_workdir`);
            None writes nothing.
        inputs: the bulk command's cache of decoded images, shared with
            its other runs; None reads the input directly.

    Returns:
        The `results.EvalResult`, with the run's metadata, input rate and
        diagnostics.

    Raises:
        checkpoints.Interrupted: a signal stopped the run after it saved
            its checkpoint.
    """
    strategy = _strategy(request.distribution)
    data_arguments = request.data.build_arguments()
    built, model = _models(request, strategy, data_arguments)
    options = [member.options for member in built]
    save_predictions = bool(workdir and request.eval.save_predictions)
    # One model reads a batch of images; an ensemble a tuple, one a member.
    build_arguments = {
        **data_arguments,
        "preprocess": options[0] if len(options) == 1 else options,
        "with_ids": save_predictions,
    }
    checkpoint_dir = _checkpoint_dir(workdir, request)
    # A resumed run's input starts after what its checkpoint counted.
    start_step = checkpoints.saved_steps(
        checkpoint_dir if request.eval.resume else None
    )
    input_arguments = {
        **build_arguments,
        "start": start_step * request.data.batch_size,
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
    rate = _input_rate(request, dataset, inputs, input_arguments)
    metadata = _metadata(request, built, info, strategy)
    if strategy:
        dataset = datasets.worker_shards(
            dataset, info.num_examples, build_arguments
        )
    result = _evaluate(
        request,
        model,
        dataset,
        strategy=strategy,
        num_examples=info.num_examples,
        metadata=metadata,
        workdir=workdir,
        checkpoint_dir=checkpoint_dir,
        start_step=start_step,
    )
    # From here on the counts exist: optional steps may only warn.
    result = _input_verdict(result, rate, options[0], info.cache)
    result = _diagnosed(result, model, dataset, metadata, request)
    if workdir and (strategy is None or distribute.is_chief(strategy)):
        _write(result, workdir, model, info, checkpoint_dir)
    return result


def _evaluate(
    request: requests.RunRequest,
    model,
    dataset,
    *,
    strategy: tf.distribute.Strategy | None,
    num_examples: int,
    metadata: provenance.RunMetadata,
    workdir: str | None,
    checkpoint_dir: str | None,
    start_step: int,
) -> results.EvalResult:
    """The one call of the evaluation loop."""
    save_predictions = bool(workdir and request.eval.save_predictions)
    predictions_dir = None
    if save_predictions:
        predictions_dir = os.path.join(workdir, predictions.DIRECTORY)
    progress_file = None
    if workdir:
        progress_file = os.path.join(workdir, PROGRESS_FILE)
    return evaluation.evaluate(
        model,
        dataset,
        ks=request.eval.ks,
        strategy=strategy,
        expected_num_examples=num_examples,
        batch_size=request.data.batch_size,
        ties=request.eval.ties,
        jit_compile=request.eval.jit_compile,
        progress=request.eval.progress,
        log_every_n_examples=request.eval.log_every_n_examples,
        metadata=metadata.to_dict(),
        checkpoint_dir=checkpoint_dir,
        checkpoint_every_n_examples=(request.eval.checkpoint_every_n_examples),
        resume=request.eval.resume,
        fingerprint=metadata.fingerprint(),
        progress_file=progress_file,
        predictions_dir=predictions_dir,
        input_start_step=start_step,
    )


def _write(result, workdir: str, model, info, checkpoint_dir) -> None:
    """Writes the results files; the resume state is then done."""
    names, synsets = imagenet.names_for(
        model.output_shape[-1], info.class_names
    )
    paths = report.write(result, workdir, class_names=names, synsets=synsets)
    logging.info("Wrote %s", paths["results"])
    # results.json holds the counts now: the resume state is done.
    checkpoints.remove(checkpoint_dir, os.path.join(workdir, PROGRESS_FILE))


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


def _diagnosed(result, model, dataset, metadata, request):
    """`result` with the likely causes of a shortfall in its metadata."""
    causes = diagnostics.diagnose(
        result,
        model,
        dataset,
        published_top1=(metadata.published or {}).get("top1"),
        tolerance=request.eval.shortfall_tolerance,
        num_classes=request.data.num_classes,
    )
    metadata = dataclasses.replace(metadata, diagnostics=tuple(causes))
    return dataclasses.replace(result, metadata=metadata.to_dict())


def _input_rate(request, dataset, inputs, input_arguments):
    """What the input pipeline alone delivers (`input_stage.measure`).

    A shared input is timed on `InputCache.for_probe`; with several
    workers each reads its own share, so one pipeline's rate says nothing
    of the run's.
    """
    if request.distribution == "multi_worker":
        return None
    if inputs:
        dataset = inputs.for_probe(**input_arguments)
    try:
        return input_stage.measure(dataset)
    except tf.errors.OpError as e:  # The loop reports a bad input itself.
        logging.info("The input probe stopped: %s", e.message[:200])
        return None


def _input_verdict(result, rate, options, cache: str):
    """The probe's rate in the result, and a warning when input limits."""
    result = input_stage.annotate(result, rate)
    if result.input_limited:
        logging.warning(
            "%s", input_stage.advice(result, options=options, cache=cache)
        )
    return result


def _checkpoint_dir(
    workdir: str | None, request: requests.RunRequest
) -> str | None:
    """<workdir>/checkpoint, or None where a run cannot resume."""
    if not workdir:
        return None
    directory = os.path.join(workdir, CHECKPOINT_DIR)
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


def _metadata(request, built, info, strategy) -> provenance.RunMetadata:
    """What results.json says of the run besides its counts."""
    data = request.data
    single = len(built) == 1
    published = built[0].published if single else None
    if request.eval.published_top1 is not None:
        published = (request.eval.published_top1, request.eval.published_top5)
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
        preprocessing=tuple(m.options.to_dict() for m in built),
        published=(
            {"top1": published[0], "top5": published[1]} if published else None
        ),
        distribution=request.distribution,
        config=request.config,
        devices=provenance.devices(strategy),
        num_parameters=sum(int(m.model.count_params()) for m in built),
    )
