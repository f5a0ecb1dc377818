"""Ties: the inclusive rule is `tf.math.in_top_k`'s, the exclusive rule nudges
the true score below itself (eagerly, in a graph, under XLA)."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    NUM_CLASSES,
    TINY,
    oracle_counts,
    results,
)

from tf_topk import metrics


class TiesTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        ("eager", False, False), ("function", True, False), ("xla", True, True)
    )
    def test_constant_model(self, in_function, jit_compile):
        labels = np.array([0, 1, 2, 3, 4, 0], np.int32)
        logits = np.zeros((6, NUM_CLASSES), np.float32)
        # Every other class ties with the true one: decided by the tie for
        # k < 5; at k == 5 all five classes fit, no tie decides it.
        expected = {
            "inclusive": {"top1": 1.0, "top5": 1.0},
            "exclusive": {"top1": 0.0, "top5": 1.0},
        }
        for ties, want in expected.items():
            metric = metrics.TopKAccuracies(
                ks=(1, 5), ties=ties, count_ties=True
            )
            update = metric.update_state
            if in_function:
                update = tf.function(update, jit_compile=jit_compile)
            update(tf.constant(labels), tf.constant(logits))
            self.assertEqual(results(metric), want, ties)
            self.assertEqual(metric.counts().ties, (6.0, 0.0), ties)

    def test_inclusive_is_in_top_k(self):
        # Keras' built-in agrees with tf.math.in_top_k on the constant model.
        keras_metric = keras.metrics.SparseTopKCategoricalAccuracy(k=1)
        keras_metric.update_state([0, 1, 2], np.zeros((3, 5), np.float32))
        self.assertEqual(float(keras_metric.result()), 1.0)
        labels = np.array([0, 1, 2, 3, 4, 2], np.int32)
        logits = np.array(
            [
                [1, 1, 0, 0, 0],
                [1, 1, 1, 0, 0],
                [2, 1, 1, 1, 1],
                [0, 0, 0, 0, 0],
                [3, 3, 2, 2, 2],
                [1, 2, 2, 2, 0],
            ],
            np.float32,
        )
        for k in range(1, 6):
            self.assertAllEqual(
                metrics.top_k_correct(labels, logits, k),
                tf.math.in_top_k(labels, logits, k),
                f"k={k}",
            )

    def test_tie_straddling_k(self):
        # The true class 2 scores 2: one class above, two level with it.
        # Inclusive: correct from k=2. Exclusive: needs room for all three
        # classes at or above it besides itself: correct from k=4.
        labels = np.array([2], np.int32)
        logits = np.array([[3, 2, 2, 2, 1]], np.float32)
        ks = (1, 2, 3, 4, 5)
        inclusive = metrics.TopKAccuracies(ks=ks, count_ties=True)
        inclusive.update_state(labels, logits)
        exclusive = metrics.TopKAccuracies(
            ks=ks, ties="exclusive", count_ties=True
        )
        exclusive.update_state(labels, logits)
        self.assertEqual(inclusive.counts().correct, (0, 1, 1, 1, 1))
        self.assertEqual(exclusive.counts().correct, (0, 0, 0, 1, 1))
        self.assertEqual(inclusive.counts().ties, (0, 1, 1, 0, 0))
        self.assertEqual(exclusive.counts().ties, (0, 1, 1, 0, 0))

    def test_tie_inside_top_k_decides_nothing(self):
        # Classes 0 and 1 tie for first; both fit in the top 2.
        labels = np.array([0, 1], np.int32)
        logits = np.array([[3, 3, 1, 0, 0]] * 2, np.float32)
        metric = metrics.TopKAccuracies(
            ks=(1, 2), ties="exclusive", count_ties=True
        )
        metric.update_state(labels, logits)
        self.assertEqual(metric.counts().correct, (0.0, 2.0))
        self.assertEqual(metric.counts().ties, (2.0, 0.0))

    def test_per_class_exclusive(self):
        metric = metrics.PerClassTopKAccuracy(3, k=1, ties="exclusive")
        metric.update_state([0, 1, 2], [[1, 1, 0], [0, 2, 0], [0, 0, 0]])
        self.assertAllEqual(metric.result(), [0.0, 1.0, 0.0])


class NudgeTest(tf.test.TestCase, parameterized.TestCase):
    """The exclusive rule at the edges of float32 (on CPU)."""

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        # Class 1 ties with the true class 0 at 0: the float below 0 is
        # subnormal, which the CPU flushes to 0 again.
        ("tie_at_zero", [0.0, 0.0, 1.0], (0, 1, 1), (0, 0, 1)),
        ("tie_at_negative_zero", [-0.0, 0.0, 1.0], (0, 1, 1), (0, 0, 1)),
        # A subnormal compares as 0: a tie.
        ("subnormal", [1e-40, 0.0, 1.0], (0, 1, 1), (0, 0, 1)),
        # The smallest normal float is above 0; just below it is subnormal.
        ("smallest_normal", [TINY, 0.0, 1.0], (0, 1, 1), (0, 1, 1)),
        ("negative_smallest_normal", [-TINY, -TINY, 1.0], (0, 1, 1), (0, 0, 1)),
        # Nudged down, the lowest float32 becomes -inf.
        ("lowest", [-3.4028235e38, -3.4028235e38, 1.0], (0, 1, 1), (0, 0, 1)),
        ("lowest_alone", [-3.4028235e38, 0.0, 1.0], (0, 0, 1), (0, 0, 1)),
        ("largest", [3.4028235e38, 3.4028235e38, 1.0], (1, 1, 1), (0, 1, 1)),
    )
    def test_true_class_zero(self, scores, inclusive, exclusive):
        ks = (1, 2, 3)
        logits = np.array([scores], np.float32)
        for ties, want in (("inclusive", inclusive), ("exclusive", exclusive)):
            self.assertEqual(
                oracle_counts([0], logits, ks, ties=ties).correct,
                tuple(map(float, want)),
            )
            for jit_compile in (False, True):
                metric = metrics.TopKAccuracies(ks, ties=ties, count_ties=True)
                with tf.device("/CPU:0"):
                    update = tf.function(
                        metric.update_state, jit_compile=jit_compile
                    )
                    update(tf.constant([0]), tf.constant(logits))
                self.assertEqual(
                    metric.counts().correct,
                    tuple(map(float, want)),
                    (ties, jit_compile),
                )
                ties_count = tuple(
                    float(i and not e) for i, e in zip(inclusive, exclusive)
                )
                self.assertEqual(metric.counts().ties, ties_count)

    def test_float64_scores_that_meet_in_float32(self):
        logits = np.array([[1.0 + 1e-12, 1.0, 0.0]], np.float64)
        metric = metrics.TopKAccuracy(k=1, ties="exclusive", count_ties=True)
        metric.update_state([1], logits)
        self.assertEqual(metric.counts().correct, (0.0,))
        self.assertEqual(metric.counts().ties, (1.0,))


if __name__ == "__main__":
    tf.test.main()
