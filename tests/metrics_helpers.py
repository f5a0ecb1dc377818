"""Shared data and references of the metrics tests (`metrics_*_test.py`)."""

import numpy as np
import tensorflow as tf

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
