"""The metrics against references: Keras' own top-k metrics, NumPy and a
brute-force oracle, eagerly, in a tf.function and under XLA (jit_compile)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    batches,
    oracle_counts,
    random_logits,
    reference_rank,
    results,
    tied_logits,
    update_in,
)

from tf_topk import metrics


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


if __name__ == "__main__":
    tf.test.main()
