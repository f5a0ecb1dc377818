"""Label forms the top-k metrics take: [B, 1], whole floats, one-hot and
probabilities, multi-hot (ImageNet-ReaL)."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    LABELS,
    LOGITS,
    NUM_CLASSES,
    results,
)

from tf_topk import metrics


class LabelFormsTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_labels_of_shape_batch_by_one(self):
        metric = metrics.TopKAccuracy(k=3)
        metric.update_state(LABELS[:, None], LOGITS)
        self.assertAllClose(metric.result(), 0.8)

    def test_float_labels_holding_whole_numbers(self):
        metric = metrics.TopKAccuracy(k=1)
        metric.update_state(LABELS.astype(np.float32), LOGITS)
        self.assertAllClose(metric.result(), 0.4)
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `labels` must be whole class indices. Received: "
            "labels=[0.5, 1.0]",
        ):
            metric.update_state(np.array([0.5, 1.0]), LOGITS[:2])

    @parameterized.named_parameters(
        ("one_hot", np.eye(NUM_CLASSES)[LABELS]),
        # Soft labels reduce to their argmax.
        ("probabilities", 0.6 * np.eye(NUM_CLASSES)[LABELS] + 0.08),
    )
    def test_dense_labels(self, dense):
        metric = metrics.TopKAccuracies(ks=(1, 3, 5), sparse_labels=False)
        metric.update_state(dense.astype(np.float32), LOGITS)
        self.assertEqual(metric.counts().correct, (4.0, 8.0, 10.0))
        with self.assertRaisesRegex(ValueError, "shape=\\(10,\\)"):
            metric.update_state(LABELS, LOGITS)

    def test_sparse_labels_of_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, "sparse_labels=False"):
            metrics.TopKAccuracy(k=1).update_state(
                np.eye(NUM_CLASSES)[LABELS], LOGITS
            )

    def test_multi_label_real_style(self):
        # Row 0: {3, 4}, scores rank 3 first -> top1. Row 1: {4}, rank 4
        # -> top5 only. Row 2: no label -> left out. Row 3: {1, 2}, best
        # true class 1 at rank 1 -> top2.
        multi_hot = np.array(
            [
                [0, 0, 0, 1, 1],
                [0, 0, 0, 0, 1],
                [0, 0, 0, 0, 0],
                [0, 1, 1, 0, 0],
            ],
            np.float32,
        )
        logits = np.array(
            [
                [0, 1, 2, 4, 3],
                [4, 3, 2, 1, 0],
                [4, 3, 2, 1, 0],
                [4, 3, 2, 1, 0],
            ],
            np.float32,
        )
        metric = metrics.TopKAccuracies(ks=(1, 2, 5), multi_label=True)
        metric.update_state(multi_hot, logits)
        counts = metric.counts()
        self.assertEqual(counts.correct, (1.0, 2.0, 3.0))
        self.assertEqual(counts.num_examples, 3.0)
        self.assertEqual(counts.unlabeled, 1.0)
        self.assertAllClose(
            results(metric), {"top1": 1 / 3, "top2": 2 / 3, "top5": 1.0}
        )
        self.assertAllEqual(
            metrics.top_k_correct(multi_hot, logits, 2, multi_label=True),
            [True, False, False, True],
        )


if __name__ == "__main__":
    tf.test.main()
