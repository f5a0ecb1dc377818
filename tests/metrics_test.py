"""Specification of the streaming top-k metrics (`tf_topk.metrics`)."""

import dataclasses
import doctest
import math

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import metrics

NUM_CLASSES = 5

# 10 examples, 5 classes. Row i ranks its true class LABELS[i] at RANKS[i]
# (classes scoring strictly higher), so by hand: top1 = 4/10 (rows 0, 5, 6,
# 9), top3 = 8/10 (all but rows 3 and 4), top5 = 10/10.
LABELS = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4], np.int32)
RANKS = np.array([0, 1, 2, 3, 4, 0, 0, 1, 2, 0])
LOGITS = np.array(
    [
        [4, 3, 2, 1, 0],
        [4, 3, 2, 1, 0],
        [4, 3, 2, 1, 0],
        [4, 3, 2, 1, 0],
        [4, 3, 2, 1, 0],
        [4, 3, 2, 1, 0],
        [3, 4, 2, 1, 0],
        [4, 2, 3, 1, 0],
        [4, 3, 1, 2, 0],
        [0, 1, 2, 3, 4],
    ],
    np.float32,
)

LABEL_ERROR = (
    "Labels must be class indices in [0, 5) (num_classes=5). Received: "
    "label={label} for example {index} of the batch. Check the label offset "
    "(1-based labels need label_offset=1) and the model's number of classes."
)


def reference_rank(labels, logits):
    """Independent rank: the number of classes scoring strictly higher."""
    target = logits[np.arange(len(labels)), labels]
    return (logits > target[:, None]).sum(axis=1)


def batches(labels, logits, batch_size, weights=None):
    for start in range(0, len(labels), batch_size):
        part = slice(start, start + batch_size)
        weight = None if weights is None else weights[part]
        yield labels[part], logits[part], weight


def results(metric):
    return {k: float(v) for k, v in metric.result().items()}


def random_logits(num_examples, num_classes, seed):
    """Normal logits without ties in any row (checked)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(num_examples, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, num_examples).astype(np.int32)
    for row in logits:
        assert len(np.unique(row)) == num_classes
    return labels, logits


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


class ReferenceTest(tf.test.TestCase, parameterized.TestCase):
    """Random predictions without ties: Keras' built-ins and NumPy agree."""

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        ("batch8", 8, False, 0),
        ("batch16_weighted", 16, True, 1),
        ("one_batch_weighted", 37, True, 2),
        ("batch5", 5, False, 3),
    )
    def test_matches_keras_and_numpy(self, batch_size, weighted, seed):
        ks = (1, 2, 5, 20)
        labels, logits = random_logits(37, 20, seed)
        rng = np.random.default_rng(seed + 100)
        weights = rng.uniform(0, 2, 37).astype(np.float32) if weighted else None
        ours = metrics.TopKAccuracies(ks=ks, count_ties=True)
        dense = metrics.TopKAccuracies(ks=ks, sparse_labels=False)
        single = {k: metrics.TopKAccuracy(k=k) for k in ks}
        builtin = {
            k: keras.metrics.SparseTopKCategoricalAccuracy(k=k) for k in ks
        }
        builtin_dense = {
            k: keras.metrics.TopKCategoricalAccuracy(k=k) for k in ks
        }
        for y, x, w in batches(labels, logits, batch_size, weights):
            one_hot = np.eye(20, dtype=np.float32)[y]
            ours.update_state(y, x, sample_weight=w)
            dense.update_state(one_hot, x, sample_weight=w)
            for k in ks:
                single[k].update_state(y, x, sample_weight=w)
                builtin[k].update_state(y, x, sample_weight=w)
                builtin_dense[k].update_state(one_hot, x, sample_weight=w)

        rank = reference_rank(labels, logits)
        w = np.ones(37) if weights is None else weights.astype(np.float64)
        expected_correct = [float(w[rank < k].sum()) for k in ks]
        self.assertAllClose(ours.counts().correct, expected_correct)
        self.assertAllClose(ours.counts().num_examples, w.sum())
        self.assertEqual(ours.counts().ties, (0.0,) * len(ks))
        self.assertAllClose(dense.counts().correct, expected_correct)
        for i, k in enumerate(ks):
            want = expected_correct[i] / w.sum()
            self.assertAllClose(results(ours)[f"top{k}"], want)
            self.assertAllClose(float(single[k].result()), want)
            self.assertAllClose(float(builtin[k].result()), want)
            self.assertAllClose(float(builtin_dense[k].result()), want)
        self.assertEqual(results(ours)["top20"], 1.0)

    def test_tf_function_and_xla_match_eager(self):
        labels, logits = random_logits(37, 20, 7)
        logits[3] = 0.0  # all 20 classes tie: decided by it for every k
        counts = []
        for mode in ("eager", "function", "xla"):
            metric = metrics.TopKAccuracies(ks=(1, 2, 5), count_ties=True)
            update = metric.update_state
            if mode != "eager":
                update = tf.function(update, jit_compile=mode == "xla")
            for y, x, _ in batches(labels, logits, 8):
                update(tf.constant(y), tf.constant(x))
            counts.append(metric.counts())
        self.assertEqual(counts[1], counts[0])
        self.assertEqual(counts[2], counts[0])
        self.assertEqual(counts[0].ties, (1.0, 1.0, 1.0))


