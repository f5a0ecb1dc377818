"""Robustness commands: ImageNet-C with mCE, and the suite, one table.

`configs/imagenet_c.py` (`config.robustness.kind="imagenet_c"`) evaluates
one model on every (corruption, severity) cell under `config.data.path`
(`tf_topk.corruptions.find_cells`); `configs/robustness.py` (`"suite"`)
evaluates it on clean ImageNet, V2, ReaL, Sketch, A and R, the clean set
restricted to A's and R's 200 classes, and optionally ImageNet-C
(`config.robustness.imagenet_c`).

Every cell and dataset is a run of the bulk machinery
(`tf_topk.cli.bulk.run_planned`) under `<workdir>/<run>/` (a cell's run is
`<corruption>/<severity>`): a failed run is recorded and the others go on;
an interrupted command resumes, reading the runs it finished. The model of
the ImageNet-C cells is built once for all of them. Then
`tf_topk.runs.robustness` writes `<workdir>/robustness.json` and
`robustness.md`, and `tf_topk.runs.report` the page with the corruption x
severity heatmap, `report.html`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any

from absl import logging
from ml_collections import config_dict

from tf_topk import corruptions, datasets
from tf_topk.cli import bulk, leaderboard, requests, robustness_presets
from tf_topk.models import building
from tf_topk.runs import files
from tf_topk.runs import robustness as robustness_files

KINDS = ("imagenet_c", "suite")


@dataclasses.dataclass(frozen=True)
class RobustnessResult:
    """What a robustness command measured.

    Attributes:
        bulk: the runs' `bulk.BulkResult` (rows, results, leaderboard).
        record: robustness.json's content.
        paths: {"json", "markdown", "report"}: robustness.json,
            robustness.md and report.html ({} without a workdir).
    """

    bulk: bulk.BulkResult
    record: dict[str, Any]
    paths: dict[str, str]

    @property
    def failed(self) -> bool:
        """Whether any run failed."""
        return self.bulk.failed


def run(config: config_dict.ConfigDict, workdir: str | None):
    """Evaluates the cells and datasets of a robustness config.

    Args:
        config: configs/imagenet_c.py or configs/robustness.py.
        workdir: output folder, existing; None writes nothing.

    Returns:
        The `RobustnessResult`.

    Raises:
        ValueError: a bad config value or ImageNet-C tree.
        FileNotFoundError: a local copy or the ImageNet-C root is missing.
        datasets.DataUnavailableError: a tfds dataset cannot be prepared
            (offline without a local copy), before any evaluation.
        checkpoints.Interrupted: a signal stopped the command.
    """
    section = config.robustness
    if section.kind not in KINDS:
        raise ValueError(
            f"`config.robustness.kind` must be one of {list(KINDS)}. "
            f"Received: {section.kind!r}"
        )
    if config.runs:
        raise ValueError(
            "A robustness config evaluates one model. Received: "
            f"config.runs={list(config.runs)}"
        )
    requests.check(config)
    # Read before any run: a bad path must not cost the evaluation.
    clean_top1 = _clean_results_top1(section.clean_results)
    planned, described = {}, {}
    name = config.model.name
    if section.kind == "suite":
        for run_name, single in suite_configs(config).items():
            planned[run_name] = _request(single)
            described[run_name] = f"{name} on {run_name}"
    root = config.data.path if section.kind == "imagenet_c" else None
    root = root or section.get("imagenet_c")
    cells = corruptions.find_cells(root) if root else ()
    for index, cell in enumerate(cells):
        single = cell_config(config, cell)
        if index:
            # The input probe decodes its batches again: one cell's rate
            # says it for all (their images are alike).
            single.eval.input_probe_batches = 0
        planned[cell.name] = _request(single)
        described[cell.name] = f"{name} on {cell.name}"
    shared = _build_once([planned[cell.name] for cell in cells])
    outcome = bulk.run_planned(
        planned,
        described,
        config,
        workdir,
        built={cell.name: shared for cell in cells} if shared else None,
    )
    record = robustness_files.record(
        outcome.rows,
        cells=[(cell.corruption, cell.severity, cell.name) for cell in cells],
        clean_top1=_suite_clean_top1(outcome.rows)
        if clean_top1 is None
        else clean_top1,
        model=name,
    )
    paths = {}
    if workdir:
        paths = robustness_files.write(record, workdir)
        report = _report(workdir)
        if report:
            paths["report"] = report
    return RobustnessResult(bulk=outcome, record=record, paths=paths)


def _report(workdir: str) -> str | None:
    """report.html of the command (its heatmap); a failure only warns:
    robustness.json holds the counts."""
    # Lazy: matplotlib is not needed to evaluate.
    from tf_topk.runs import report

    try:
        return report.write(workdir)
    except Exception as e:  # An optional step after the runs.
        logging.warning("Could not write the report in %s: %s", workdir, e)
        return None


def _request(single: config_dict.ConfigDict):
    """A run's request, or the `ValueError` of its config (recorded)."""
    try:
        return requests.from_config(single)
    except ValueError as e:
        return e


