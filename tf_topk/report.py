"""EvalResult -> results.json, per_class.csv, TensorBoard summaries, a table.

Every file is written atomically (a temporary file renamed into place), so
a crashed or pre-empted run never leaves a half-written result that looks
complete.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from absl import logging

from tf_topk import results

RESULTS_FILE = "results.json"
PER_CLASS_FILE = "per_class.csv"
TENSORBOARD_DIR = "tensorboard"


def write_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file renamed into place:
    a crashed run never leaves a half-written file that looks complete."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def _json_safe(value: Any) -> Any:
    """NaN/Inf become None: results.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def results_json(result: results.EvalResult) -> str:
    """The text of results.json: `result.to_dict()`, strict JSON."""
    return json.dumps(_json_safe(result.to_dict()), indent=2, sort_keys=False)


def per_class_csv(
    result: results.EvalResult,
    class_names: Sequence[str] | None = None,
    synsets: Sequence[str] | None = None,
) -> str:
    """Top-1 per true class: class_index, class_name, correct, count, top1,
    synset (class names in words, e.g. "tabby, tabby cat" for n02123045)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["class_index", "class_name", "correct", "count", "top1", "synset"]
    )
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


def write(
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


def _write_scalars(result: results.EvalResult, logdir: str, step: int):
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for k in result.ks:
            tf.summary.scalar(f"top{k}", result.accuracy(k), step=step)
            tf.summary.scalar(f"top{k}_error", 1 - result.accuracy(k), step)
        tf.summary.scalar("images_per_s", result.images_per_s, step=step)
    writer.close()


def format_table(
    result: results.EvalResult,
    *,
    title: str = "",
    published: dict[int, float] | None = None,
    class_names: Sequence[str] | None = None,
    num_worst: int = 5,
) -> str:
    """A short human-readable table of the result.

    With `class_names`, a last line names the `num_worst` classes of
    lowest top-1 (among classes with examples).
    """
    published = published or {}
    lines = [title] if title else []
    lines.append(
        f"{'k':>4}  {'accuracy':>9}  {'correct / total':>17}  "
        f"{'95% interval':>17}  {'published':>9}"
    )
    for k in result.ks:
        low, high = result.interval(k)
        reference = published.get(k)
        reference_text = f"{100 * reference:8.2f}%" if reference else ""
        lines.append(
            f"{k:>4}  {100 * result.accuracy(k):8.2f}%  "
            f"{result.correct[k]:>7} / {result.num_scored:<7}  "
            f"[{100 * low:6.2f}, {100 * high:6.2f}]%  {reference_text:>9}"
        )
    extras = []
    if result.nonfinite:
        extras.append(f"{result.nonfinite} non-finite predictions")
    if any(result.ties.values()):
        ties = ", ".join(f"top{k}: {n}" for k, n in result.ties.items() if n)
        extras.append(f"tie-decided ({result.ties_rule}): {ties}")
    if result.unlabeled:
        extras.append(f"{result.unlabeled} unlabeled examples left out")
    extras.append(
        f"{result.num_examples} images in {result.wall_time_s:.1f} s "
        f"({result.images_per_s:.1f} images/s after warm-up; input "
        f"{result.input_time_s:.1f} s, model {result.model_time_s:.1f} s)"
    )
    if result.input_images_per_s is not None:
        extras.append(
            f"input pipeline alone: {result.input_images_per_s:.1f} images/s"
            + (" (it limits this run)" if result.input_limited else "")
        )
    lines.extend(extras)
    top1 = result.per_class_top1
    if class_names and top1 and num_worst:
        ranked = sorted(
            (value, index)
            for index, value in enumerate(top1)
            if not math.isnan(value)
        )[:num_worst]
        lines.append(
            "worst classes (top-1): "
            + "; ".join(
                f"{class_names[i]} {result.per_class_correct[i]}/"
                f"{result.per_class_count[i]}"
                for _, i in ranked
                if i < len(class_names)
            )
        )
    return "\n".join(lines)
