"""Tests of per-example predictions (tf_topk.predictions via evaluate)."""

import json
import os

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from checkpoints_test import stop_at_step

from tf_topk import (
    analysis,
    checkpoints,
    datasets,
    evaluation,
    predictions,
    preprocessing,
    testing,
)

NUM_CLASSES = 5
NUM_EXAMPLES = 22


def oracle_data(with_ids=True, batch_size=4):
    """22 painted images, 15 labelled as painted; ids 'img-<i>'."""
    predicted = np.arange(NUM_EXAMPLES) % NUM_CLASSES
    labels = testing.oracle_labels(predicted, 15, NUM_CLASSES)
    images = np.stack(
        [testing.constant_image(int(c), NUM_CLASSES) for c in predicted]
    )
    ids = [f"img-{i:02d}" for i in range(NUM_EXAMPLES)]
    parts = (images, labels, ids) if with_ids else (images, labels)
    data = tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)
    return data, predicted, labels


def read_lines(directory):
    rows = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name)) as f:
            rows += [json.loads(line) for line in f]
    return rows


class PredictionsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(NUM_CLASSES, softmax=True)
        self.workdir = self.create_tempdir().full_path
        self.directory = os.path.join(self.workdir, predictions.DIRECTORY)

    def evaluate(self, data, **kwargs):
        return evaluation.evaluate(
            self.model,
            data,
            ks=(1, 5),
            expected_num_examples=NUM_EXAMPLES,
            progress="none",
            predictions_dir=self.directory,
            **kwargs,
        )

    def test_every_example_once_padding_excluded(self):
        data, predicted, labels = oracle_data()
        result = self.evaluate(data)
        self.assertEqual(
            os.listdir(self.directory), ["predictions-00000-of-00001.jsonl"]
        )
        rows = read_lines(self.directory)
        self.assertLen(rows, NUM_EXAMPLES)
        self.assertEqual(
            [r["id"] for r in rows], [f"img-{i:02d}" for i in range(22)]
        )
        self.assertEqual(
            [r["labels"] for r in rows], [[int(x)] for x in labels]
        )
        self.assertEqual(
            [r["top_classes"][0] for r in rows], predicted.tolist()
        )
        for row in rows:
            self.assertLen(row["top_classes"], NUM_CLASSES)  # < 10 classes.
            self.assertEqual(sorted(row["top_classes"]), list(range(5)))
            self.assertEqual(
                row["top_scores"], sorted(row["top_scores"], reverse=True)
            )
        # The stored top-1 agrees with the run's count (no ties here).
        loaded = analysis.load_predictions(self.workdir)
        self.assertEqual(
            int(np.sum(loaded.top_classes[:, 0] == loaded.labels)),
            result.correct[1],
        )

    def test_positions_name_examples_of_a_dataset_without_ids(self):
        data, _, _ = oracle_data(with_ids=False)
        self.evaluate(data)
        rows = read_lines(self.directory)
        self.assertEqual(
            [r["id"] for r in rows], [f"example {i}" for i in range(22)]
        )

    def test_mirrored_replicas_write_every_example_once(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(3))
        with strategy.scope():
            self.model = testing.oracle_model(NUM_CLASSES, softmax=True)
        data, predicted, _ = oracle_data(batch_size=5)
        result = self.evaluate(data, strategy=strategy)
        self.assertEqual(result.correct[1], 15)
        rows = read_lines(self.directory)
        ids = sorted(r["id"] for r in rows)
        self.assertEqual(ids, [f"img-{i:02d}" for i in range(22)])
        by_id = {r["id"]: r["top_classes"][0] for r in rows}
        self.assertEqual(
            [by_id[f"img-{i:02d}"] for i in range(22)], predicted.tolist()
        )

    @parameterized.named_parameters(("step_1", 1), ("step_4", 4))
    def test_resumed_run_keeps_exactly_the_counted_lines(self, step):
        data, _, _ = oracle_data()
        checkpoint_dir = os.path.join(self.workdir, "checkpoint")
        self.evaluate(data)
        whole = read_lines(self.directory)
        with stop_at_step(step), self.assertRaises(checkpoints.Interrupted):
            self.evaluate(data, checkpoint_dir=checkpoint_dir, resume=False)
        self.assertLen(read_lines(self.directory), 4 * step)
        # A line written after the checkpoint (a hard kill) is dropped.
        path = os.path.join(self.directory, os.listdir(self.directory)[0])
        with open(path, "a") as f:
            f.write('{"id": "img-99", "labels": [0]')
        resumed = self.evaluate(data, checkpoint_dir=checkpoint_dir)
        self.assertEqual(resumed.resumed_from, 4 * step)
        self.assertEqual(read_lines(self.directory), whole)


