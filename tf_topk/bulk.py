"""Bulk runs: several models, one command, the same data decoded once.

`--config=configs/imagenet.py:mobilenet,resnet50,mobilenet` builds a config
with one model section per run (`config.runs.run0`, `run1`, ...; see
`tf_topk.presets`). `run` evaluates each as its own run, writing the usual
outputs under `<workdir>/<run>/`, and then the leaderboard of all of them
(`tf_topk.leaderboard`) into the workdir.

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
import json
import os
from collections.abc import Callable

import keras
import tensorflow as tf
from absl import logging
from ml_collections import config_dict

from tf_topk import (
    checkpoints,
    datasets,
    leaderboard,
    members,
    presets,
)
from tf_topk import results as results_lib
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


def run(
    config: config_dict.ConfigDict,
    workdir: str | None,
    *,
    run_one: Callable[..., results_lib.EvalResult],
) -> BulkResult:
    """Evaluates every run of a bulk config; writes the leaderboard.

    Args:
        config: a config with `config.runs` (see `presets.run_config`).
        workdir: output folder (each run in `<workdir>/<run>`); None
            writes nothing.
        run_one: evaluates one run: `run_one(run_config, run_workdir,
            inputs)` (`tf_topk.main`'s single-run path).

    Returns:
        The `BulkResult`.

    Raises:
        checkpoints.Interrupted: a signal stopped the command (the current
            run saved its checkpoint; finished runs kept their results).
    """
    if config.ensemble_weights is not None:
        raise ValueError(
            "`config.ensemble_weights` does not apply to a bulk config: set "
            "it per ensemble run, e.g. --config.runs.run1.ensemble_weights="
            f"2,1. Received: {config.ensemble_weights!r}"
        )
    singles = _run_configs(config)
    cache_dir = os.path.join(workdir, files.CACHE_DIR) if workdir else None
    # A killed command leaves a cache (and its lockfile) behind.
    datasets.caching.clear(cache_dir)
    budget = config.data.cache_budget_gb
    inputs = datasets.InputCache(
        config.data.cache,
        directory=cache_dir,
        budget_bytes=None if budget is None else int(budget * 2**30),
        shared=_shared_preprocessing(config, singles),
    )
    marker = (
        os.path.join(workdir, files.BULK_PROGRESS_FILE) if workdir else None
    )
    resuming = _interrupted_before(marker, config)
    if marker:
        # A leaderboard of an earlier command would pass for this one's
        # until it ends; the runs' own results.json stay.
        for stale in (files.LEADERBOARD_CSV, files.LEADERBOARD_MARKDOWN):
            if tf.io.gfile.exists(os.path.join(workdir, stale)):
                tf.io.gfile.remove(os.path.join(workdir, stale))
        files.write_json(marker, {"complete": False, "config": _json(config)})
    rows, finished = [], {}
    try:
        for name, section in config.runs.items():
            single = singles[name]
            model = leaderboard.describe_model(
                section.name, presets.run_overrides(section)
            )
            directory = os.path.join(workdir, name) if workdir else None
            try:
                result = _finished(single, directory) if resuming else None
                if result is None:
                    logging.info("Run %s: %s", name, model)
                    result = run_one(single, directory, inputs)
            except checkpoints.Interrupted:
                raise
            except Exception as e:  # Recorded; the other runs still run.
                # A bad argument's message says it all; others get the
                # traceback.
                log = (
                    logging.error
                    if isinstance(e, (ValueError, FileNotFoundError))
                    else logging.exception
                )
                log("Run %s (%s) failed: %s", name, model, e)
                rows.append(leaderboard.failed(name, model, e))
            else:
                rows.append(leaderboard.row(name, model, result))
                finished[name] = result
            finally:
                # Let the model go before the next one is built.
                keras.backend.clear_session()
                gc.collect()
    finally:
        inputs.close()
    paths = {}
    if workdir:
        paths = leaderboard.write(rows, workdir)
        tf.io.gfile.remove(marker)
    return BulkResult(rows=tuple(rows), results=finished, paths=paths)


def _run_configs(config: config_dict.ConfigDict) -> dict:
    """{run: its one-run config} (`presets.run_config`)."""
    return {name: presets.run_config(config, name) for name in config.runs}


def _shared_preprocessing(config: config_dict.ConfigDict, singles=None):
    """The preprocessings more than one run reads (worth a cache), or None
    when a run's is known only once its model is built."""
    runs = collections.defaultdict(list)
    for name, single in (singles or _run_configs(config)).items():
        sections = presets.model_sections(single).values()
        planned = members.planned_options(
            sections, config.preprocess, config.data
        )
        if planned is None:
            return None
        runs[planned].append(name)
    shared = [views for views, names in runs.items() if len(names) > 1]
    for views in shared:
        logging.info(
            "Runs %s share one preprocessing: their images are decoded once.",
            ", ".join(runs[views]),
        )
    return shared


def _json(config: config_dict.ConfigDict):
    return json.loads(config.to_json_best_effort())


def _interrupted_before(marker: str | None, config) -> bool:
    """Whether an interrupted command of this config left its marker."""
    if not marker or not config.eval.resume:
        return False
    if not tf.io.gfile.exists(marker):
        return False
    try:
        with tf.io.gfile.GFile(marker) as f:
            record = json.load(f)
    except ValueError:
        return False
    same = record.get("config") == _json(config)
    if same:
        logging.info("Resuming the bulk command interrupted in %s.", marker)
    else:
        logging.info("%s is of another config; starting afresh.", marker)
    return same


def _finished(
    config: config_dict.ConfigDict, workdir: str | None
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
        same = record.get("config") == _json(config)
        result = results_lib.from_record(record) if same else None
    except (ValueError, KeyError, TypeError) as e:
        logging.warning("Could not read %s (%s); running again.", path, e)
        return None
    if result is None:
        logging.info("%s is of another config; running again.", path)
    else:
        logging.info("Run already finished: reading %s.", path)
    return result
