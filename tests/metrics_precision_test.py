"""Prediction dtypes: every real dtype is ranked as float32."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    LABELS,
    LOGITS,
)

from tf_topk import metrics


class DtypeTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        ("float16", tf.float16),
        ("bfloat16", tf.bfloat16),
        ("float32", tf.float32),
        ("float64", tf.float64),
        ("int32", tf.int32),
    )
    def test_prediction_dtypes(self, dtype):
        logits = tf.cast(tf.constant(LOGITS), dtype)
        metric = metrics.TopKAccuracies(ks=(1, 3, 5))
        metric.update_state(tf.constant(LABELS, tf.int64), logits)
        self.assertEqual(metric.counts().correct, (4.0, 8.0, 10.0))
        in_function = metrics.TopKAccuracies(ks=(1, 3, 5))
        tf.function(in_function.update_state)(LABELS, logits)
        self.assertEqual(in_function.counts(), metric.counts())

    def test_float16_rounding_creates_ties(self):
        # 1.0001 and 1.0002 are equal in float16: a tie, counted.
        logits = np.array([[1.0001, 1.0002, 0.0]])
        metric = metrics.TopKAccuracy(k=1, count_ties=True)
        metric.update_state([0], tf.constant(logits, tf.float16))
        self.assertEqual(float(metric.result()), 1.0)
        self.assertEqual(metric.counts().ties, (1.0,))

    def test_result_dtype(self):
        metric = metrics.TopKAccuracy(k=1, dtype="float64")
        metric.update_state(LABELS, LOGITS)
        self.assertEqual(metric.result().dtype, tf.float64)
        self.assertEqual(metrics.TopKAccuracy(1).result().dtype, tf.float32)


if __name__ == "__main__":
    tf.test.main()
