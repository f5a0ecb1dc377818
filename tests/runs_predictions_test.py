"""Tests of tf_topk.runs.predictions: the files written as the loop runs
(through `evaluate`), and `load`, their one reader."""

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
    preprocessing,
    testing,
)
from tf_topk.runs import files, predictions

NUM_CLASSES = 5
NUM_EXAMPLES = 22


def oracle_data(with_ids=True, batch_size=4):
    """22 painted images, 15 labelled as painted; ids 'img-<i>'."""
    return testing.oracle_dataset(
        NUM_EXAMPLES,
        15,
        num_classes=NUM_CLASSES,
        batch_size=batch_size,
        with_ids=with_ids,
    )


def read_lines(directory):
    rows = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name)) as f:
            rows += [json.loads(line) for line in f]
    return rows


def line(example_id, labels, classes, scores=None):
    """One predictions line as a dict (scores 1.0, 0.95, ... by default)."""
    if scores is None:
        scores = [round(1.0 - 0.05 * i, 2) for i in range(len(classes))]
    return {
        "id": example_id,
        "labels": labels,
        "top_classes": classes,
        "top_scores": scores,
    }


def write_run(workdir, workers, raw=None):
    """Writes one predictions file per worker (lists of dicts or text)."""
    directory = os.path.join(workdir, "predictions")
    os.makedirs(directory, exist_ok=True)
    for index, records in enumerate(workers):
        name = f"predictions-{index:05d}-of-{len(workers):05d}.jsonl"
        with open(os.path.join(directory, name), "w") as f:
            if raw is not None and index == 0:
                f.write(raw)
            else:
                f.writelines(json.dumps(r) + "\n" for r in records)
    return workdir


class PredictionsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(NUM_CLASSES, softmax=True)
        self.workdir = self.create_tempdir().full_path
        self.directory = os.path.join(self.workdir, files.PREDICTIONS_DIR)

    def evaluate(self, data, *, checkpoint=None, **kwargs):
        """Evaluates with a predictions Recorder (and a Checkpointer of
        the `checkpoint` keyword arguments)."""
        hooks = [predictions.Recorder(self.directory)]
        if checkpoint is not None:
            hooks.append(checkpoints.Checkpointer(**checkpoint))
        return evaluation.evaluate(
            self.model,
            data,
            ks=(1, 5),
            expected_num_examples=NUM_EXAMPLES,
            progress="none",
            listeners=hooks,
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
        loaded = predictions.load(self.workdir)
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
        checkpoint_dir = os.path.join(self.workdir, files.CHECKPOINT_DIR)
        self.evaluate(data)
        whole = read_lines(self.directory)
        with stop_at_step(step), self.assertRaises(checkpoints.Interrupted):
            self.evaluate(
                data, checkpoint=dict(directory=checkpoint_dir, resume=False)
            )
        self.assertLen(read_lines(self.directory), 4 * step)
        # A line written after the checkpoint (a hard kill) is dropped.
        path = os.path.join(self.directory, os.listdir(self.directory)[0])
        with open(path, "a") as f:
            f.write('{"id": "img-99", "labels": [0]')
        resumed = self.evaluate(data, checkpoint=dict(directory=checkpoint_dir))
        self.assertEqual(resumed.resumed_from, 4 * step)
        self.assertEqual(read_lines(self.directory), whole)


class LoadPredictionsTest(tf.test.TestCase):
    def test_two_workers_unsorted_ids_are_sorted_together(self):
        workdir = write_run(
            self.get_temp_dir(),
            [
                [line("c", [2], [2, 1]), line("a", [0], [1, 0])],
                [line("d", [1], [1, 2]), line("b", [1], [0, 1])],
            ],
        )
        loaded = predictions.load(workdir)
        self.assertEqual(loaded.ids.tolist(), ["a", "b", "c", "d"])
        self.assertEqual(loaded.labels.tolist(), [0, 1, 2, 1])
        self.assertEqual(loaded.labels.dtype, np.int64)
        self.assertEqual(loaded.top_classes.shape, (4, 10))
        self.assertEqual(loaded.top_classes[0, :3].tolist(), [1, 0, -1])
        self.assertEqual(loaded.top_classes[2, :2].tolist(), [2, 1])
        self.assertAllClose(loaded.top_scores[0, :2], [1.0, 0.95])
        self.assertTrue(np.isnan(loaded.top_scores[:, 2:]).all())
        self.assertEqual(loaded.source, workdir)

    def test_multi_label_rows_are_sorted_and_padded(self):
        workdir = write_run(
            self.get_temp_dir(),
            [[line("x", [3, 1], [1]), line("y", [], [0]), line("z", [2], [2])]],
        )
        labels = predictions.load(workdir).labels
        self.assertEqual(labels.tolist(), [[1, 3], [-1, -1], [2, -1]])

    def test_blank_lines_are_skipped(self):
        text = json.dumps(line("a", [0], [0])) + "\n\n" + "\n"
        workdir = write_run(self.get_temp_dir(), [[]], raw=text)
        self.assertEqual(predictions.load(workdir).ids.tolist(), ["a"])

    def test_no_predictions_names_run_and_flag(self):
        workdir = self.get_temp_dir()
        with self.assertRaisesRegex(FileNotFoundError, "") as caught:
            predictions.load(workdir)
        message = str(caught.exception)
        self.assertStartsWith(
            message,
            f"Run {workdir!r} has no complete set of saved predictions in "
            f"{os.path.join(workdir, 'predictions')}: found [], expected one",
        )
        self.assertIn("--config.eval.save_predictions=True", message)
        self.assertIn(
            "tf_topk.evaluate(..., listeners=[predictions.Recorder(...)])",
            message,
        )

    def test_missing_worker_file_is_refused(self):
        workdir = write_run(self.get_temp_dir(), [[line("a", [0], [0])], []])
        os.remove(
            os.path.join(
                workdir, "predictions", "predictions-00001-of-00002.jsonl"
            )
        )
        with self.assertRaisesRegex(
            FileNotFoundError,
            r"found \['predictions-00000-of-00002.jsonl'\], expected one "
            "predictions-NNNNN-of-NNNNN.jsonl file per worker",
        ):
            predictions.load(workdir)

    def test_id_twice_in_one_file(self):
        workdir = write_run(
            self.get_temp_dir(), [[line("a", [0], [0]), line("a", [0], [0])]]
        )
        path = os.path.join(
            workdir, "predictions", "predictions-00000-of-00001.jsonl"
        )
        with self.assertRaises(ValueError) as caught:
            predictions.load(workdir)
        self.assertEqual(
            str(caught.exception),
            f"Example id 'a' appears twice: at {path}:1 and at {path}:2. Each "
            "example must be evaluated once: evaluate the run again.",
        )

    def test_id_in_two_workers(self):
        workdir = write_run(
            self.get_temp_dir(), [[line("a", [0], [0])], [line("a", [0], [0])]]
        )
        with self.assertRaisesRegex(
            ValueError,
            r"Example id 'a' appears twice: at .*-00000-of-00002.jsonl:1 and "
            r"at .*-00001-of-00002.jsonl:1\.",
        ):
            predictions.load(workdir)


class MalformedLineTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("not_json", '{"id": "a", "labels": [0'),
        ("not_an_object", "[1, 2]"),
        ("missing_key", '{"id": "b", "labels": [0], "top_classes": [0]}'),
        ("empty_id", line("", [0], [0])),
        ("id_not_string", line(7, [0], [0])),
        ("label_negative", line("b", [-1], [0])),
        ("label_float", line("b", [1.0], [0])),
        ("label_bool", line("b", [True], [0])),
        ("no_top_classes", line("b", [0], [], [])),
        ("eleven_top_classes", line("b", [0], list(range(11)))),
        ("scores_short", line("b", [0], [0, 1], [0.5])),
        ("score_string", line("b", [0], [0], ["0.5"])),
        ("labels_not_list", line("b", 0, [0])),
    )
    def test_names_file_and_line(self, bad):
        text = bad if isinstance(bad, str) else json.dumps(bad)
        good = json.dumps(line("a", [0], [0]))
        workdir = write_run(self.get_temp_dir(), [[]], raw=f"{good}\n{text}\n")
        path = os.path.join(
            workdir, "predictions", "predictions-00000-of-00001.jsonl"
        )
        with self.assertRaises(ValueError) as caught:
            predictions.load(workdir)
        self.assertEqual(
            str(caught.exception),
            f"{path}:2: expected a JSON object with a non-empty string `id`, "
            "`labels` (class indices), 1 to 10 `top_classes` (class indices) "
            f"and as many numeric `top_scores`. Received: {text[:200]!r}",
        )


class RecordsTest(tf.test.TestCase):
    def test_records_one_per_example_padding_dropped(self):
        workdir = write_run(
            self.get_temp_dir(),
            [[line("b", [3, 1], [1, 2]), line("a", [], [0])]],
        )
        self.assertEqual(
            predictions.load(workdir).records(),
            [
                predictions.Prediction("a", (), (0,), (1.0,)),
                predictions.Prediction("b", (1, 3), (1, 2), (1.0, 0.95)),
            ],
        )

    def test_saved(self):
        workdir = self.get_temp_dir()
        self.assertFalse(predictions.saved(os.path.join(workdir, "none")))
        write_run(workdir, [[line("a", [0], [0])]])
        self.assertTrue(predictions.saved(workdir))

    def test_old_name_still_importable(self):
        from tf_topk.analysis import load_predictions

        self.assertIs(load_predictions, predictions.load)
        self.assertIs(analysis.load_predictions, predictions.load)


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
