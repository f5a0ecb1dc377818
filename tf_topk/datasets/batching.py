"""Decoding and batching: `Records` -> batches of `(images, labels)`.

Every example is yielded exactly once, in order, in batches whose last one
is partial. A failed decode never shortens the dataset silently: the
pipeline stops with an error naming the file or record.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import tensorflow as tf

from tf_topk import preprocessing
from tf_topk.datasets import caching, records


def batch(
    examples: records.Records,
    options: Sequence[preprocessing.Options],
    *,
    as_tuple: bool,
    batch_size: int,
    with_ids: bool = False,
    start: int = 0,
    cache: str = "none",
    cache_file: str | None = None,
) -> tf.data.Dataset:
    """Decodes, preprocesses and batches `examples`.

    Args:
        examples: the encoded examples.
        options: one `preprocessing.Options` per image view.
        as_tuple: yield images as a tuple (one batch per Options) rather
            than the one batch of `options[0]`.
        batch_size: examples per batch; the last batch is partial.
        with_ids: add each example's `example_id` as a third element.
        start: leave out the first `start` examples before decoding (a
            resumed evaluation counted them already).
        cache: keep the checked, preprocessed examples after the first full
            pass: `"memory"`, `"disk"` (files starting with `cache_file`)
            or `"none"` (see `caching`).
        cache_file: the disk cache's file prefix.

    Returns:
        The deterministic dataset of `(images, labels)` batches. Iterating
        it raises `tf.errors.InvalidArgumentError` naming the first image
        that does not decode.
    """

    def decode(index, example):
        encoded, label = example
        images = tuple(
            preprocessing.decode_eval_image(encoded, o) for o in options
        )
        return index, images, label

    location = examples.info.location

    def unindex(index, images, label):
        images = images if as_tuple else images[0]
        if with_ids:
            return images, label, example_id(examples.name_of(index), location)
        return images, label

    dataset = (
        examples.dataset.skip(start)
        .enumerate(start=start)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
    )
    if examples.num_examples <= start:
        # An empty shard (fewer examples than shards): nothing to check.
        return dataset.take(0).map(unindex).batch(batch_size)
    checked = _check_no_gaps(
        dataset, examples.num_examples, examples.name_of, start
    )
    num_batches = -(-(examples.num_examples - start) // batch_size)
    dataset = (
        caching.apply(checked, cache, cache_file)
        .map(unindex, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=False)
        # Known to Keras and to the cache's size estimate; exact by the
        # gap check above.
        .apply(tf.data.experimental.assert_cardinality(num_batches))
        .prefetch(tf.data.AUTOTUNE)
    )
    deterministic = tf.data.Options()
    deterministic.deterministic = True
    return dataset.with_options(deterministic)


def example_id(name: tf.Tensor, location: str) -> tf.Tensor:
    """The stable id of an example from the name `Records.name_of` gives.

    Files and folders: the path relative to the source folder
    (`n01440764/x.JPEG`); TFRecords: `<shard file> record <i>` relative to
    the glob's folder, or the records' own `image/filename`; tfds: tfds'
    own id, `<shard file>__<record>`.
    """
    # A folder, or the folder of a glob of shards ("" for tfds).
    folder = (
        location if tf.io.gfile.isdir(location) else os.path.dirname(location)
    )
    folder = folder.rstrip("/") + "/"
    return tf.strings.regex_replace(name, "^" + re.escape(folder), "")


def _check_no_gaps(
    dataset: tf.data.Dataset, num_examples: int, name_of, start: int = 0
) -> tf.data.Dataset:
    """`(index, images, label)` elements, failing at the first missing index.

    A failed decode drops its element (`ignore_errors`); a sentinel after
    the last example lets the check see a gap anywhere, the end included,
    and name the file instead of silently evaluating fewer examples.
    """
    spec = dataset.element_spec
    sentinel = tf.data.Dataset.from_tensors(
        (
            tf.constant(num_examples, tf.int64),
            tuple(tf.zeros(s.shape, s.dtype) for s in spec[1]),
            tf.zeros(spec[2].shape, spec[2].dtype),
        )
    )

    def check(expected, element):
        index = element[0]
        message = tf.strings.join(
            [
                "Could not read or decode image ",
                name_of(tf.minimum(expected, num_examples - 1)),
                " (corrupt, truncated or not an image). Fix or remove it, "
                "or pass skip_corrupt=True to leave it out (skipped files "
                "are listed and counted).",
            ]
        )
        with tf.control_dependencies(
            [tf.debugging.Assert(tf.equal(index, expected), [message])]
        ):
            return index + 1, (tf.identity(index), element[1], element[2])

    return (
        dataset.concatenate(sentinel)
        .scan(tf.constant(start, tf.int64), check)
        .filter(lambda index, images, label: index < num_examples)
    )
