"""Hand-checked counts of the top-k metrics: partial batches, sample weights,
reset, `top_k_correct`, tie counts on request, local counts, doctests."""

import doctest

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    LABELS,
    LOGITS,
    NUM_CLASSES,
    RANKS,
    batches,
    reference_rank,
    results,
)

from tf_topk import metrics


class HandCheckedTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_hand_counts_with_partial_last_batch(self):
        self.assertAllEqual(reference_rank(LABELS, LOGITS), RANKS)
        metric = metrics.TopKAccuracies(ks=(1, 3, 5), count_ties=True)
        for labels, logits, _ in batches(LABELS, LOGITS, 4):
            metric.update_state(labels, logits)
        self.assertEqual(results(metric), {"top1": 0.4, "top3": 0.8, "top5": 1})
        counts = metric.counts()
        self.assertEqual(counts.ks, (1, 3, 5))
        self.assertEqual(counts.correct, (4.0, 8.0, 10.0))
        self.assertEqual(counts.num_examples, 10.0)
        self.assertEqual(counts.ties, (0.0, 0.0, 0.0))
        self.assertEqual(counts.nonfinite, 0.0)
        self.assertEqual(counts.invalid_labels, 0.0)
        self.assertEqual(counts.unlabeled, 0.0)

    @parameterized.named_parameters(
        ("top1", 1, 0.4), ("top3", 3, 0.8), ("top5_all_classes", 5, 1.0)
    )
    def test_single_k(self, k, expected):
        metric = metrics.TopKAccuracy(k=k)
        self.assertEqual(metric.name, f"top{k}")
        metric.update_state(LABELS, LOGITS)
        self.assertAllClose(metric.result(), expected)

    def test_sample_weight_zero_masks(self):
        # Rows 5-8 masked, row 9 counts twice: top1 rows 0, 9 -> 3/7;
        # top3 rows 0, 1, 2, 9 -> 5/7.
        weights = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 2], np.float32)
        metric = metrics.TopKAccuracies(ks=(1, 3))
        for labels, logits, weight in batches(LABELS, LOGITS, 4, weights):
            metric.update_state(labels, logits, sample_weight=weight)
        self.assertEqual(metric.counts().correct, (3.0, 5.0))
        self.assertEqual(metric.counts().num_examples, 7.0)
        self.assertAllClose(results(metric), {"top1": 3 / 7, "top3": 5 / 7})

    def test_sample_weight_column_and_scalar(self):
        metric = metrics.TopKAccuracy(k=1)
        metric.update_state(LABELS, LOGITS, sample_weight=np.ones((10, 1)) * 3)
        metric.update_state(LABELS, LOGITS, sample_weight=0.0)
        self.assertEqual(metric.counts().correct, (12.0,))
        self.assertEqual(metric.counts().num_examples, 30.0)
        with self.assertRaisesRegex(ValueError, r"shape=\(10, 2\)"):
            metric.update_state(LABELS, LOGITS, sample_weight=np.ones((10, 2)))

    def test_several_updates_equal_one(self):
        one = metrics.TopKAccuracies(ks=(1, 3))
        one.update_state(LABELS, LOGITS)
        several = metrics.TopKAccuracies(ks=(1, 3))
        for labels, logits, _ in batches(LABELS, LOGITS, 3):
            several.update_state(labels, logits)
        self.assertEqual(several.counts(), one.counts())

    def test_reset_state(self):
        metric = metrics.TopKAccuracies(ks=(1, 3))
        metric.update_state(LABELS, np.where(LOGITS == 4, np.nan, LOGITS))
        metric.reset_state()
        self.assertEqual(metric.counts().correct, (0.0, 0.0))
        self.assertEqual(metric.counts().num_examples, 0.0)
        self.assertEqual(metric.counts().nonfinite, 0.0)
        self.assertEqual(results(metric), {"top1": 0.0, "top3": 0.0})
        metric.update_state(LABELS[:4], LOGITS[:4])
        self.assertEqual(results(metric), {"top1": 0.25, "top3": 0.75})

    def test_top_k_correct(self):
        self.assertAllEqual(metrics.top_k_correct(LABELS, LOGITS, 1), RANKS < 1)
        self.assertAllEqual(
            metrics.top_k_correct(LABELS, LOGITS, k=3), RANKS < 3
        )
        correct = metrics.top_k_correct(
            [0, 1], [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]], 1, ties="exclusive"
        )
        self.assertEqual(correct.dtype, tf.bool)
        self.assertAllEqual(correct, [False, False])
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `k` must be a positive integer. Received: k=0",
        ):
            metrics.top_k_correct(LABELS, LOGITS, 0)

    def test_docstring_examples_run(self):
        failures, attempted = doctest.testmod(metrics)
        self.assertGreaterEqual(attempted, 12)
        self.assertEqual(failures, 0)

    def test_ties_are_counted_on_request(self):
        logits = np.zeros((3, NUM_CLASSES), np.float32)
        metric = metrics.TopKAccuracies(ks=(1, 5))
        metric.update_state([0, 1, 2], logits)
        self.assertIsNone(metric.counts().ties)
        self.assertFalse(metric.get_config()["count_ties"])
        self.assertEqual(metric.counts().correct, (3.0, 3.0))
        counting = metrics.TopKAccuracies(ks=(1, 5), count_ties=True)
        counting.update_state([0, 1, 2], logits)
        self.assertEqual(counting.counts().ties, (3.0, 0.0))
        self.assertEqual(counting.counts().correct, (3.0, 3.0))
        # The exclusive rule counts wrong what the tie decided.
        exclusive = metrics.TopKAccuracy(1, ties="exclusive", count_ties=True)
        exclusive.update_state([0, 1, 2], logits)
        self.assertEqual(exclusive.counts().correct, (0.0,))
        self.assertEqual(exclusive.counts().ties, (3.0,))

    def test_local_counts(self):
        metric = metrics.TopKAccuracies(ks=(1, 3))
        metric.update_state(LABELS, LOGITS, sample_weight=np.full(10, 0.5))
        self.assertEqual(metric.local_counts(), ((2.0, 4.0), 5.0))
        strategy = tf.distribute.get_strategy()
        self.assertEqual(metric.local_counts(strategy), ((2.0, 4.0), 5.0))


if __name__ == "__main__":
    tf.test.main()
