"""Tests of the metrics' argument checks (`tf_topk.metric_arguments`)."""

import doctest

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import metric_arguments, metrics

SCORES = tf.constant([[0.1, 0.2, 0.7], [0.4, 0.4, 0.2]], tf.float32)


class ValidateTest(tf.test.TestCase, parameterized.TestCase):
    def test_validate_k(self):
        self.assertEqual(metric_arguments.validate_k(np.int64(3)), 3)
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `num_classes` must be a positive integer. "
            "Received: num_classes=True",
        ):
            metric_arguments.validate_k(True, "num_classes")

    def test_validate_ks(self):
        self.assertEqual(metric_arguments.validate_ks(5), (5,))
        self.assertEqual(metric_arguments.validate_ks([5, 1]), (1, 5))
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `ks` must not repeat a value. Received: ks=(5, 5)",
        ):
            metric_arguments.validate_ks((5, 5))

    def test_validate_ties(self):
        self.assertEqual(
            metric_arguments.validate_ties("exclusive"), "exclusive"
        )
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `ties` must be one of ['inclusive', 'exclusive']. "
            "Received: ties='strict'",
        ):
            metric_arguments.validate_ties("strict")

    def test_check_k_fits(self):
        metric_arguments.check_k_fits((1, 3), 3)
        metric_arguments.check_k_fits((1, 30), None)
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `k` must be at most the number of classes (3). "
            "Received: k=5",
        ):
            metric_arguments.check_k_fits((1, 5), 3)

    def test_metrics_names_are_the_same_objects(self):
        for name in ("validate_k", "validate_ks", "validate_ties"):
            self.assertIs(
                getattr(metrics, name), getattr(metric_arguments, name)
            )
        self.assertIs(metrics.check_k_fits, metric_arguments.check_k_fits)

    def test_doctest(self):
        failures, attempted = doctest.testmod(metric_arguments)
        self.assertGreaterEqual(attempted, 2)
        self.assertEqual(failures, 0)


class ConvertTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("float16", np.float16), ("float64", np.float64), ("int32", np.int32)
    )
    def test_scores_are_float32(self, dtype):
        scores = metric_arguments.scores(np.ones((2, 3), dtype), (1,))
        self.assertEqual(scores.dtype, tf.float32)

    def test_scores_errors(self):
        with self.assertRaisesRegex(TypeError, "dtype=string"):
            metric_arguments.scores(tf.constant([["a"]]), (1,))
        with self.assertRaisesRegex(ValueError, r"shape=\(3,\)"):
            metric_arguments.scores(np.ones(3), (1,))

    @parameterized.named_parameters(
        ("column", [[2], [0]]),
        ("whole_floats", [2.0, 0.0]),
        ("int64", np.array([2, 0], np.int64)),
    )
    def test_sparse_class_indices(self, labels):
        found, has_label, in_range = metric_arguments.class_indices(
            labels, SCORES, sparse=True, multi_label=False
        )
        self.assertEqual(found.dtype, tf.int32)
        self.assertAllEqual(found, [2, 0])
        self.assertAllEqual(has_label, [True, True])
        self.assertAllEqual(in_range, [True, True])

    def test_dense_and_multi_hot_labels(self):
        found, _, _ = metric_arguments.class_indices(
            [[0.1, 0.8, 0.1], [0.0, 0.0, 1.0]],
            SCORES,
            sparse=False,
            multi_label=False,
        )
        self.assertAllEqual(found, [1, 2])
        found, has_label, _ = metric_arguments.class_indices(
            [[1, 1, 0], [0, 0, 0]], SCORES, sparse=True, multi_label=True
        )
        self.assertAllEqual(found[0], 1)  # The best-scoring true class.
        self.assertAllEqual(has_label, [True, False])

    def test_out_of_range_label_is_masked_in_a_graph_under_xla(self):
        @tf.function(jit_compile=True)
        def convert(labels):
            return metric_arguments.class_indices(
                labels, SCORES, sparse=True, multi_label=False
            )[2]

        self.assertAllEqual(convert(tf.constant([2, 3])), [True, False])

    def test_out_of_range_label_raises_eagerly(self):
        with self.assertRaisesRegex(
            ValueError, r"Received: label=-1 for example 1 of the batch"
        ):
            metric_arguments.class_indices(
                [0, -1], SCORES, sparse=True, multi_label=False
            )

    def test_weights(self):
        self.assertAllEqual(metric_arguments.weights(None, 2), [1.0, 1.0])
        self.assertAllEqual(metric_arguments.weights(0.5, 2), [0.5, 0.5])
        weights = metric_arguments.weights([[2], [0]], 2)
        self.assertEqual(weights.dtype, tf.float64)
        self.assertAllEqual(weights, [2.0, 0.0])
        with self.assertRaisesRegex(ValueError, r"shape=\(2, 2\)"):
            metric_arguments.weights(np.ones((2, 2)), 2)


if __name__ == "__main__":
    tf.test.main()
