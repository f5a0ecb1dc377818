"""Bulk runs: several models, one command, the same data decoded once.

`--config=configs/imagenet.py:mobilenet,resnet50,mobilenet` builds a config
with one model section per run (`config.runs.run0`, `run1`, ...; see
`tf_topk.cli.presets`). `run` makes each run's request
(`tf_topk.cli.requests`) and evaluates it as its own run
(`tf_topk.cli.run.run_one`), writing the usual outputs under
`<workdir>/<run>/`, and then the leaderboard of all of them
(`tf_topk.cli.leaderboard`, written by
`tf_topk.cli.leaderboard_files`) into the workdir.

Runs whose resolved preprocessing is the same read one cache of decoded
images (`tf_topk.datasets.InputCache`, `config.data.cache`), kept in memory
within a budget or on disk under `<workdir>/cache`, removed at the end.

A run that fails (missing weights, out of memory, ...) is recorded with its
error and the others still run. A signal (SIGTERM / SIGINT) stops the
command after the current run saved its checkpoint, and leaves
`<workdir>/bulk_progress.json` (`complete: false`). The same command then
resumes: it reads the results of the runs already finished (their
results.json, written by the same run config) instead of evaluating them
again, and resumes the interrupted run from its checkpoint. A command that
ran to its end removes that file, so the next one evaluates afresh.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import os

import keras
import tensorflow as tf
from absl import logging
from ml_collections import config_dict

from tf_topk import checkpoints, datasets
from tf_topk import results as results_lib
from tf_topk.cli import leaderboard, leaderboard_files, presets, requests

# `run` below is this module's command; the module `run` evaluates one run
# (the two modules import each other, read only when called).
from tf_topk.cli import run as one_run
from tf_topk.models import building
from tf_topk.runs import files


@dataclasses.dataclass(frozen=True)
class BulkResult:
    """What a bulk command measured.

    Attributes:
        rows: the leaderboard rows, in run order.
        results: the `EvalResult` of every run that finished, by run.
        paths: the leaderboard files written ({} without a workdir).
    """

    rows: tuple[leaderboard.Row, ...]
    results: dict[str, results_lib.EvalResult]
    paths: dict[str, str]

    @property
    def failed(self) -> bool:
        """Whether any run failed."""
        return leaderboard.any_failed(self.rows)


def run(config: config_dict.ConfigDict, workdir: str | None) -> BulkResult:
    """Evaluates every run of a bulk config; writes the leaderboard.

    Each run is evaluated by `tf_topk.cli.run.run_one` on its request
    (`requests.from_config(presets.run_config(config, run))`).

    Args:
        config: a config with `config.runs` (see `presets.run_config`),
            its run-level values checked (`requests.check`).
        workdir: output folder (each run in `<workdir>/<run>`), existing;
            None writes nothing.

    Returns:
        The `BulkResult`.

    Raises:
        ValueError: `config.ensemble_weights` is set (it belongs to a run).
        checkpoints.Interrupted: a signal stopped the command (the current
            run saved its checkpoint; finished runs kept their results).
    """
    if config.ensemble_weights is not None:
        raise ValueError(
            "`config.ensemble_weights` does not apply to a bulk config: set "
            "it per ensemble run, e.g. --config.runs.run1.ensemble_weights="
            f"2,1. Received: {config.ensemble_weights!r}"
        )
    planned = run_requests(config)
    described = {
        name: leaderboard.describe_model(
            section.name, presets.run_overrides(section)
        )
        for name, section in config.runs.items()
    }
    inputs = _input_cache(config, workdir, planned)
    return run_planned(planned, described, config, workdir, inputs=inputs)


def run_planned(
    planned: dict[str, requests.RunRequest | ValueError],
    described: dict[str, str],
    config: config_dict.ConfigDict,
    workdir: str | None,
    *,
    inputs: datasets.InputCache | None = None,
    built: dict[str, list[building.BuiltModel]] | None = None,
) -> BulkResult:
    """Evaluates planned runs in order: failures recorded, resumable.

    The loop of `run`, also that of commands whose runs are not models
    but inputs (`tf_topk.cli.robustness`: one run per ImageNet-C cell or
    dataset, one model for all).

    Args:
        planned: {run: its request, or the `ValueError` of its config};
            a run's outputs go to `<workdir>/<run>` (a run name may hold
            "/": nested folders).
        described: {run: what it evaluates, for the log and the
            leaderboard}.
        config: the command's config; an interrupted command of the same
            config resumes (see the module docstring).
        workdir: output folder, existing; None writes nothing.
        inputs: the runs' shared cache of decoded images (closed here);
            None reads each input directly.
        built: {run: its model(s), built by the caller}: one model built
            once for several runs (their requests must be the runs'); the
            other runs build their own.

    Returns:
        The `BulkResult`.

    Raises:
        checkpoints.Interrupted: a signal stopped the command.
    """
    marker = (
        os.path.join(workdir, files.BULK_PROGRESS_FILE) if workdir else None
    )
    resuming = _interrupted_before(workdir, config)
    if marker:
        _start(marker, workdir, config)
    rows = []
    finished = {}
    # After an out-of-memory back-off, the next runs start at what fitted.
    fitted = None
    try:
        for name, request in planned.items():
            model = described[name]
            directory = os.path.join(workdir, name) if workdir else None
            result = _run_or_fail(
                name,
                model,
                request,
                directory,
                inputs,
                resuming=resuming,
                start_batch_size=fitted,
                built=(built or {}).get(name),
            )
            if isinstance(result, leaderboard.Row):
                rows.append(result)
            else:
                rows.append(leaderboard.row(name, model, result))
                finished[name] = result
                if result.oom_backoffs:
                    fitted = result.batch_size
    finally:
        if inputs is not None:
            inputs.close()
    paths = {}
    if workdir:
        paths = leaderboard_files.write(rows, workdir)
        tf.io.gfile.remove(marker)
    return BulkResult(rows=tuple(rows), results=finished, paths=paths)


def run_requests(
    config: config_dict.ConfigDict,
) -> dict[str, requests.RunRequest | ValueError]:
    """{run: its request}, or the `ValueError` of a run's invalid config
    (recorded as that run's failure; the other runs still run)."""
    planned = {}
    for name in config.runs:
        try:
            single = presets.run_config(config, name)
            planned[name] = requests.from_config(single)
        except ValueError as e:
            planned[name] = e
    return planned


def _input_cache(config, workdir, planned) -> datasets.InputCache:
    """The cache of decoded images the runs share (emptied first)."""
    cache_dir = os.path.join(workdir, files.CACHE_DIR) if workdir else None
    # A killed command leaves a cache (and its lockfile) behind.
    datasets.caching.clear(cache_dir)
    data = requests.data_from_config(config)
    budget = data.cache_budget_gb
    return datasets.InputCache(
        data.cache,
        directory=cache_dir,
        budget_bytes=None if budget is None else int(budget * 2**30),
        shared=shared_preprocessing(planned),
    )


def _start(marker: str, workdir: str, config) -> None:
    """Marks the command as running (not `complete`) in `marker`."""
    # A leaderboard of an earlier command would pass for this one's until
    # it ends; the runs' own results.json stay.
    for stale in (files.LEADERBOARD_CSV, files.LEADERBOARD_MARKDOWN):
        if tf.io.gfile.exists(os.path.join(workdir, stale)):
            tf.io.gfile.remove(os.path.join(workdir, stale))
    record = {"complete": False, "config": requests.to_json(config)}
    files.write_json(marker, record)


def _run_or_fail(
    name,
    model,
    request,
    directory,
    inputs,
    *,
    resuming,
    start_batch_size,
    built=None,
):
    """The run's result (read back when an interrupted command finished
    it), or its failed `leaderboard.Row`."""
    try:
        if isinstance(request, ValueError):
            raise request
        result = _finished(request, directory) if resuming else None
        if result is None:
            logging.info("Run %s: %s", name, model)
            result = one_run.run_one(
                request,
                directory,
                inputs=inputs,
                start_batch_size=start_batch_size,
                built=built,
            )
        return result
    except checkpoints.Interrupted:
        raise
    except Exception as e:  # Recorded; the other runs still run.
        # A bad argument's message says it all; others get the traceback.
        if isinstance(e, (ValueError, FileNotFoundError)):
            log = logging.error
        else:
            log = logging.exception
        log("Run %s (%s) failed: %s", name, model, e)
        return leaderboard.failed(name, model, e)
    finally:
        # Let the model go before the next one is built (a model built
        # once for every run stays).
        if built is None:
            keras.backend.clear_session()
        gc.collect()


def shared_preprocessing(planned) -> list | None:
    """The preprocessings more than one run reads (worth a cache).

    Args:
        planned: {run: its `RunRequest`} (`run_requests`); a run whose
            config is invalid (a `ValueError`) reads nothing.

    Returns:
        The `preprocessing.Options` tuples more than one run reads, or
        None when a run's is known only once its model is built.
    """
    runs = collections.defaultdict(list)
    for name, request in planned.items():
        if isinstance(request, ValueError):
            continue
        options = building.planned_options(
            request.models, overrides=request.preprocessing_overrides()
        )
        if options is None:
            return None
        runs[options].append(name)
    shared = [views for views, names in runs.items() if len(names) > 1]
    for views in shared:
        logging.info(
            "Runs %s share one preprocessing: their images are decoded once.",
            ", ".join(runs[views]),
        )
    return shared


def _interrupted_before(workdir: str | None, config) -> bool:
    """Whether an interrupted command of this config left its marker."""
    if not workdir or not config.eval.resume:
        return False
    record = files.read_bulk_progress(workdir)
    if record is None:
        return False
    same = record.get("config") == requests.to_json(config)
    if same:
        logging.info("Resuming the bulk command interrupted in %s.", workdir)
    else:
        logging.info(
            "%s is of another config; starting afresh.",
            os.path.join(workdir, files.BULK_PROGRESS_FILE),
        )
    return same


def _finished(
    request: requests.RunRequest, workdir: str | None
) -> results_lib.EvalResult | None:
    """The result of a run the interrupted command finished, when its
    results.json was written by the same run config."""
    if not workdir:
        return None
    path = os.path.join(workdir, files.RESULTS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    try:
        record = files.read_results(workdir)
        same = record.get("config") == request.config
        result = results_lib.from_record(record) if same else None
    except (ValueError, KeyError, TypeError) as e:
        logging.warning("Could not read %s (%s); running again.", path, e)
        return None
    if result is None:
        logging.info("%s is of another config; running again.", path)
    else:
        logging.info("Run already finished: reading %s.", path)
    return result
