"""Tests of `datasets.build` across sources: arguments, preprocessing,
corrupt images and per-worker shards (the source modules have their own
datasets_<source>_test.py)."""

import os
import re

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from datasets_testcase import (
    BATCH_SIZE,
    IMAGE_SIZE,
    LABELS,
    NUM_CLASSES,
    NUM_EXAMPLES,
    PREDICTED,
    DataTestCase,
    build,
    collect,
)

from tf_topk import datasets, preprocessing, testing


class PreprocessTest(DataTestCase):
    def setUp(self):
        super().setUp()
        _, self.labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        self.images = os.path.join(self.dir, "images")

    def test_ten_crops(self):
        dataset, num_examples = build(
            "files",
            path=self.images,
            labels_file=self.labels_file,
            preprocess=preprocessing.Options(
                image_size=IMAGE_SIZE, num_crops=10
            ),
        )
        self.assertEqual(
            dataset.element_spec[0].shape.as_list(),
            [None, 10, IMAGE_SIZE, IMAGE_SIZE, 3],
        )
        model = testing.oracle_model(NUM_CLASSES)
        correct = 0
        for images, labels in dataset:
            # Average the crops' predictions per image, as the engine does.
            logits = tf.reduce_mean(
                tf.reshape(
                    model(tf.reshape(images, [-1, IMAGE_SIZE, IMAGE_SIZE, 3])),
                    [-1, 10, NUM_CLASSES],
                ),
                axis=1,
            )
            correct += int(
                tf.reduce_sum(
                    tf.cast(tf.math.in_top_k(labels, logits, 1), "int32")
                )
            )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        self.assertEqual(correct, 7)

    def test_sequence_of_options_gives_a_tuple(self):
        options = (
            preprocessing.Options(image_size=8),
            preprocessing.Options(
                image_size=6, crop_mode="crop_then_resize", num_crops=10
            ),
        )
        dataset, num_examples = build(
            "files",
            path=self.images,
            labels_file=self.labels_file,
            preprocess=options,
        )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        images_spec, _ = dataset.element_spec
        self.assertEqual(
            [s.shape.as_list() for s in images_spec],
            [[None, 8, 8, 3], [None, 10, 6, 6, 3]],
        )
        (small, crops), labels = next(iter(dataset))
        self.assertAllEqual(labels, LABELS[:BATCH_SIZE])
        painted = [testing.class_intensity(c, 5) for c in PREDICTED[:4]]
        self.assertAllClose(
            tf.reduce_mean(small, axis=[1, 2, 3]), painted, atol=1.0
        )
        self.assertAllClose(
            tf.reduce_mean(crops, axis=[1, 2, 3, 4]), painted, atol=1.0
        )

    def test_no_preprocess_means_the_default_options(self):
        dataset, _ = build(
            "files",
            path=self.images,
            labels_file=self.labels_file,
            preprocess=None,
        )
        size = preprocessing.Options().image_size
        self.assertEqual(
            dataset.element_spec[0].shape.as_list(), [None, size, size, 3]
        )

    @parameterized.named_parameters(
        ("dict", {"image_size": 8}),
        ("empty", ()),
        ("string", "bilinear"),
        ("mixed", (preprocessing.Options(), {"image_size": 8})),
    )
    def test_bad_preprocess(self, preprocess):
        with self.assertRaisesMessage(
            TypeError,
            "Argument `preprocess` must be a `preprocessing.Options` or a "
            "non-empty sequence of them. "
            f"Received: preprocess={preprocess!r}",
        ):
            build(
                "files",
                path=self.images,
                labels_file=self.labels_file,
                preprocess=preprocess,
            )

    def test_flat_preprocessing_arguments_are_gone(self):
        # One options object: `image_size=` and friends are not arguments.
        with self.assertRaisesRegex(TypeError, "image_size"):
            datasets.build("files", path=self.images, image_size=8)