def cell_config(
    config: config_dict.ConfigDict, cell: corruptions.Cell
) -> config_dict.ConfigDict:
    """The one-run config of an ImageNet-C cell (its folder as the data).

    The suite's cells get ImageNet-C's input protocol (the images fed as
    released); configs/imagenet_c.py sets it itself, overridable.
    """
    single = copy.deepcopy(config)
    with single.unlocked():
        single.data.source = "folder"
        single.data.path = cell.path
        single.data.classes = None
        single.eval.shortfall_tolerance = 1.0
        if config.robustness.kind == "suite":
            robustness_presets.as_released(single)
    return single


def _build_once(cell_requests) -> list[building.BuiltModel] | None:
    """The model of the ImageNet-C cells, built once (None: no cell, the
    config is invalid, each cell then recording the error, or a
    distribution strategy, under which each cell builds its own)."""
    valid = [r for r in cell_requests if not isinstance(r, ValueError)]
    if not valid:
        return None
    request = valid[0]
    if request.distribution != "none":
        # A model runs under the strategy it was built in, and each run
        # makes its own: each cell builds its model.
        logging.info(
            "distribution=%r: each cell builds its model.",
            request.distribution,
        )
        return None
    logging.info("Building %s once for %d cells.", request.name, len(valid))
    return [
        building.build(
            model,
            overrides=request.preprocessing_overrides(),
            data=request.data.build_arguments(),
        )
        for model in request.models
    ]


def suite_configs(
    config: config_dict.ConfigDict,
) -> dict[str, config_dict.ConfigDict]:
    """{run: its one-run config} of the suite's enabled datasets.

    A dataset scored on its own classes (`class_subset="labels_in_data"`,
    ImageNet-A / R) is followed by `<name>_clean200`: the clean set
    restricted to those classes, scored on them.

    Raises:
        datasets.DataUnavailableError: a tfds dataset without a local
            copy cannot be prepared (checked for all before any run).
        FileNotFoundError: a local copy's path does not exist.
    """
    # In the suite's order (a ConfigDict iterates its keys sorted).
    sections = config.robustness.datasets
    order = [n for n in robustness_presets.SUITE_DATASETS if n in sections]
    order += sorted(n for n in sections if n not in order)
    entries = {n: sections[n] for n in order if sections[n].enabled}
    for name, entry in entries.items():
        _check_available(config, name, entry)
    configs = {}
    for name, entry in entries.items():
        configs[name] = _dataset_config(config, name, entry)
        if entry.class_subset == building.LABELS_IN_DATA:
            if "clean" not in entries:
                raise ValueError(
                    f"`config.robustness.datasets.{name}` is measured "
                    "against the clean set restricted to its classes: "
                    "enable config.robustness.datasets.clean. Received: "
                    "clean.enabled=False"
                )
            classes = building.labels_in_data(
                requests.data_from_config(configs[name]).build_arguments()
            )
            clean = _dataset_config(config, "clean", entries["clean"])
            subset = ",".join(str(c) for c in classes)
            with clean.unlocked():
                clean.data.classes = subset
                clean.model.class_subset = subset
                clean.eval.shortfall_tolerance = 1.0
            configs[name + robustness_files.CLEAN200_SUFFIX] = clean
    return configs


def _source(entry) -> str:
    if entry.source:
        return entry.source
    return "folder" if entry.path else "tfds"


def _check_available(config, name: str, entry) -> None:
    """Fails fast, before any run, on data that cannot be read."""
    source = _source(entry)
    if source != "tfds":
        if not entry.path or not os.path.exists(entry.path):
            raise FileNotFoundError(
                f"`config.robustness.datasets.{name}.path` must be an "
                f"existing local copy for source {source!r}. Received: "
                f"{entry.path!r}"
            )
        return
    datasets.prepare_tfds(
        entry.name,
        data_dir=entry.data_dir,
        download=config.data.download,
        manual_dir=config.data.manual_dir if name == "clean" else None,
    )


def _dataset_config(config, name: str, entry) -> config_dict.ConfigDict:
    """The one-run config of one suite dataset."""
    single = copy.deepcopy(config)
    with single.unlocked():
        single.data.source = _source(entry)
        single.data.name = entry.name
        single.data.split = entry.split
        single.data.data_dir = entry.data_dir
        single.data.path = entry.path
        single.data.labels_file = entry.labels_file
        if name != "clean":
            # Published ILSVRC2012 figures do not apply to another set.
            single.eval.shortfall_tolerance = 1.0
        if entry.class_subset is not None:
            for section in _model_sections(single):
                section.class_subset = entry.class_subset
        single.robustness.dataset = name
    return single


def _model_sections(config) -> list:
    if config.members:
        return list(config.members.values())
    return [config.model]


def _clean_results_top1(workdir: str | None) -> float | None:
    """The top-1 of `config.robustness.clean_results` (a clean run's
    workdir), or None when it is not set.

    Raises:
        FileNotFoundError: the workdir has no results.json.
        ValueError: its results.json has no top-1.
    """
    if not workdir:
        return None
    top1 = files.read_results(workdir).get("top1")
    if top1 is None:
        raise ValueError(
            "`config.robustness.clean_results` must be a finished run's "
            f"workdir with a top-1. Received: {workdir!r}, whose "
            "results.json has none"
        )
    return float(top1)


def _suite_clean_top1(rows) -> float | None:
    """This command's clean top-1 (the suite's `clean` run), or None."""
    for row in rows:
        if row.run == "clean" and row.status == leaderboard.OK:
            return row.top1
    return None
