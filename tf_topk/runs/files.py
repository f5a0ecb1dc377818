"""A run's workdir: every file name, the atomic writer, one reader per file.

Every file and folder name the project writes in a workdir is spelled here
and nowhere else:

    <workdir>/results.json           RESULTS_FILE: the counts (written last)
    <workdir>/per_class.csv          PER_CLASS_FILE: top-1 per true class
    <workdir>/tensorboard/           TENSORBOARD_DIR: scalars and the plots
    <workdir>/predictions/           PREDICTIONS_DIR: per-example predictions
    <workdir>/progress.json          PROGRESS_FILE: counts so far (resume)
    <workdir>/checkpoint/            CHECKPOINT_DIR: the loop's saved state
    <checkpoint>/fingerprint.json    FINGERPRINT_FILE: what the run was
    <workdir>/report.html            REPORT_FILE: the HTML page
    <out>/comparison.json            COMPARISON_FILE: a paired comparison
    <bulk>/leaderboard.csv, .md      LEADERBOARD_CSV, LEADERBOARD_MARKDOWN
    <bulk>/bulk_progress.json        BULK_PROGRESS_FILE: a bulk command's
    <bulk>/cache/                    CACHE_DIR: decoded images on disk
    <workdir>/robustness.json, .md   ROBUSTNESS_JSON, ROBUSTNESS_MARKDOWN:
                                     ImageNet-C cells, mCE, the suite table

Every file is written atomically (`write_atomic`: a temporary file renamed
into place), so a crashed or pre-empted run never leaves a half-written
file that looks complete. `write_results` writes a finished run's
results.json, per_class.csv and TensorBoard scalars; `read_results` and
`read_per_class` read them back (the per-example predictions have their own
module, `tf_topk.runs.predictions`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
from absl import logging

from tf_topk import listeners, results

RESULTS_FILE = "results.json"
PER_CLASS_FILE = "per_class.csv"
TENSORBOARD_DIR = "tensorboard"
PREDICTIONS_DIR = "predictions"
PROGRESS_FILE = "progress.json"
CHECKPOINT_DIR = "checkpoint"
FINGERPRINT_FILE = "fingerprint.json"
REPORT_FILE = "report.html"
COMPARISON_FILE = "comparison.json"
LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_MARKDOWN = "leaderboard.md"
BULK_PROGRESS_FILE = "bulk_progress.json"
CACHE_DIR = "cache"
ROBUSTNESS_JSON = "robustness.json"
ROBUSTNESS_MARKDOWN = "robustness.md"
PER_CLASS_COLUMNS = (
    "class_index",
    "class_name",
    "correct",
    "count",
    "top1",
    "synset",
)


def write_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file renamed into place:
    a crashed run never leaves a half-written file that looks complete."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def _json_safe(value: Any) -> Any:
    """NaN/Inf become None: the files stay strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def json_text(record: Mapping[str, Any]) -> str:
    """`record` as indented strict JSON (NaN and infinities are null)."""
    return json.dumps(_json_safe(record), indent=2, allow_nan=False) + "\n"


def write_json(path: str, record: Mapping[str, Any]) -> None:
    """Writes `record` as JSON (`json_text`) atomically."""
    write_atomic(path, json_text(record))


def results_json(result: results.EvalResult) -> str:
    """The text of results.json: `result.to_dict()`, strict JSON."""
    return json_text(result.to_dict())


