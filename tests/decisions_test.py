"""Tests of the per-example decision (`tf_topk.decisions.decide`)."""

import doctest

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import decisions, metrics

# Row 0: class 2 alone on top. Row 1: classes 0 and 1 tie on top (label 0).
# Row 2: NaN. Row 3: class 1 second (label 1).
LOGITS = np.array(
    [
        [0.1, 0.2, 0.7],
        [0.4, 0.4, 0.2],
        [0.1, np.nan, 0.2],
        [0.5, 0.3, 0.2],
    ],
    np.float32,
)
LABELS = np.array([2, 0, 2, 1], np.int32)


class DecideTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_inclusive_fields(self):
        decided = decisions.decide(LABELS, LOGITS, (1, 2))
        self.assertAllEqual(
            decided.correct,
            [[True, True, False, False], [True, True, False, True]],
        )
        self.assertIsNone(decided.tie_decided)
        self.assertAllEqual(decided.nonfinite, [False, False, True, False])
        self.assertAllEqual(decided.invalid_label, [False] * 4)
        self.assertAllEqual(decided.has_label, [True] * 4)
        self.assertAllEqual(decided.labels, LABELS)
        self.assertEqual(decided.labels.dtype, tf.int32)

    @parameterized.named_parameters(
        ("inclusive", "inclusive", [True, True, False, False]),
        ("exclusive", "exclusive", [True, False, False, False]),
    )
    def test_tie_decided_row(self, ties, top1):
        decided = decisions.decide(
            LABELS, LOGITS, (1, 2), ties=ties, count_ties=True
        )
        self.assertAllEqual(decided.correct[0], top1)
        # Row 1's tie decides top-1 only: at k=2 both tied classes fit.
        self.assertAllEqual(
            decided.tie_decided,
            [[False, True, False, False], [False, False, False, False]],
        )

    def test_exclusive_counts_ties_without_count_ties(self):
        decided = decisions.decide(LABELS, LOGITS, (1,), ties="exclusive")
        self.assertIsNotNone(decided.tie_decided)

    def test_multi_label_judged_by_best_true_class(self):
        multi_hot = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 0]])
        decided = decisions.decide(multi_hot, LOGITS, (1,), multi_label=True)
        self.assertAllEqual(tf.gather(decided.labels, [0, 3]), [2, 0])
        self.assertAllEqual(decided.has_label, [True, False, True, True])
        self.assertAllEqual(decided.correct[0], [True, False, False, True])
        # A row without a label is neither correct nor non-finite.
        self.assertAllEqual(decided.nonfinite, [False, False, True, False])

    def test_bad_label_is_masked_under_xla(self):
        @tf.function(jit_compile=True)
        def decide(labels, logits):
            decided = decisions.decide(labels, logits, (1,))
            return decided.correct, decided.invalid_label

        correct, invalid = decide(
            tf.constant([2, 7], tf.int32), tf.constant(LOGITS[:2])
        )
        self.assertAllEqual(correct, [[True, False]])
        self.assertAllEqual(invalid, [False, True])

    def test_metrics_names_are_the_same_objects(self):
        self.assertIs(metrics.decide, decisions.decide)
        self.assertIs(metrics.Decisions, decisions.Decisions)

    def test_doctest(self):
        failures, attempted = doctest.testmod(decisions)
        self.assertGreaterEqual(attempted, 2)
        self.assertEqual(failures, 0)


if __name__ == "__main__":
    tf.test.main()
