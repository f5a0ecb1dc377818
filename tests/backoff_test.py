"""Tests of the out-of-memory back-off (tf_topk.backoff) through the loop.

The model raises the allocator's own ResourceExhaustedError above a batch
size (`testing.out_of_memory_above`); a run that starts above it must count
exactly what a run at a batch that fits counts, partial last batch included.
"""

import doctest
import json
import os

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from cli_main_test import load_config_module, write_smoke_images

from tf_topk import backoff, checkpoints, evaluation, listeners, testing
from tf_topk.cli import run

NUM_CLASSES = 5


def oracle_data(batch_size, num_examples=22, num_correct=15):
    dataset, _, _ = testing.oracle_dataset(
        num_examples, num_correct, batch_size=batch_size, with_ids=True
    )
    return dataset


class Lines(listeners.Listener):
    """Keeps what the listeners see of each batch."""

    needs_predictions = True

    def __init__(self):
        self.batches = []

    def on_batch(self, batch):
        self.batches.append(batch)


class OomBackoffTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def evaluate(self, model, batch_size, hooks=(), **kwargs):
        return evaluation.evaluate(
            model,
            oracle_data(batch_size),
            ks=(1, 3),
            expected_num_examples=22,
            batch_size=batch_size,
            progress="none",
            listeners=list(hooks),
            **kwargs,
        )

    @parameterized.named_parameters(
        ("halved_twice", 16, 4, [16, 8]),
        ("halved_once", 8, 5, [8]),
        ("odd_batch", 7, 3, [7]),
    )
    def test_counts_equal_a_run_that_fits(self, batch_size, limit, failed):
        fits = self.evaluate(testing.oracle_model(NUM_CLASSES), 4)
        model = testing.out_of_memory_above(
            testing.oracle_model(NUM_CLASSES), limit
        )
        with self.assertLogs(level="WARNING") as logs:
            result = self.evaluate(model, batch_size)
        self.assertEqual(result.correct, fits.correct)
        self.assertEqual(result.correct[1], 15)
        self.assertEqual(result.num_examples, 22)
        self.assertEqual(result.per_class_correct, fits.per_class_correct)
        self.assertEqual(result.per_class_count, fits.per_class_count)
        self.assertEqual(list(result.oom_backoffs), failed)
        self.assertLessEqual(result.batch_size, limit)
        self.assertEqual(result.batch_size, failed[-1] // 2)
        record = result.to_dict()
        self.assertEqual(record["batch_size"], result.batch_size)
        self.assertEqual(record["oom_backoffs"], failed)
        self.assertIn(
            f"Out of memory at batch size {failed[0]}: going on at batch "
            f"size {failed[0] // 2} from the last counted batch",
            "\n".join(logs.output),
        )

    def test_listeners_see_every_example_once_in_order(self):
        model = testing.out_of_memory_above(
            testing.oracle_model(NUM_CLASSES), 4
        )
        lines = Lines()
        self.evaluate(model, 16, [lines])
        # Two input batches (16 and 6 examples), each told once.
        self.assertEqual([b.step for b in lines.batches], [1, 2])
        self.assertEqual([b.examples for b in lines.batches], [16, 22])
        ids = np.concatenate(
            [b.ids[b.weights > 0] for b in lines.batches]
        ).tolist()
        self.assertEqual(ids, [f"img-{i:02d}".encode() for i in range(22)])
        correct = np.concatenate(
            [b.correct[b.weights > 0] for b in lines.batches]
        )
        self.assertEqual(int(correct[:, 0].sum()), 15)

    def test_off_stops_with_the_advice(self):
        model = testing.out_of_memory_above(
            testing.oracle_model(NUM_CLASSES), 4
        )
        with self.assertRaisesRegex(
            backoff.OutOfMemory,
            r"^Out of memory at batch size 8 \(.*OOM when allocating.*\)\. "
            r"The out-of-memory back-off is off: lower "
            r"--config\.data\.batch_size \(e\.g\. to 4\), or turn it on with "
            r"--config\.eval\.oom_backoff=True\.$",
        ):
            self.evaluate(model, 8, [backoff.OomBackoff(enabled=False)])

    def test_one_example_that_does_not_fit_stops(self):
        model = testing.out_of_memory_above(
            testing.oracle_model(NUM_CLASSES), 0
        )
        with self.assertRaisesRegex(
            backoff.OutOfMemory,
            r"^Out of memory at batch size 1, one example per replica .*"
            r"does not fit this device even alone",
        ):
            self.evaluate(model, 4)

    def test_mirrored_strategy(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        with strategy.scope():
            fits = testing.oracle_model(NUM_CLASSES)
            model = testing.out_of_memory_above(
                testing.oracle_model(NUM_CLASSES), 2
            )
        expected = self.evaluate(fits, 4, strategy=strategy)
        # 8 rows: 4 per replica, then 2 (which fit).
        result = self.evaluate(model, 8, strategy=strategy)
        self.assertEqual(result.correct, expected.correct)
        self.assertEqual(result.correct[1], 15)
        self.assertEqual(result.num_examples, 22)
        self.assertEqual(list(result.oom_backoffs), [8])
        self.assertEqual(result.batch_size, 4)

    def test_checkpointed_run_resumes_after_a_backoff(self):
        directory = self.create_tempdir().full_path
        model = testing.out_of_memory_above(
            testing.oracle_model(NUM_CLASSES), 4
        )
        result = self.evaluate(
            model,
            8,
            [checkpoints.Checkpointer(directory, every_n_examples=8)],
        )
        self.assertEqual(result.correct[1], 15)
        again = self.evaluate(model, 8, [checkpoints.Checkpointer(directory)])
        self.assertEqual(again.resumed_from, 22)
        self.assertEqual(again.correct, result.correct)

    def test_bad_enabled(self):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `enabled` must be True or False\. Received: "
            r"enabled='no'$",
        ):
            backoff.OomBackoff(enabled="no")

    def test_doctest(self):
        failures, _ = doctest.testmod(backoff)
        self.assertEqual(failures, 0)


def oom_oracle(num_classes=NUM_CLASSES):
    """The oracle that runs out of memory above 2 images (a factory the
    config names as its weights)."""
    return testing.out_of_memory_above(testing.oracle_model(num_classes), 2)


class CommandLineTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.images = self.create_tempdir().full_path
        write_smoke_images(self.images)  # 10 images, 7 right, batch 4.
        self.config = load_config_module("smoke").get_config()
        self.config.data.path = self.images
        self.config.model.weights = "backoff_test:oom_oracle"

    def test_backoffs_recorded_in_results_json(self):
        workdir = self.create_tempdir().full_path
        result = run.run(self.config, workdir)
        self.assertEqual(result.correct[1], 7)
        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["top1_correct"], 7)
        self.assertEqual(record["num_examples"], 10)
        self.assertEqual(record["batch_size"], 2)
        self.assertEqual(record["oom_backoffs"], [4])
        self.assertEqual(record["config"]["data"]["batch_size"], 4)

    def test_off_stops_with_the_advice(self):
        self.config.eval.oom_backoff = False
        with self.assertRaisesRegex(
            backoff.OutOfMemory, r"back-off is off: lower --config\.data"
        ):
            run.run(self.config, self.create_tempdir().full_path)

    def test_a_bulk_command_starts_later_runs_at_what_fitted(self):
        config = load_config_module("smoke").get_config("2")
        config.data.path = self.images
        config.runs.run0.weights = "backoff_test:oom_oracle"
        result = run.run(config, self.create_tempdir().full_path)
        first, second = result.results["run0"], result.results["run1"]
        self.assertEqual(list(first.oom_backoffs), [4])
        self.assertEqual(first.batch_size, 2)
        # run1 (a model that would fit 4) starts at 2: no back-off needed.
        self.assertEqual(list(second.oom_backoffs), [])
        self.assertEqual(second.batch_size, 2)
        self.assertEqual(second.correct[1], 7)