def per_class_csv(
    result: results.EvalResult,
    class_names: Sequence[str] | None = None,
    synsets: Sequence[str] | None = None,
) -> str:
    """Top-1 per true class: class_index, class_name, correct, count, top1,
    synset (class names in words, e.g. "tabby, tabby cat" for n02123045)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PER_CLASS_COLUMNS)
    if result.per_class_count is None:
        return buffer.getvalue()
    for index, (correct, count) in enumerate(
        zip(result.per_class_correct, result.per_class_count)
    ):
        name = (
            class_names[index]
            if class_names and index < len(class_names)
            else ""
        )
        top1 = f"{correct / count:.6f}" if count else ""
        synset = synsets[index] if synsets and index < len(synsets) else ""
        writer.writerow([index, name, correct, count, top1, synset])
    return buffer.getvalue()


def write_results(
    result: results.EvalResult,
    workdir: str,
    *,
    class_names: Sequence[str] | None = None,
    synsets: Sequence[str] | None = None,
    step: int = 0,
) -> dict[str, str]:
    """Writes results.json, per_class.csv and TensorBoard scalars.

    Args:
        result: what to write; its `metadata` goes into results.json.
        workdir: the output folder (created; local or any tf.io.gfile path).
        class_names: names for per_class.csv, in words where known.
        synsets: the WordNet synset of each class, for per_class.csv.
        step: the TensorBoard step (e.g. the epoch).

    Returns:
        The written paths by kind: "results", "per_class", "tensorboard".
    """
    if not workdir:
        raise ValueError(
            "Argument `workdir` must name an output folder. Received: "
            f"workdir={workdir!r}"
        )
    tf.io.gfile.makedirs(workdir)
    paths = {
        "results": os.path.join(workdir, RESULTS_FILE),
        "per_class": os.path.join(workdir, PER_CLASS_FILE),
        "tensorboard": os.path.join(workdir, TENSORBOARD_DIR),
    }
    # per_class.csv and the TensorBoard scalars are extras: a failure to
    # write them is logged, and results.json (the counts) is still written.
    try:
        write_atomic(
            paths["per_class"], per_class_csv(result, class_names, synsets)
        )
    except (OSError, tf.errors.OpError) as e:
        logging.warning("Could not write %s: %s", paths["per_class"], e)
    try:
        _write_scalars(result, paths["tensorboard"], step)
    except (OSError, tf.errors.OpError) as e:
        logging.warning("Could not write %s: %s", paths["tensorboard"], e)
    # Last: a results.json on disk means the run finished.
    write_atomic(paths["results"], results_json(result))
    return paths


class ResultsWriter(listeners.Listener):
    """The loop's listener that writes a finished run's files.

    At the end of the loop it writes results.json, per_class.csv and the
    TensorBoard scalars (`write_results`) into `workdir`, so a listener
    after it (a checkpoint that removes itself) knows the counts are safe.
    It runs on the chief only where the caller passes it on the chief
    only. A failure to write results.json raises: a checkpoint after it
    then keeps the counts for the next run.

    Args:
        workdir: the output folder.
        class_names: names for per_class.csv, in words where known.
        synsets: the WordNet synset of each class, for per_class.csv.

    Usage with `tf_topk.evaluate`:

    ```python
    result = tf_topk.evaluate(
        model, dataset, listeners=[files.ResultsWriter("/out/run")]
    )
    ```
    """

    def __init__(
        self,
        workdir: str,
        *,
        class_names: Sequence[str] | None = None,
        synsets: Sequence[str] | None = None,
    ):
        self.workdir = workdir
        self.class_names = class_names
        self.synsets = synsets
        self.paths: dict[str, str] = {}

    def on_end(self, result: results.EvalResult) -> None:
        self.paths = write_results(
            result,
            self.workdir,
            class_names=self.class_names,
            synsets=self.synsets,
        )
        logging.info("Wrote %s", self.paths["results"])


def _write_scalars(result: results.EvalResult, logdir: str, step: int):
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for k in result.ks:
            tf.summary.scalar(f"top{k}", result.accuracy(k), step=step)
            tf.summary.scalar(f"top{k}_error", 1 - result.accuracy(k), step)
        tf.summary.scalar("images_per_s", result.images_per_s, step=step)
    writer.close()


def _finished_runs(workdir: str) -> list[str]:
    """The sub-folders of `workdir` that hold a results.json (bulk runs)."""
    if not tf.io.gfile.isdir(workdir):
        return []
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(workdir)]
    return sorted(
        name
        for name in names
        if tf.io.gfile.exists(os.path.join(workdir, name, RESULTS_FILE))
    )


def read_results(workdir: str) -> dict[str, Any]:
    """The run's results.json as a dict.

    Raises:
        FileNotFoundError: no results.json in `workdir`; names the runs of
            a bulk command's workdir, whose results are one folder down.
        ValueError: results.json is not JSON (names the file).
    """
    path = os.path.join(workdir, RESULTS_FILE)
    if not tf.io.gfile.exists(path):
        runs = _finished_runs(workdir)
        if runs:
            raise FileNotFoundError(
                f"Argument `workdir` must hold a finished run's results.json."
                f" Received: workdir={workdir!r}, the workdir of a bulk "
                f"command (runs {runs}); pass one run's folder, e.g. "
                f"{os.path.join(workdir, runs[0])!r}"
            )
        raise FileNotFoundError(
            f"Argument `workdir` must hold a finished run's results.json. "
            f"Received: workdir={workdir!r} ({path} does not exist); run "
            "`tf-topk --workdir=...` first or pass that run's workdir"
        )
    return _json_object(path)


def _json_object(path: str) -> dict[str, Any]:
    """The JSON object in `path`.

    Raises:
        ValueError: the file is not JSON, or not an object (names it).
    """
    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    try:
        record = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(record, dict):
        raise ValueError(
            f"{path} must hold a JSON object. Received: {text[:200]!r}"
        )
    return record


def read_robustness(workdir: str) -> dict[str, Any] | None:
    """A workdir's robustness.json (`tf_topk.cli.robustness`); None when
    it has none.

    Raises:
        ValueError: the file is not a JSON object.
    """
    path = os.path.join(workdir, ROBUSTNESS_JSON)
    if not tf.io.gfile.exists(path):
        return None
    return _json_object(path)


def read_bulk_progress(workdir: str) -> dict[str, Any] | None:
    """The marker an interrupted bulk command left (`complete`, `config`);
    None when there is none, or it is unreadable (a command then starts
    afresh)."""
    path = os.path.join(workdir, BULK_PROGRESS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    try:
        return _json_object(path)
    except ValueError as e:
        logging.warning("Ignoring %s: %s", path, e)
        return None


@dataclasses.dataclass(frozen=True)
class ClassRow:
    """One row of per_class.csv (`top1` is None for a class with no example).

    Attributes:
        index: the class index.
        name: the class name ("" where unknown).
        correct: top-1 correct examples of this true class.
        count: examples of this true class.
        top1: correct / count, or None for count 0.
    """

    index: int
    name: str
    correct: int
    count: int
    top1: float | None

    @property
    def errors(self) -> int:
        """Examples of this class wrong at top-1."""
        return self.count - self.correct

    @property
    def interval95(self) -> tuple[float, float]:
        """The Wilson 95% interval of `top1` ((nan, nan) for no example)."""
        return results.wilson_interval(self.correct, self.count)


def read_per_class(workdir: str) -> list[ClassRow]:
    """per_class.csv's rows in class order; an empty list when it is absent.

    Raises:
        ValueError: a row lacks a column or holds a non-number (names the
            file and the row).
    """
    path = os.path.join(workdir, PER_CLASS_FILE)
    if not tf.io.gfile.exists(path):
        return []
    rows = []
    with tf.io.gfile.GFile(path) as f:
        for number, row in enumerate(csv.DictReader(f), start=2):
            try:
                rows.append(
                    ClassRow(
                        index=int(row["class_index"]),
                        name=row["class_name"],
                        correct=int(row["correct"]),
                        count=int(row["count"]),
                        top1=float(row["top1"]) if row["top1"] else None,
                    )
                )
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(
                    f"{path}:{number}: expected the columns "
                    f"{list(PER_CLASS_COLUMNS[:5])}. Received: {row}"
                ) from e
    return rows
