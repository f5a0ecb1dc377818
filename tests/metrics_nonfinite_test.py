"""Non-finite rows: wrong and counted, eagerly, in a graph and under XLA."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    LABELS,
    LOGITS,
)

from tf_topk import metrics


class NonFiniteTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        ("eager", False, False), ("function", True, False), ("xla", True, True)
    )
    def test_nonfinite_rows_are_wrong_and_counted(self, in_function, jit):
        logits = LOGITS.copy()
        logits[0, 3] = np.nan  # not the true class, still the whole row
        logits[5, 0] = np.inf  # the true class itself
        logits[6, 4] = -np.inf
        weights = np.ones(10, np.float32)
        weights[6] = 0.0  # a masked non-finite row is not counted
        metric = metrics.TopKAccuracies(ks=(1, 3, 5))
        update = metric.update_state
        if in_function:
            update = tf.function(update, jit_compile=jit)
        update(tf.constant(LABELS), tf.constant(logits), tf.constant(weights))
        counts = metric.counts()
        # Hand counts without rows 0, 5 (wrong) and 6 (masked): top1 rows
        # 9 -> 1; top3 rows 1, 2, 7, 8, 9 -> 5; top5 -> 7 of 9.
        self.assertEqual(counts.correct, (1.0, 5.0, 7.0))
        self.assertEqual(counts.num_examples, 9.0)
        self.assertEqual(counts.nonfinite, 2.0)

    def test_large_finite_scores_are_not_nonfinite(self):
        # The batch sum overflows float32 but every row is finite.
        logits = np.array([[3e38, 3e38, 0.0], [0.0, 3e38, 3e38]], np.float32)
        metric = metrics.TopKAccuracies(ks=(1, 2), count_ties=True)
        metric.update_state([0, 2], logits)
        self.assertEqual(metric.counts().nonfinite, 0.0)
        self.assertEqual(metric.counts().correct, (2.0, 2.0))
        self.assertEqual(metric.counts().ties, (2.0, 0.0))


if __name__ == "__main__":
    tf.test.main()
