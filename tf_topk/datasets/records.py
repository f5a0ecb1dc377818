"""Encoded examples of one source, before decoding, and what every source
shares: path checks, the record of what was read, the corrupt-image scan and
the per-worker shard.

Each source module (`files`, `folder`, `tfrecord`, `tfds`) turns its input
into `Records`: a dataset of `(encoded image, label)` pairs, the exact
count, and a function naming example i for error messages.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tf_topk import distribute, preprocessing

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What `build` read, for logs and results files.

    Attributes:
        source: one of `SOURCES`.
        location: the path, glob or `name:split` read.
        num_examples: examples the dataset yields (skipped ones excluded).
        label_mapping: how labels were obtained, e.g. `"imagenet_synsets"`
            (standard 1000-class indices), `"sorted_names"`, `"indices"`.
        class_names: class name of each label index where the source names
            classes (folder names, tfds class names), else empty.
        skipped: corrupt or unreadable files left out (`skip_corrupt=True`).
        multi_label: labels are multi-hot rows (ImageNet-ReaL).
        cache: where `build` keeps the decoded images after the first
            pass: "memory", "disk" or "none" (see `datasets.caching`).
    """

    source: str
    location: str
    num_examples: int
    label_mapping: str
    class_names: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    multi_label: bool = False
    cache: str = "none"

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)


@dataclasses.dataclass(frozen=True)
class Records:
    """Encoded images and labels of one source, before decoding.

    Attributes:
        dataset: `(encoded bytes, label)` pairs in source order.
        num_examples: the exact number of pairs.
        name_of: int64 index tensor -> string tensor naming the example
            (a file, or a shard and record), for errors.
        info: what was read.
        files: image paths, for sources read file by file (files,
            folder): a shard or a skip pass then rebuilds the dataset from
            the paths it keeps and never reads the others. None otherwise.
        labels: the labels of `files`.
    """

    dataset: tf.data.Dataset
    num_examples: int
    name_of: Callable[[tf.Tensor], tf.Tensor]
    info: SourceInfo
    files: tuple[str, ...] | None = None
    labels: tuple[int, ...] | None = None


def check_exists(path, argument: str) -> str:
    """`path` as a string; raises unless it is given and exists."""
    if path is None:
        raise ValueError(
            f"Argument `{argument}` is required for this source. "
            f"Received: {argument}=None"
        )
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"Argument `{argument}` names a path that does not exist. "
            f"Received: {argument}={path!r}"
        )
    return path


def check_dir(path, argument: str) -> str:
    """`path` as a string; raises unless it is an existing directory."""
    path = check_exists(path, argument)
    if not tf.io.gfile.isdir(path):
        raise ValueError(
            f"Argument `{argument}` must be a directory. "
            f"Received: {argument}={path!r}"
        )
    return path


def is_image(name: str) -> bool:
    """Whether a file name has one of `IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def from_files(
    files: Sequence[str], labels: Sequence[int], info: SourceInfo
) -> Records:
    """Records that read `files` (with their `labels`) in the given order."""
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files, tf.string), tf.constant(labels, tf.int32))
    ).map(
        lambda file, label: (tf.io.read_file(file), label),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    table = tf.constant(list(files), dtype=tf.string)
    return Records(
        dataset=dataset,
        num_examples=len(files),
        name_of=lambda index: tf.gather(table, index),
        info=info,
        files=tuple(files),
        labels=tuple(int(label) for label in labels),
    )


def scan_corrupt(records: Records) -> np.ndarray:
    """Indices of the examples whose image does not decode."""

    def decodes(index, example):
        encoded, _ = example
        image = preprocessing.decode_image(encoded)
        return index, tf.shape(image)[0]

    decoded = (
        records.dataset.enumerate()
        .map(decodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
        .map(lambda index, _: index)
        .batch(4096)
    )
    ok = np.zeros(records.num_examples, dtype=bool)
    for batch in decoded.as_numpy_iterator():
        ok[batch] = True
    return np.flatnonzero(~ok)


def without(records: Records, bad: np.ndarray) -> Records:
    """The records minus the examples at indices `bad`, listed as skipped."""
    keep = np.ones(records.num_examples, dtype=bool)
    keep[bad] = False
    skipped = tuple(
        s.decode() for s in records.name_of(tf.constant(bad, tf.int64)).numpy()
    )
    return _kept(records, keep, skipped=skipped)


def restricted(records: Records, classes: Sequence[int]) -> Records:
    """Only the examples labelled with one of `classes`, in source order.

    How a clean baseline is restricted to the classes of another set (the
    200 of ImageNet-A or ImageNet-R): the labels are read, no image is
    decoded, and the count is that of the examples kept.

    Raises:
        ValueError: `classes` is empty, the labels are multi-hot, or no
            example is of those classes.
    """
    wanted = sorted({int(c) for c in classes})
    if not wanted:
        raise ValueError(
            "Argument `classes` must list at least one class index. "
            f"Received: classes={list(classes)!r}"
        )
    if records.labels is not None:
        labels = np.asarray(records.labels, np.int64)
    else:
        labels = np.asarray(
            list(records.dataset.map(lambda _, label: label)),
            dtype=np.int64,
        )
    if labels.ndim != 1:
        raise ValueError(
            "Argument `classes` applies to single-label data only. Received: "
            f"labels of shape {list(labels.shape)} from "
            f"{records.info.location!r}"
        )
    keep = np.isin(labels, wanted)
    if not keep.any():
        raise ValueError(
            f"Argument `classes` must name classes of the data at "
            f"{records.info.location!r}. Received: {len(wanted)} classes "
            f"({wanted[:5]}...), none of which the data holds."
        )
    return _kept(records, keep, skipped=records.info.skipped)


def _kept(records: Records, keep: np.ndarray, *, skipped) -> Records:
    """The records at the True entries of `keep`, in order."""
    kept = np.flatnonzero(keep)
    info = dataclasses.replace(
        records.info, num_examples=len(kept), skipped=tuple(skipped)
    )
    if records.files is not None:
        return from_files(
            [records.files[i] for i in kept],
            [records.labels[i] for i in kept],
            info,
        )
    keep_table = tf.constant(keep)
    dataset = (
        records.dataset.enumerate()
        .filter(lambda index, _: tf.gather(keep_table, index))
        .map(lambda _, example: example)
    )
    kept_table = tf.constant(kept, tf.int64)
    original = records.name_of
    return dataclasses.replace(
        records,
        dataset=dataset,
        num_examples=len(kept),
        name_of=lambda index: original(tf.gather(kept_table, index)),
        info=info,
    )


def shard(records: Records, num_shards: int, index: int) -> Records:
    """Examples index, index + num_shards, ... of `records` (info unchanged).

    File-by-file sources read only the shard's files; the others read every
    record (cheap) and keep the shard's before any decoding.
    """
    if num_shards == 1:
        return records
    if records.files is not None:
        return from_files(
            records.files[index::num_shards],
            records.labels[index::num_shards],
            records.info,
        )
    original = records.name_of
    return dataclasses.replace(
        records,
        dataset=records.dataset.shard(num_shards, index),
        num_examples=distribute.shard_size(
            records.num_examples, num_shards, index
        ),
        name_of=lambda i: original(i * num_shards + index),
        files=None,
        labels=None,
    )
