"""Argument and label validation: the messages, eagerly, in a graph, under
XLA (where bad labels are counted and the result is NaN)."""

import math

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    LABEL_ERROR,
    LABELS,
    LOGITS,
    results,
)

from tf_topk import metrics


class ValidationTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        ("too_large", 5, 3), ("negative", -1, 2), ("far_too_large", 1000, 0)
    )
    def test_bad_label_raises_eagerly(self, label, index):
        labels = np.array([0, 1, 2, 3], np.int32)
        labels[index] = label
        metric = metrics.TopKAccuracy(k=1)
        with self.assertRaisesWithLiteralMatch(
            ValueError, LABEL_ERROR.format(label=label, index=index)
        ):
            metric.update_state(labels, LOGITS[:4])
        self.assertEqual(metric.counts().num_examples, 0.0)

    def test_bad_label_raises_in_tf_function(self):
        metric = metrics.TopKAccuracies(ks=(1, 5))
        update = tf.function(metric.update_state)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            r"(?s)Labels must be class indices in \[0, num_classes\)\. "
            r"Received label:.*\[7\].*num_classes:.*5",
        ):
            update(tf.constant([0, 7, 2]), tf.constant(LOGITS[:3]))

    def test_assertions_raise_in_a_graph_and_compile_away_under_xla(self):
        # The public behaviour the metrics rely on (no XLA-context probe):
        # tf.debugging.Assert raises in a graph and is a no-op under XLA.
        def check(x):
            tf.debugging.Assert(tf.reduce_all(x > 0), ["x must be > 0", x])
            return x + 1

        negative = tf.constant([-1.0])
        with self.assertRaises(tf.errors.InvalidArgumentError):
            tf.function(check)(negative)
        self.assertAllEqual(tf.function(check, jit_compile=True)(negative), [0])
        metric = metrics.TopKAccuracy(k=1)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, "must be whole class indices"
        ):
            tf.function(metric.update_state)(
                tf.constant([0.5, 1.0]), tf.constant(LOGITS[:2])
            )

    def test_k_above_unknown_num_classes_raises_in_a_graph(self):
        update = tf.function(
            metrics.TopKAccuracy(k=5).update_state,
            input_signature=[
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None, None], tf.float32),
            ],
        )
        update(tf.constant([0]), tf.zeros([1, 5]))
        with self.assertRaises(tf.errors.InvalidArgumentError):
            update(tf.constant([0]), tf.zeros([1, 3]))

    def test_bad_label_counted_under_xla(self):
        metric = metrics.TopKAccuracies(ks=(1, 5))
        update = tf.function(metric.update_state, jit_compile=True)
        update(tf.constant([0, 7, -1, 2]), tf.constant(LOGITS[:4]))
        counts = metric.counts()
        self.assertEqual(counts.invalid_labels, 2.0)
        self.assertEqual(counts.correct, (1.0, 2.0))
        self.assertEqual(counts.num_examples, 4.0)
        for value in results(metric).values():
            self.assertTrue(math.isnan(value))

    def test_k_validation_messages(self):
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `k` must be a positive integer. Received: k=0",
        ):
            metrics.TopKAccuracy(k=0)
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `k` must be a positive integer. Received: k=2.0",
        ):
            metrics.TopKAccuracy(k=2.0)
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `ks` must hold positive integers, e.g. ks=(1, 5). "
            "Received: ks=(1, -1) (bad value: -1)",
        ):
            metrics.TopKAccuracies(ks=(1, -1))
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `ks` must be a non-empty sequence of positive "
            "integers, e.g. ks=(1, 5). Received: ks=()",
        ):
            metrics.TopKAccuracies(ks=())
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `ks` must not repeat a value. Received: ks=(1, 5, 1)",
        ):
            metrics.TopKAccuracies(ks=(1, 5, 1))
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `ties` must be one of ['inclusive', 'exclusive']. "
            "Received: ties='strict'",
        ):
            metrics.TopKAccuracies(ties="strict")

    def test_k_above_num_classes_raises(self):
        message = (
            "Argument `k` must be at most the number of classes (5). "
            "Received: k=6"
        )
        with self.assertRaisesWithLiteralMatch(ValueError, message):
            metrics.TopKAccuracy(k=6).update_state(LABELS, LOGITS)
        with self.assertRaisesWithLiteralMatch(ValueError, message):
            metrics.TopKAccuracies(ks=(1, 6)).update_state(LABELS, LOGITS)
        with self.assertRaisesWithLiteralMatch(ValueError, message):
            metrics.PerClassTopKAccuracy(5, k=6)

    def test_predictions_validation(self):
        metric = metrics.TopKAccuracy(k=1)
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `predictions` must have shape [batch, num_classes]. "
            "Received: shape=(5,)",
        ):
            metric.update_state([0], LOGITS[0])
        with self.assertRaisesWithLiteralMatch(
            TypeError,
            "Argument `predictions` must hold real numbers. "
            "Received: dtype=bool",
        ):
            metric.update_state([0], [[True, False]])

    def test_per_class_num_classes_mismatch(self):
        metric = metrics.PerClassTopKAccuracy(4)
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Predictions have 5 classes but the metric was built with "
            "num_classes=4. Pass num_classes=5.",
        ):
            metric.update_state(LABELS, LOGITS)


if __name__ == "__main__":
    tf.test.main()