TINY = np.finfo(np.float32).tiny


def oracle_counts(labels, logits, ks, *, ties, weights=None, multi_hot=None):
    """Brute-force counts: every class compared with the true class.

    Independent of tf.math.in_top_k. Subnormal scores count as 0, as
    TensorFlow's CPU kernels compare them.
    """
    scores = np.asarray(logits, np.float32)
    scores = np.where(np.abs(scores) < TINY, np.float32(0), scores)
    rows = np.arange(len(scores))
    weight = np.ones(len(scores)) if weights is None else weights
    finite = np.isfinite(scores).all(axis=1)
    if multi_hot is None:
        has_label = np.ones(len(scores), bool)
        target = scores[rows, labels]
    else:
        # The best-scoring true class stands for the example.
        has_label = multi_hot.any(axis=1)
        target = np.where(multi_hot > 0, scores, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):
        above = (scores > target[:, None]).sum(axis=1)
        at_least = (scores >= target[:, None]).sum(axis=1)
    usable = finite & has_label
    inclusive = [usable & (above < k) for k in ks]
    exclusive = [usable & (at_least <= k) for k in ks]
    correct = inclusive if ties == "inclusive" else exclusive

    def total(mask):
        return float(weight[mask].sum())

    return metrics.Counts(
        ks=tuple(ks),
        correct=tuple(total(mask) for mask in correct),
        num_examples=total(has_label),
        ties=tuple(total(i & ~e) for i, e in zip(inclusive, exclusive)),
        nonfinite=total(has_label & ~finite),
        invalid_labels=0.0,
        unlabeled=total(~has_label),
    )


