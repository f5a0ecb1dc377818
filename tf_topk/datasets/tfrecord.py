"""The `tfrecord` source: shards of `tf.train.Example` in the ImageNet layout.

A glob (or folder) of shards read in sorted order; by default the encoded
image is `image/encoded` and the label `image/class/label`, 1-based (as the
TensorFlow ImageNet converters write it).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import message

from tf_topk import imagenet
from tf_topk.datasets import records

DEFAULT_IMAGE_KEY = "image/encoded"
DEFAULT_LABEL_KEY = "image/class/label"
# Where the ImageNet converters store each image's file name: the example
# ids of predictions when every record has one.
FILENAME_KEY = "image/filename"


def read(
    path,
    *,
    image_key: str,
    label_key: str,
    label_offset: int,
    num_classes: int,
) -> records.Records:
    """The examples of the TFRecord shards `path` names.

    Args:
        path: a glob of shards, or a folder of them.
        image_key: the feature holding the encoded image.
        label_key: the int64 label feature.
        label_offset: subtracted from the stored labels.
        num_classes: labels must lie in [0, num_classes) after the offset.

    Returns:
        The records, shard by shard in sorted order.
    """
    files = _shard_files(path)
    checked = [
        _count_checked(file, image_key, label_key, label_offset, num_classes)
        for file in files
    ]
    counts = [len(names) for names in checked]
    num_examples = int(sum(counts))
    stored = [name for names in checked for name in names]
    # Records that all store their file name are named by it (stable ids).
    if stored and all(stored):
        name_of = _stored_namer(stored)
    else:
        name_of = _record_namer(files, counts)
    spec = {
        image_key: tf.io.FixedLenFeature([], tf.string),
        label_key: tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        label = tf.cast(example[label_key] - label_offset, tf.int32)
        return example[image_key], label

    dataset = tf.data.TFRecordDataset(files, buffer_size=8 << 20).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    logging.info(
        "TFRecords %s: %d examples in %d shards, label offset %d.",
        path,
        num_examples,
        len(files),
        label_offset,
    )
    return records.Records(
        dataset=dataset,
        num_examples=num_examples,
        name_of=name_of,
        info=records.SourceInfo(
            source="tfrecord",
            location=os.fspath(path),
            num_examples=num_examples,
            label_mapping="indices",
        ),
    )


def _shard_files(path) -> list[str]:
    """The sorted shard files of a glob or folder."""
    if path is None:
        raise ValueError(
            "Argument `path` is required for source='tfrecord' (a glob of "
            "shards or a folder). Received: path=None"
        )
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        files = [
            os.path.join(path, name)
            for name in tf.io.gfile.listdir(path)
            if not name.startswith(".")
            and not tf.io.gfile.isdir(os.path.join(path, name))
        ]
    else:
        files = tf.io.gfile.glob(path)
    if not files:
        raise FileNotFoundError(
            "Argument `path` matches no TFRecord files. "
            f"Received: path={path!r}"
        )
    return sorted(files)


def _count_checked(
    file: str,
    image_key: str,
    label_key: str,
    label_offset: int,
    num_classes: int,
) -> list[str]:
    """Each record's stored file name ("" if none), after checking them.

    One pass parses every record's image bytes (not decoded), label and
    `image/filename`, to count exactly and check the features and the label
    range before any image is decoded. Raises a `ValueError` naming the
    shard and record.
    """
    spec = {
        image_key: tf.io.FixedLenFeature([], tf.string),
        label_key: tf.io.FixedLenFeature([], tf.int64),
        FILENAME_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }

    def parse(serialized):
        example = tf.io.parse_example(serialized, spec)
        return example[label_key], example[FILENAME_KEY]

    batches = tf.data.TFRecordDataset(file).batch(4096).map(parse)
    parts, names = [np.zeros([0], np.int64)], []
    try:
        for labels, stored in batches.as_numpy_iterator():
            parts.append(labels)
            names.extend(name.decode("utf-8", "replace") for name in stored)
    except tf.errors.DataLossError as e:
        readable = _readable_records(file)
        raise ValueError(
            f"TFRecord shard {file!r} is truncated or corrupt: only its "
            f"first {readable} records read ({e.message}). "
            "Copy the shard again, or leave it out of `path`."
        ) from e
    except tf.errors.InvalidArgumentError as e:
        found = _first_bad_record(file, image_key, label_key)
        record = (
            f"Record {found[0]} of TFRecord shard {file!r} {found[1]}"
            if found
            else f"A record of TFRecord shard {file!r} fails ({e.message})"
        )
        raise ValueError(
            f"{record}. Expected a tf.train.Example with one encoded image "
            f"(bytes) at image_key={image_key!r} and one int64 label at "
            f"label_key={label_key!r}: pass the keys the shard uses, or "
            "rewrite it."
        ) from e
    labels = np.concatenate(parts)
    shifted = labels - label_offset
    bad = np.flatnonzero((shifted < 0) | (shifted >= num_classes))
    if bad.size:
        record = int(bad[0])
        imagenet.check_label(
            int(shifted[record]),
            raw=int(labels[record]),
            num_classes=num_classes,
            where=f"{file!r} record {record}",
        )
    return names


def _readable_records(file: str) -> int:
    """How many records of a damaged shard read before the damage."""
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(file):
            count += 1
    except tf.errors.DataLossError:
        pass
    return count


def _first_bad_record(
    file: str, image_key: str, label_key: str
) -> tuple[int, str] | None:
    """(index, what is wrong) of the first record the parser refuses.

    Only called after a parse failed, to name the record; None when no
    record shows a problem here (the parser's own message is used then).
    """
    for index, serialized in enumerate(
        tf.data.TFRecordDataset(file).as_numpy_iterator()
    ):
        problem = _record_problem(serialized, image_key, label_key)
        if problem:
            return index, problem
    return None


def _record_problem(
    serialized: bytes, image_key: str, label_key: str
) -> str | None:
    """Why a record is not an ImageNet-layout example, or None if it is."""
    try:
        example = tf.train.Example.FromString(serialized)
    except message.DecodeError:
        return "is not a serialized tf.train.Example"
    features = example.features.feature
    for key, kind in ((image_key, "bytes_list"), (label_key, "int64_list")):
        if key not in features:
            found = {
                k: features[k].WhichOneof("kind") for k in sorted(features)
            }
            return f"has no feature {key!r} (its features: {found})"
        stored = features[key].WhichOneof("kind")
        if stored is None:
            return f"holds no values in feature {key!r}, not 1"
        if stored != kind:
            return f"stores feature {key!r} as a {stored}, not a {kind}"
        num_values = len(getattr(features[key], kind).value)
        if num_values != 1:
            return f"holds {num_values} values in feature {key!r}, not 1"
    return None


def _stored_namer(stored: list[str]):
    """Example index -> the file name its record stores (a string tensor)."""
    table = tf.constant(stored, tf.string)

    def name_of(index):
        return tf.gather(table, index)

    return name_of


def _record_namer(files: list[str], counts: list[int]):
    """Example index -> "<shard file> record <i>" (a string tensor)."""
    starts = tf.constant(np.cumsum([0] + counts[:-1]), tf.int64)
    ends = tf.constant(np.cumsum(counts), tf.int64)
    file_table = tf.constant(files, tf.string)

    def name_of(index):
        shard = tf.searchsorted(ends, [index], side="right")[0]
        return tf.strings.join(
            [
                tf.gather(file_table, shard),
                " record ",
                tf.strings.as_string(index - tf.gather(starts, shard)),
            ]
        )

    return name_of
