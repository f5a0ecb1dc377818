"""`PerClassTopKAccuracy`: hand-checked vectors, absent classes, weights."""

import keras
import numpy as np
import tensorflow as tf
from metrics_helpers import (
    LABEL_ERROR,
    LABELS,
    LOGITS,
    NUM_CLASSES,
    batches,
)

from tf_topk import metrics


class PerClassTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_hand_vector(self):
        # Per class top1: class 0 rows 0, 5 -> 1; class 1 rows 1 x, 6 v ->
        # 0.5; classes 2, 3 -> 0; class 4 rows 4 x, 9 v -> 0.5.
        metric = metrics.PerClassTopKAccuracy(NUM_CLASSES)
        self.assertEqual(metric.name, "per_class_top1")
        for labels, logits, _ in batches(LABELS, LOGITS, 4):
            metric.update_state(labels, logits)
        self.assertAllEqual(metric.result(), [1.0, 0.5, 0.0, 0.0, 0.5])
        correct, count = metric.counts()
        self.assertAllEqual(correct, [2, 1, 0, 0, 1])
        self.assertAllEqual(count, [2, 2, 2, 2, 2])
        top3 = metrics.PerClassTopKAccuracy(NUM_CLASSES, k=3)
        top3.update_state(LABELS, LOGITS)
        self.assertAllEqual(top3.result(), [1.0, 1.0, 1.0, 0.5, 0.5])

    def test_absent_class_is_nan(self):
        metric = metrics.PerClassTopKAccuracy(NUM_CLASSES)
        metric.update_state(LABELS[:4], LOGITS[:4])
        self.assertAllEqual(metric.result(), [1.0, 0.0, 0.0, 0.0, np.nan])

    def test_weights_nonfinite_and_reset(self):
        logits = LOGITS.copy()
        logits[0, 1] = np.nan
        metric = metrics.PerClassTopKAccuracy(NUM_CLASSES)
        weights = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], np.float32)
        metric.update_state(LABELS, logits, sample_weight=weights)
        self.assertAllEqual(metric.result(), [0.5, 0.5, 0, 0, 0])
        self.assertAllEqual(metric.counts()[1], [2, 2, 2, 2, 1])
        metric.reset_state()
        self.assertAllEqual(metric.counts()[1], [0] * 5)
        self.assertTrue(np.isnan(metric.result().numpy()).all())

    def test_bad_label_raises(self):
        with self.assertRaisesWithLiteralMatch(
            ValueError, LABEL_ERROR.format(label=5, index=1)
        ):
            metrics.PerClassTopKAccuracy(NUM_CLASSES).update_state(
                [0, 5], LOGITS[:2]
            )


if __name__ == "__main__":
    tf.test.main()
