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

from tf_topk import imagenet
from tf_topk.datasets import records

DEFAULT_IMAGE_KEY = "image/encoded"
DEFAULT_LABEL_KEY = "image/class/label"


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
    counts = [
        _count_checked(file, label_key, label_offset, num_classes)
        for file in files
    ]
    num_examples = int(sum(counts))
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
        name_of=_record_namer(files, counts),
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
    file: str, label_key: str, label_offset: int, num_classes: int
) -> int:
    """The number of records of one shard, after checking their labels.

    One pass over labels only, to count exactly and check the label range
    before any image is decoded.
    """
    label_spec = {label_key: tf.io.FixedLenFeature([], tf.int64)}
    labels = np.concatenate(
        [np.zeros([0], np.int64)]
        + [
            batch[label_key]
            for batch in tf.data.TFRecordDataset(file)
            .batch(4096)
            .map(lambda serialized: tf.io.parse_example(serialized, label_spec))
            .as_numpy_iterator()
        ]
    )
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
    return len(labels)


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