class ArgumentsTest(DataTestCase):
    @parameterized.named_parameters(
        (
            "source",
            {"source": "tfrecords"},
            ValueError,
            "Argument `source` must be one of ['files', 'folder', 'tfds', "
            "'tfrecord']. Received: source='tfrecords'",
        ),
        (
            "batch_size",
            {"batch_size": 0},
            ValueError,
            "Argument `batch_size` must be a positive integer. "
            "Received: batch_size=0",
        ),
        (
            "num_classes",
            {"num_classes": 1.5},
            ValueError,
            "Argument `num_classes` must be a positive integer. "
            "Received: num_classes=1.5",
        ),
        (
            "label_offset",
            {"label_offset": "1"},
            TypeError,
            "Argument `label_offset` must be an integer or None. "
            "Received: label_offset='1'",
        ),
        (
            "skip_corrupt",
            {"skip_corrupt": "yes"},
            TypeError,
            "Argument `skip_corrupt` must be a bool. "
            "Received: skip_corrupt='yes'",
        ),
        (
            "with_info",
            {"with_info": 1},
            TypeError,
            "Argument `with_info` must be a bool. Received: with_info=1",
        ),
        (
            "zero_shards",
            {"num_shards": 0},
            ValueError,
            "Argument `num_shards` must be a positive integer. "
            "Received: num_shards=0",
        ),
        (
            "shard_index_too_big",
            {"num_shards": 2, "shard_index": 2},
            ValueError,
            "Argument `shard_index` must be an integer in [0, 2) "
            "(num_shards=2). Received: shard_index=2",
        ),
        (
            "negative_shard_index",
            {"num_shards": 2, "shard_index": -1},
            ValueError,
            "Argument `shard_index` must be an integer in [0, 2) "
            "(num_shards=2). Received: shard_index=-1",
        ),
        (
            "path",
            {"source": "folder", "path": None},
            ValueError,
            "Argument `path` is required for this source. Received: path=None",
        ),
    )
    def test_invalid(self, kwargs, error, message):
        kwargs = {"source": "files", "path": self.dir, **kwargs}
        with self.assertRaisesMessage(error, message):
            datasets.build(**kwargs)


