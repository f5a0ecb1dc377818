"""Specification of the streaming top-k metrics (`tf_topk.metrics`)."""

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
        metric = metrics.TopKAccuracies(ks=(1, 3, 5))
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
        self.assertGreaterEqual(attempted, 11)
        self.assertEqual(failures, 0)


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
            metric = metrics.TopKAccuracies(ks=(1, 5), ties=ties)
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
        inclusive = metrics.TopKAccuracies(ks=ks)
        inclusive.update_state(labels, logits)
        exclusive = metrics.TopKAccuracies(ks=ks, ties="exclusive")
        exclusive.update_state(labels, logits)
        self.assertEqual(inclusive.counts().correct, (0, 1, 1, 1, 1))
        self.assertEqual(exclusive.counts().correct, (0, 0, 0, 1, 1))
        self.assertEqual(inclusive.counts().ties, (0, 1, 1, 0, 0))
        self.assertEqual(exclusive.counts().ties, (0, 1, 1, 0, 0))

    def test_tie_inside_top_k_decides_nothing(self):
        # Classes 0 and 1 tie for first; both fit in the top 2.
        labels = np.array([0, 1], np.int32)
        logits = np.array([[3, 3, 1, 0, 0]] * 2, np.float32)
        metric = metrics.TopKAccuracies(ks=(1, 2), ties="exclusive")
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
        metric = metrics.TopKAccuracies(ks=(1, 2))
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
        metric = metrics.TopKAccuracy(k=1)
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
        ours = metrics.TopKAccuracies(ks=ks)
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
            metric = metrics.TopKAccuracies(ks=(1, 2, 5))
            update = metric.update_state
            if mode != "eager":
                update = tf.function(update, jit_compile=mode == "xla")
            for y, x, _ in batches(labels, logits, 8):
                update(tf.constant(y), tf.constant(x))
            counts.append(metric.counts())
        self.assertEqual(counts[1], counts[0])
        self.assertEqual(counts[2], counts[0])
        self.assertEqual(counts[0].ties, (1.0, 1.0, 1.0))


class RankCountsTest(tf.test.TestCase, parameterized.TestCase):
    """The fused rank count, on batches big enough to run through XLA."""

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def tied_logits(self, num_examples, num_classes, seed):
        """Small integer scores (ties everywhere) with NaN/Inf sprinkled."""
        rng = np.random.default_rng(seed)
        logits = rng.integers(0, 6, (num_examples, num_classes))
        logits = logits.astype(np.float32)
        labels = rng.integers(0, num_classes, num_examples).astype(np.int32)
        logits[1, 7] = np.nan
        logits[2, labels[2]] = np.inf  # the true class itself
        logits[3, 0] = -np.inf
        logits[4] = np.nan  # every score
        logits[5] = 3.0  # every class tied with the true one
        return labels, logits

    @parameterized.named_parameters(
        # 128 x 1000 and 50 x 1500 are above the plain-op size, so they run
        # compiled; 1500 classes take the int64 fields, 1023 the widest
        # int32 ones.
        ("int32_fields", 128, 1000),
        ("int32_fields_full", 70, 1023),
        ("int64_fields", 50, 1500),
        ("plain_ops", 9, 40),
    )
    def test_matches_numpy_and_in_top_k(self, num_examples, num_classes):
        labels, logits = self.tied_logits(num_examples, num_classes, 0)
        ks = (1, 5, 100 if num_classes > 100 else num_classes)
        inclusive = metrics.decide(labels, logits, ks)
        exclusive = metrics.decide(labels, logits, ks, ties="exclusive")

        finite = np.isfinite(logits).all(axis=1)
        target = logits[np.arange(num_examples), labels][:, None]
        above = (logits > target).sum(axis=1)
        at_least = (logits >= target).sum(axis=1)
        self.assertAllEqual(inclusive.nonfinite, ~finite)
        self.assertEqual(int((~finite).sum()), 4)
        for i, k in enumerate(ks):
            want_inclusive = finite & (above < k)
            want_exclusive = finite & (at_least <= k)
            self.assertAllEqual(inclusive.correct[:, i], want_inclusive)
            self.assertAllEqual(exclusive.correct[:, i], want_exclusive)
            self.assertAllEqual(
                inclusive.correct[:, i], tf.math.in_top_k(labels, logits, k)
            )
            self.assertAllEqual(
                inclusive.tie_decided[:, i], want_inclusive & ~want_exclusive
            )
        # Row 5 ties everywhere: correct inclusively, decided by the tie.
        self.assertTrue(bool(inclusive.correct[5, 0]))
        self.assertFalse(bool(exclusive.correct[5, 0]))

    def test_compiled_and_plain_ops_agree(self):
        labels, logits = self.tied_logits(128, 1000, 1)
        scores, labels = tf.constant(logits), tf.constant(labels)
        plain = metrics._rank_counts_graph(scores, labels)
        compiled = metrics._rank_counts_xla(scores, labels)
        for a, b in zip(plain, compiled):
            self.assertAllEqual(a, b)

    def test_metric_on_compiled_batches_in_a_graph(self):
        # Two batches of different sizes (a partial last batch) inside a
        # tf.function: the compiled count serves both shapes.
        labels, logits = self.tied_logits(200, 1000, 2)
        metric = metrics.TopKAccuracies(ks=(1, 5))
        update = tf.function(metric.update_state)
        for y, x, _ in batches(labels, logits, 128):
            update(tf.constant(y), tf.constant(x))
        finite = np.isfinite(logits).all(axis=1)
        target = logits[np.arange(200), labels][:, None]
        above = (logits > target).sum(axis=1)
        counts = metric.counts()
        self.assertEqual(
            counts.correct,
            tuple(float((finite & (above < k)).sum()) for k in (1, 5)),
        )
        self.assertEqual(counts.nonfinite, 4.0)
        self.assertEqual(counts.num_examples, 200.0)


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
            metrics.TopKAccuracies(ks=(1,), multi_label=True),
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

        single = metrics.TopKAccuracies(ks=(1, 3))
        single_per_class = metrics.PerClassTopKAccuracy(NUM_CLASSES, k=3)
        for y, x, w in dataset:
            single.update_state(y, x, w)
            single_per_class.update_state(y, x, w)

        strategy = tf.distribute.MirroredStrategy(devices)
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        with strategy.scope():
            mirrored = metrics.TopKAccuracies(ks=(1, 3))
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