class ExampleIdsTest(tf.test.TestCase):
    def test_folder_ids_are_paths_under_the_folder(self):
        root = self.create_tempdir().full_path
        testing.write_class_folders(
            root, [0, 1, 2], [0, 1, 2], num_classes=NUM_CLASSES
        )
        dataset, _ = datasets.build(
            "folder",
            path=root,
            batch_size=2,
            num_classes=NUM_CLASSES,
            preprocess=preprocessing.Options(image_size=8),
            with_ids=True,
        )
        ids = [i.decode() for _, _, batch in dataset for i in batch.numpy()]
        self.assertEqual(
            ids,
            [
                "class_00/image_0000.jpg",
                "class_01/image_0001.jpg",
                "class_02/image_0002.jpg",
            ],
        )

    def test_tfrecord_ids_are_stored_file_names_else_shard_and_record(self):
        for file_names, expected in (
            (True, [f"image_{i:04d}.jpg" for i in range(4)]),
            (
                False,
                [
                    "validation-00000-of-00002 record 0",
                    "validation-00000-of-00002 record 1",
                    "validation-00001-of-00002 record 0",
                    "validation-00001-of-00002 record 1",
                ],
            ),
        ):
            root = self.create_tempdir().full_path
            testing.write_tfrecords(
                root,
                [0, 1, 2, 3],
                [0, 1, 2, 3],
                num_classes=NUM_CLASSES,
                num_shards=2,
                file_names=file_names,
            )
            dataset, _ = datasets.build(
                "tfrecord",
                path=os.path.join(root, "validation-*"),
                batch_size=3,
                num_classes=NUM_CLASSES,
                preprocess=preprocessing.Options(image_size=8),
                with_ids=True,
            )
            ids = [i.decode() for _, _, b in dataset for i in b.numpy()]
            self.assertEqual(ids, expected)

    def test_start_leaves_out_the_first_examples_before_decoding(self):
        root = self.create_tempdir().full_path
        testing.write_class_folders(
            root, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], num_classes=NUM_CLASSES
        )
        # Not decodable, but before `start`: never read as an image.
        with open(os.path.join(root, "class_00", "image_0000.jpg"), "wb") as f:
            f.write(b"not an image")
        options = preprocessing.Options(image_size=8)
        for start, expected in ((2, [2, 3, 4]), (4, [4]), (5, [])):
            dataset, count = datasets.build(
                "folder",
                path=root,
                batch_size=2,
                num_classes=NUM_CLASSES,
                preprocess=options,
                start=start,
            )
            self.assertEqual(count, 5)  # The whole source's count.
            labels = [int(x) for _, batch in dataset for x in batch.numpy()]
            self.assertEqual(labels, expected)
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `start` must be a non-negative integer\. "
            r"Received: start=-1$",
        ):
            datasets.build("folder", path=root, start=-1)

    def test_with_ids_must_be_a_bool(self):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `with_ids` must be a bool\. Received: with_ids=1$",
        ):
            datasets.build("folder", path="/nowhere", with_ids=1)


if __name__ == "__main__":
    tf.test.main()