class CorruptTest(DataTestCase):
    def write(self, corrupt):
        paths, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        for i in corrupt:
            with open(paths[i], "r+b") as f:
                f.truncate(20 if i % 2 else 0)
        return paths, labels_file

    @parameterized.named_parameters(("middle", 5), ("last", 9), ("first", 0))
    def test_error_names_the_file(self, index):
        paths, labels_file = self.write([index])
        dataset, num_examples = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
        )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            re.escape(
                f"Could not read or decode image {paths[index]} (corrupt, "
                "truncated or not an image). Fix or remove it, or pass "
                "skip_corrupt=True"
            ),
        ):
            for _ in dataset:
                pass

    def test_error_names_the_record(self):
        shards = testing.write_tfrecords(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        # Rewrite shard 1 with its second record's image replaced by junk.
        records = list(tf.data.TFRecordDataset(shards[1]).as_numpy_iterator())
        example = tf.train.Example.FromString(records[1])
        example.features.feature["image/encoded"].bytes_list.value[0] = b"x"
        records[1] = example.SerializeToString()
        with tf.io.TFRecordWriter(shards[1]) as writer:
            for record in records:
                writer.write(record)
        dataset, _ = build("tfrecord", path=self.dir)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            re.escape(f"Could not read or decode image {shards[1]} record 1 "),
        ):
            for _ in dataset:
                pass

    def test_skip_corrupt_lists_and_counts(self):
        paths, labels_file = self.write([2, 9])
        with self.assertLogs(logger="absl", level="WARNING") as logs:
            dataset, info = build(
                "files",
                path=os.path.join(self.dir, "images"),
                labels_file=labels_file,
                skip_corrupt=True,
                with_info=True,
            )
        self.assertEqual(info.skipped, (paths[2], paths[9]))
        self.assertEqual(info.num_skipped, 2)
        output = "\n".join(logs.output)
        self.assertIn(f"Skipped corrupt image {paths[2]}", output)
        self.assertIn("Skipped 2 corrupt images of 10; evaluating 8.", output)
        keep = [i for i in range(NUM_EXAMPLES) if i not in (2, 9)]
        # Example 2 was a correct one: 6 of the 8 left are right.
        self.assertExact(
            dataset, info.num_examples, labels=LABELS[keep], correct=6
        )
        _, num_examples = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
            skip_corrupt=True,
        )
        self.assertEqual(num_examples, 8)

    def test_skip_corrupt_records(self):
        shards = testing.write_tfrecords(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        records = list(tf.data.TFRecordDataset(shards[1]).as_numpy_iterator())
        example = tf.train.Example.FromString(records[0])
        example.features.feature["image/encoded"].bytes_list.value[0] = b"x"
        records[0] = example.SerializeToString()
        with tf.io.TFRecordWriter(shards[1]) as writer:
            for record in records:
                writer.write(record)
        # Shard 0 holds examples 0..2 (np.linspace bounds), so shard 1's
        # first record is example 3.
        dataset, info = build(
            "tfrecord", path=self.dir, skip_corrupt=True, with_info=True
        )
        self.assertEqual(info.skipped, (f"{shards[1]} record 0",))
        keep = [i for i in range(NUM_EXAMPLES) if i != 3]
        # Example 3 was a correct one: 6 of the 9 left are right.
        self.assertExact(
            dataset, info.num_examples, labels=LABELS[keep], correct=6
        )

    def test_all_corrupt(self):
        _, labels_file = self.write(range(NUM_EXAMPLES))
        images = os.path.join(self.dir, "images")
        with self.assertRaisesMessage(
            ValueError,
            f"Every image of the files source at {images!r} is corrupt. "
            f"Received: skip_corrupt=True and {NUM_EXAMPLES} images, none of "
            "which decodes. Check that the files are images (JPEG, PNG, GIF, "
            "BMP) and were copied completely.",
        ):
            build(
                "files",
                path=images,
                labels_file=labels_file,
                skip_corrupt=True,
            )


class ShardTest(DataTestCase):
    """num_shards / shard_index: every example in exactly one shard."""

    def write(self, source):
        if source == "files":
            _, labels_file = testing.write_ilsvrc_files(
                self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
            )
            return {
                "path": os.path.join(self.dir, "images"),
                "labels_file": labels_file,
            }
        if source == "folder":
            testing.write_class_folders(
                self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
            )
            return {"path": self.dir}
        testing.write_tfrecords(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES, num_shards=2
        )
        return {"path": self.dir}

    @parameterized.product(
        source=("files", "folder", "tfrecord"), num_shards=(1, 3, 12)
    )
    def test_shards_partition_the_source(self, source, num_shards):
        kwargs = self.write(source)
        whole, num_examples = build(source, **kwargs)
        _, want, _ = collect(whole)
        got = np.zeros_like(want)
        for index in range(num_shards):
            dataset, count = build(
                source, num_shards=num_shards, shard_index=index, **kwargs
            )
            # Examples index, index + num_shards, ...; 12 shards of 10
            # examples leave shards 10 and 11 empty.
            self.assertEqual(count, len(range(index, 10, num_shards)))
            sizes, labels, _ = collect(dataset) if count else ([], [], 0)
            self.assertEqual(sum(sizes), count)
            got[index::num_shards] = labels
            _, info = build(
                source,
                num_shards=num_shards,
                shard_index=index,
                with_info=True,
                **kwargs,
            )
            self.assertEqual(info.num_examples, num_examples)
        self.assertAllEqual(got, want)

    def test_empty_shard_has_the_batch_spec(self):
        kwargs = self.write("files")
        whole, _ = build("files", **kwargs)
        empty, count = build("files", num_shards=12, shard_index=11, **kwargs)
        self.assertEqual(count, 0)
        self.assertEqual(empty.element_spec, whole.element_spec)
        self.assertEmpty(list(empty))

    def test_skip_corrupt_then_shard(self):
        paths, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        with open(paths[4], "wb"):
            pass  # empty: not an image
        kept = np.delete(LABELS, 4)
        seen = np.zeros_like(kept)
        for index in range(2):
            dataset, info = build(
                "files",
                path=os.path.join(self.dir, "images"),
                labels_file=labels_file,
                skip_corrupt=True,
                num_shards=2,
                shard_index=index,
                with_info=True,
            )
            self.assertEqual(info.num_examples, 9)
            self.assertEqual(info.skipped, (paths[4],))
            _, labels, _ = collect(dataset)
            seen[index::2] = labels
        self.assertAllEqual(seen, kept)