def tied_logits(num_examples, num_classes, seed):
    """Small whole-number scores (ties everywhere), NaN and Inf sprinkled."""
    rng = np.random.default_rng(seed)
    levels = max(4, num_classes // 8)
    logits = rng.integers(0, levels, (num_examples, num_classes))
    logits = logits.astype(np.float32)
    labels = rng.integers(0, num_classes, num_examples).astype(np.int32)
    logits[1, -1] = np.nan
    logits[2, labels[2]] = np.inf  # the true class itself
    logits[3, 0] = -np.inf
    logits[4] = np.nan  # every score
    logits[5] = 2.0  # every class tied with the true one
    logits[6, labels[6]] = levels  # alone at the top
    return labels, logits


def update_in(mode, metric):
    if mode == "eager":
        return metric.update_state
    return tf.function(metric.update_state, jit_compile=mode == "xla")


class OracleTest(tf.test.TestCase, parameterized.TestCase):
    """Counts against a brute-force NumPy oracle, eagerly, in a graph and
    under XLA, in batches of 7 (a partial last batch)."""

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def check(self, labels, logits, ks, *, weights=None, multi_hot=None):
        y_true = labels if multi_hot is None else multi_hot
        for ties in ("inclusive", "exclusive"):
            want = oracle_counts(
                labels,
                logits,
                ks,
                ties=ties,
                weights=weights,
                multi_hot=multi_hot,
            )
            for mode in ("eager", "function", "xla"):
                options = dict(multi_label=multi_hot is not None, ties=ties)
                counting = metrics.TopKAccuracies(
                    ks, count_ties=True, **options
                )
                plain = metrics.TopKAccuracies(ks, **options)
                updates = [update_in(mode, m) for m in (counting, plain)]
                for y, x, w in batches(y_true, logits, 7, weights):
                    for update in updates:
                        update(tf.constant(y), tf.constant(x), w)
                self.assertEqual(counting.counts(), want, (ties, mode))
                no_ties = dataclasses.replace(want, ties=None)
                self.assertEqual(plain.counts(), no_ties, (ties, mode))

    @parameterized.named_parameters(
        ("five_classes", 23, 5, (1, 3, 5)),
        ("k_is_num_classes", 12, 3, (1, 2, 3)),
        ("imagenet_size", 30, 1000, (1, 5, 1000)),
        ("many_classes", 9, 1500, (1, 5, 100)),
    )
    def test_tied_and_nonfinite(self, num_examples, num_classes, ks):
        labels, logits = tied_logits(num_examples, num_classes, num_classes)
        self.check(labels, logits, ks)

    def test_sample_weights(self):
        labels, logits = tied_logits(23, 5, 1)
        rng = np.random.default_rng(2)
        # Multiples of 1/2, so every sum is exact in any order.
        weights = rng.integers(0, 5, 23) / 2
        self.check(labels, logits, (1, 2, 5), weights=weights)

    def test_multi_label(self):
        labels, logits = tied_logits(23, 6, 3)
        rng = np.random.default_rng(4)
        multi_hot = (rng.random((23, 6)) < 0.3).astype(np.float32)
        multi_hot[7] = 0.0  # no true label: left out
        self.check(labels, logits, (1, 2, 6), multi_hot=multi_hot)

    @parameterized.named_parameters(
        ("float16", tf.float16),
        ("bfloat16", tf.bfloat16),
        ("float64", tf.float64),
    )
    def test_dtypes(self, dtype):
        # Normal logits: the cast to a narrow dtype creates the ties.
        rng = np.random.default_rng(5)
        logits = 1.0 + 0.002 * rng.normal(size=(23, 40))
        logits[3, 2] = np.nan
        labels = rng.integers(0, 40, 23).astype(np.int32)
        cast = tf.cast(tf.constant(logits), dtype)
        as_float32 = tf.cast(cast, tf.float32).numpy()
        for ties in ("inclusive", "exclusive"):
            want = oracle_counts(labels, as_float32, (1, 5, 40), ties=ties)
            metric = metrics.TopKAccuracies(
                (1, 5, 40), ties=ties, count_ties=True
            )
            metric.update_state(labels, cast)
            self.assertEqual(metric.counts(), want, ties)
        if dtype != tf.float64:
            self.assertGreater(sum(want.ties), 0)

    def test_inclusive_decisions_are_in_top_k(self):
        # On CPU in_top_k itself calls a non-finite row wrong.
        labels, logits = tied_logits(40, 30, 6)
        for k in (1, 2, 5, 30):
            self.assertAllEqual(
                metrics.top_k_correct(labels, logits, k),
                tf.math.in_top_k(labels, logits, k),
                f"k={k}",
            )

    def test_xla_nan_rows_and_bad_labels_are_masked(self):
        # XLA's in_top_k says True for these rows (TensorFlow issues 118376,
        # 127909); the metric counts them wrong.
        labels = tf.constant([0, 7, 1])
        logits = tf.constant(
            [[np.nan] * 5, [-1, -2, -3, -4, -5], [0, 1, 2, 3, 4]], tf.float32
        )
        metric = metrics.TopKAccuracies(ks=(1, 5), count_ties=True)
        tf.function(metric.update_state, jit_compile=True)(labels, logits)
        counts = metric.counts()
        self.assertEqual(counts.correct, (0.0, 1.0))
        self.assertEqual(counts.nonfinite, 1.0)
        self.assertEqual(counts.invalid_labels, 1.0)
        self.assertEqual(counts.ties, (0.0, 0.0))


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


class KerasIntegrationTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def identity_model(self):
        """Logits equal to the inputs, so hand counts hold."""
        inputs = keras.Input(shape=(NUM_CLASSES,))
        outputs = keras.layers.Dense(
            NUM_CLASSES, kernel_initializer="identity", name="logits"
        )(inputs)
        return keras.Model(inputs, outputs)

    @parameterized.named_parameters(("graph", False), ("xla", True))
    def test_fit_and_evaluate(self, jit_compile):
        model = self.identity_model()
        model.compile(
            # Learning rate 0: the weights stay the identity.
            optimizer=keras.optimizers.SGD(learning_rate=0.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[
                metrics.TopKAccuracies(ks=(1, 5)),
                metrics.TopKAccuracy(k=3, ties="exclusive"),
            ],
            jit_compile=jit_compile,
        )
        history = model.fit(
            LOGITS,
            LABELS,
            batch_size=4,
            epochs=1,
            validation_data=(LOGITS, LABELS),
            verbose=0,
        )
        logs = {key: value[-1] for key, value in history.history.items()}
        for prefix in ("", "val_"):
            self.assertAllClose(logs[f"{prefix}top1"], 0.4)
            self.assertAllClose(logs[f"{prefix}top3"], 0.8)
            self.assertAllClose(logs[f"{prefix}top5"], 1.0)
        evaluated = model.evaluate(
            LOGITS, LABELS, batch_size=4, return_dict=True, verbose=0
        )
        self.assertEqual(set(evaluated), {"loss", "top1", "top3", "top5"})
        self.assertAllClose(evaluated["top1"], 0.4)
        self.assertAllClose(evaluated["top3"], 0.8)
        self.assertAllClose(evaluated["top5"], 1.0)

    def test_save_and_load_keras_file(self):
        model = self.identity_model()
        model.compile(
            loss="sparse_categorical_crossentropy",
            metrics=[
                metrics.TopKAccuracies(ks=(1, 3), ties="exclusive"),
                metrics.TopKAccuracy(k=5, name="five"),
            ],
        )
        before = model.evaluate(LOGITS, LABELS, return_dict=True, verbose=0)
        path = self.create_tempdir().full_path + "/model.keras"
        model.save(path)
        keras.backend.clear_session()
        loaded = keras.models.load_model(path)
        after = loaded.evaluate(LOGITS, LABELS, return_dict=True, verbose=0)
        self.assertEqual(set(after), {"loss", "top1", "top3", "five"})
        self.assertAllClose(after, before)
        self.assertAllClose(after["top1"], 0.4)
        # The compiled metrics sit in a container beside the loss tracker.
        flat = [
            metric
            for container in loaded.metrics
            for metric in getattr(container, "metrics", [container])
        ]
        restored = {
            type(m).__name__: m
            for m in flat
            if isinstance(m, (metrics.TopKAccuracies, metrics.TopKAccuracy))
        }
        self.assertEqual(restored["TopKAccuracies"].ks, (1, 3))
        self.assertEqual(restored["TopKAccuracies"].ties, "exclusive")
        self.assertEqual(restored["TopKAccuracy"].k, 5)
        self.assertEqual(restored["TopKAccuracy"].name, "five")

    def test_get_config_from_config(self):
        originals = [
            metrics.TopKAccuracies(
                ks=(5, 1), ties="exclusive", name="acc", dtype="float64"
            ),
            metrics.TopKAccuracy(k=3, sparse_labels=False),
            metrics.TopKAccuracies(ks=(1,), multi_label=True, count_ties=True),
            metrics.PerClassTopKAccuracy(7, k=2, ties="exclusive"),
        ]
        for original in originals:
            config = original.get_config()
            clone = type(original).from_config(config)
            self.assertEqual(clone.get_config(), config)
            serialized = keras.saving.serialize_keras_object(original)
            self.assertEqual(
                serialized["registered_name"].split(">")[0], "tf_topk"
            )
            revived = keras.saving.deserialize_keras_object(serialized)
            self.assertIsInstance(revived, type(original))
            self.assertEqual(revived.get_config(), config)
        self.assertEqual(originals[0].get_config()["ks"], [1, 5])
        self.assertEqual(originals[0].get_config()["name"], "acc")
        self.assertEqual(originals[1].get_config()["k"], 3)
        self.assertFalse(originals[1].get_config()["sparse_labels"])
        self.assertTrue(originals[2].get_config()["multi_label"])
        self.assertTrue(originals[2].get_config()["count_ties"])
        self.assertFalse(originals[1].get_config()["count_ties"])
        self.assertNotIn("ks", originals[1].get_config())
        self.assertEqual(originals[3].get_config()["num_classes"], 7)


class DistributedTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        # 9 rows in batches of 4: the last batch of 1 leaves a replica empty.
        ("partial_batch", 9, 4),
        ("even", 10, 2),
    )
    def test_mirrored_counts_equal_one_device(self, num_examples, batch_size):
        devices = conftest.logical_cpus(2)
        labels, logits = random_logits(num_examples, NUM_CLASSES, 11)
        logits[0] = 0.0  # a tie
        logits[1, 2] = np.nan
        weights = np.linspace(0.0, 2.0, num_examples).astype(np.float32)
        dataset = tf.data.Dataset.from_tensor_slices((labels, logits, weights))
        dataset = dataset.batch(batch_size)

        single = metrics.TopKAccuracies(ks=(1, 3), count_ties=True)
        single_per_class = metrics.PerClassTopKAccuracy(NUM_CLASSES, k=3)
        for y, x, w in dataset:
            single.update_state(y, x, w)
            single_per_class.update_state(y, x, w)

        strategy = tf.distribute.MirroredStrategy(devices)
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        with strategy.scope():
            mirrored = metrics.TopKAccuracies(ks=(1, 3), count_ties=True)
            per_class = metrics.PerClassTopKAccuracy(NUM_CLASSES, k=3)

        @tf.function
        def step(y, x, w):
            mirrored.update_state(y, x, w)
            per_class.update_state(y, x, w)

        for batch in strategy.experimental_distribute_dataset(dataset):
            strategy.run(step, args=batch)
        self.assertAllClose(mirrored.counts().correct, single.counts().correct)
        self.assertAllClose(
            mirrored.counts().num_examples, single.counts().num_examples
        )
        self.assertAllClose(mirrored.counts().ties, single.counts().ties)
        self.assertAllClose(
            mirrored.counts().nonfinite, single.counts().nonfinite
        )
        self.assertGreater(single.counts().nonfinite, 0)
        self.assertAllClose(per_class.counts(), single_per_class.counts())
        self.assertAllClose(results(mirrored), results(single))
        # This worker's replicas hold everything, summed without a collective.
        correct, count = mirrored.local_counts(strategy)
        self.assertAllClose(correct, single.counts().correct)
        self.assertAllClose(count, single.counts().num_examples)

    def test_mirrored_model_evaluate(self):
        devices = conftest.logical_cpus(2)
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            inputs = keras.Input(shape=(NUM_CLASSES,))
            outputs = keras.layers.Dense(
                NUM_CLASSES, kernel_initializer="identity"
            )(inputs)
            model = keras.Model(inputs, outputs)
            model.compile(
                loss="sparse_categorical_crossentropy",
                metrics=[metrics.TopKAccuracies(ks=(1, 3, 5))],
            )
        evaluated = model.evaluate(
            LOGITS, LABELS, batch_size=4, return_dict=True, verbose=0
        )
        self.assertAllClose(evaluated["top1"], 0.4)
        self.assertAllClose(evaluated["top3"], 0.8)
        self.assertAllClose(evaluated["top5"], 1.0)


if __name__ == "__main__":
    tf.test.main()
