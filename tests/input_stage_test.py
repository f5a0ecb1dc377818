"""Tests of the input stage: the pipeline's own rate and the advice."""

import doctest
import json
import math
from unittest import mock

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import input_stage, preprocessing, testing
from tf_topk.runs import files


def make_result(**overrides):
    """`testing.eval_result` (10 examples, 7 top-1 correct) timed so that the
    model ran the 10 in 2 s (5 images/s) of a 3 s run (4 images/s)."""
    timing = dict(
        wall_time_s=3.0, images_per_s=4.0, input_time_s=1.0, model_time_s=2.0
    )
    return testing.eval_result(**{**timing, **overrides})


def small_dataset(num_examples=10, batch_size=4):
    """Batches of 4, 4 and 2 examples (10 with batch 4)."""
    images = np.zeros((num_examples, 2, 2, 3), "float32")
    labels = np.arange(num_examples, dtype="int32") % 5
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return dataset.batch(batch_size)


def rate(images_per_s):
    return input_stage.InputRate(
        images_per_s=images_per_s,
        num_images=8,
        seconds=8 / images_per_s,
        num_batches=2,
    )


class MeasureTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        # Batches 4, 4, 2: the first is the warm-up, the others are timed.
        ("all_after_warm_up", 4, 6, 2),
        ("exactly_the_rest", 2, 6, 2),
        ("one_batch", 1, 4, 1),
    )
    def test_counts_the_timed_batches(self, num_batches, images, batches):
        measured = input_stage.measure(small_dataset(), num_batches=num_batches)
        self.assertEqual(measured.num_images, images)
        self.assertEqual(measured.num_batches, batches)
        self.assertGreater(measured.seconds, 0.0)
        self.assertAlmostEqual(measured.images_per_s, images / measured.seconds)

    def test_extra_elements_and_one_hot_labels(self):
        images = np.zeros((10, 2, 2, 3), "float32")
        one_hot = np.eye(5, dtype="float32")[np.arange(10) % 5]
        weights = np.ones(10, "float32")
        dataset = tf.data.Dataset.from_tensor_slices(
            (images, one_hot, weights)
        ).batch(4)
        self.assertEqual(input_stage.measure(dataset).num_images, 6)

    @parameterized.named_parameters(
        ("one_batch", 4, "1 batch, the warm-up batch"),
        ("empty", 0, "no batch"),
    )
    def test_too_few_batches_is_none(self, num_examples, reason):
        dataset = small_dataset(num_examples=num_examples)
        with self.assertLogs(level="INFO") as logs:
            self.assertIsNone(input_stage.measure(dataset))
        self.assertIn(reason, logs.output[-1])

    @parameterized.named_parameters(
        ("zero", 0), ("negative", -1), ("float", 2.0), ("bool", True)
    )
    def test_bad_num_batches(self, num_batches):
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `num_batches` must be a positive integer. "
            f"Received: num_batches={num_batches!r}",
        ):
            input_stage.measure(small_dataset(), num_batches=num_batches)

    def test_not_a_dataset(self):
        with self.assertRaisesWithLiteralMatch(
            TypeError,
            "Argument `dataset` must be a tf.data.Dataset of (images, "
            "labels) batches. Received: dataset of type list. Pass the "
            "dataset before it is distributed or turned into an iterator.",
        ):
            input_stage.measure([(np.zeros((4, 2)), np.zeros(4))])

    def test_decode_error_propagates(self):
        good = tf.io.encode_jpeg(np.zeros((4, 4, 3), "uint8")).numpy()
        # The sixth image, in the first timed batch, is not a JPEG.
        encoded = [good] * 5 + [b"not a jpeg"] + [good] * 4
        dataset = tf.data.Dataset.from_tensor_slices(
            (encoded, np.arange(10, dtype="int32"))
        )
        dataset = dataset.map(
            lambda data, label: (tf.io.decode_jpeg(data, channels=3), label)
        ).batch(4)
        with self.assertRaises(tf.errors.InvalidArgumentError):
            input_stage.measure(dataset)


class LimitsTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("slower_input", 4.0, 5.0, True),
        ("equal_rates", 5.0, 5.0, False),
        ("faster_input", 6.0, 5.0, False),
        ("no_input", 0.0, 5.0, True),
        ("endless_model", 1e6, math.inf, True),
    )
    def test_limits(self, input_rate, model_rate, expected):
        self.assertIs(input_stage.limits(input_rate, model_rate), expected)

    @parameterized.named_parameters(
        ("negative_input", -1.0, 5.0, "input_images_per_s", "-1.0"),
        ("nan_model", 5.0, math.nan, "model_images_per_s", "nan"),
    )
    def test_bad_rate(self, input_rate, model_rate, name, shown):
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            f"Argument `{name}` must be a non-negative number of images/s. "
            f"Received: {name}={shown}",
        ):
            input_stage.limits(input_rate, model_rate)


class AnnotateTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        # The model ran 10 examples in 2 s: 5 images/s.
        ("limited", 4.0, True),
        ("keeps_up", 8.0, False),
    )
    def test_annotate(self, input_rate, limited):
        annotated = input_stage.annotate(make_result(), rate(input_rate))
        self.assertEqual(annotated.input_images_per_s, input_rate)
        self.assertEqual(annotated.model_images_per_s, 5.0)
        self.assertIs(annotated.input_limited, limited)
        self.assertEqual(annotated.correct, {1: 7, 5: 9})

    def test_not_measured(self):
        annotated = input_stage.annotate(make_result(), None)
        self.assertIsNone(annotated.input_images_per_s)
        self.assertIsNone(annotated.input_limited)

    def test_model_rate_unknown(self):
        annotated = input_stage.annotate(
            make_result(model_time_s=0.0), rate(4.0)
        )
        self.assertEqual(annotated.input_images_per_s, 4.0)
        self.assertIsNone(annotated.input_limited)

    def test_resumed_run_counts_only_the_examples_it_ran(self):
        # 10 examples, 6 restored: the loop ran 4 in 2 s.
        result = make_result(resumed_from=6)
        self.assertEqual(result.model_images_per_s, 2.0)
        self.assertFalse(input_stage.annotate(result, rate(3.0)).input_limited)
        self.assertIsNone(make_result(resumed_from=10).model_images_per_s)


class AdviceTest(tf.test.TestCase, parameterized.TestCase):
    def advise(self, options=None, cache="none"):
        annotated = input_stage.annotate(make_result(), rate(4.0))
        with mock.patch.object(input_stage.os, "cpu_count", return_value=3):
            return input_stage.advice(
                annotated,
                options=options or preprocessing.Options(),
                cache=cache,
            )

    def test_rates_cores_and_every_flag(self):
        text = self.advise()
        self.assertIn("delivers 4 images/s alone", text)
        self.assertIn("consumes 5 images/s", text)
        self.assertIn("this machine has 3)", text)
        for flag in (
            "--config.preprocess.antialias=False: ",
            "--config.preprocess.crop_mode=crop_then_resize: ",
            "--config.data.cache=memory (or disk)",
        ):
            self.assertEqual(text.count(flag), 1, flag)
        self.assertNotIn("already set", text)

    def test_measured_figures(self):
        text = self.advise()
        for figure in (
            "2.4x faster input (486 -> 1150 images/s",
            "+0.40 points for MobileNet alpha 0.75 (1421 -> 1428 correct)",
            "-0.17 points for MobileNet alpha 0.25 (1076 -> 1073 correct)",
            "1.09x faster input (486 -> 530 images/s",
            "+0.74 points for MobileNet alpha 0.75 (1421 -> 1434 correct)",
            "-0.97 points for MobileNet alpha 0.25 (1076 -> 1059 correct)",
            "1,750 real ImageNet validation images",
            "within sampling noise",
            "about 1 point at n=1750: 0.9 to 1.2",
        ):
            self.assertIn(figure, text)

    @parameterized.named_parameters(("memory", "memory"), ("disk", "disk"))
    def test_cache_on(self, cache):
        text = self.advise(cache=cache)
        self.assertIn(
            f"the decoded-image cache is on (--config.data.cache={cache})",
            text,
        )
        self.assertNotIn("(or disk)", text)

    def test_flags_the_run_already_has(self):
        options = preprocessing.Options(
            antialias=False, crop_mode="crop_then_resize"
        )
        text = self.advise(options=options)
        self.assertIn("--config.preprocess.antialias=False: already set", text)
        self.assertIn(
            "--config.preprocess.crop_mode=crop_then_resize: already set",
            text,
        )
        self.assertNotIn("486 -> ", text)

    def test_unknown_cores(self):
        annotated = input_stage.annotate(make_result(), rate(4.0))
        with mock.patch.object(input_stage.os, "cpu_count", return_value=None):
            text = input_stage.advice(
                annotated, options=preprocessing.Options(), cache="none"
            )
        self.assertIn("this machine has an unknown number)", text)

    def test_bad_cache(self):
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `cache` must be one of ['none', 'memory', 'disk']. "
            "Received: cache='ram'",
        ):
            self.advise(cache="ram")

    def test_result_without_rates(self):
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `result` must carry both rates: "
            "input_images_per_s=None, model_images_per_s=5.0. Pass the "
            "result of input_stage.annotate(result, "
            "input_stage.measure(dataset)).",
        ):
            input_stage.advice(
                make_result(), options=preprocessing.Options(), cache="none"
            )


class ThroughputRecordTest(tf.test.TestCase):
    def test_new_keys_default_to_none(self):
        throughput = make_result().to_dict()["throughput"]
        self.assertEqual(
            list(throughput),
            [
                "images_per_s",
                "input_time_s",
                "model_time_s",
                "input_images_per_s",
                "model_images_per_s",
                "input_limited",
                "latency_ms_p50",
                "latency_ms_p95",
            ],
        )
        self.assertIsNone(throughput["input_images_per_s"])
        self.assertEqual(throughput["model_images_per_s"], 5.0)
        self.assertIsNone(throughput["input_limited"])

    def test_annotated_values_reach_results_json(self):
        annotated = input_stage.annotate(make_result(), rate(4.0))
        record = json.loads(files.results_json(annotated))
        self.assertEqual(
            record["throughput"],
            {
                "images_per_s": 4.0,
                "input_time_s": 1.0,
                "model_time_s": 2.0,
                "input_images_per_s": 4.0,
                "model_images_per_s": 5.0,
                "input_limited": True,
                "latency_ms_p50": None,
                "latency_ms_p95": None,
            },
        )

    def test_unknown_model_rate_is_null(self):
        record = json.loads(files.results_json(make_result(model_time_s=0)))
        self.assertIsNone(record["throughput"]["model_images_per_s"])


class DoctestTest(tf.test.TestCase):
    def test_doctest(self):
        failures, _ = doctest.testmod(input_stage)
        self.assertEqual(failures, 0)


if __name__ == "__main__":
    tf.test.main()