class LatencyAndMemoryTest(tf.test.TestCase):
    def test_fields_present_and_ordered(self):
        keras.backend.clear_session()
        result = evaluation.evaluate(
            testing.oracle_model(NUM_CLASSES),
            oracle_data(4),
            progress="none",
        )
        self.assertGreater(result.latency_ms_p50, 0)
        self.assertLessEqual(result.latency_ms_p50, result.latency_ms_p95)
        self.assertGreater(result.peak_host_bytes, 0)
        if tf.config.list_logical_devices("GPU"):
            self.assertGreater(result.peak_device_bytes, 0)
        else:
            self.assertIsNone(result.peak_device_bytes)
        record = result.to_dict()
        self.assertEqual(
            record["throughput"]["latency_ms_p50"], result.latency_ms_p50
        )
        self.assertEqual(
            set(record["memory"]), {"peak_host_bytes", "peak_device_bytes"}
        )

    def test_one_step_has_no_latency(self):
        # The only step traces and compiles: nothing to time.
        keras.backend.clear_session()
        result = evaluation.evaluate(
            testing.oracle_model(NUM_CLASSES), oracle_data(32), progress="none"
        )
        self.assertIsNone(result.latency_ms_p50)
        self.assertIsNone(result.to_dict()["throughput"]["latency_ms_p95"])


if __name__ == "__main__":
    tf.test.main()
