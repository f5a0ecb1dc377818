"""The per-example decision of the top-k metrics: is the class in the top k?

`decide` takes one batch of labels and predictions and says, for every
example and every k, whether it is correct, with `tf.math.in_top_k` deciding
(one call per k) and the rules below on top of it. The Keras metrics of
`tf_topk.metrics` count these decisions; `tf_topk.metric_arguments` checks
and converts the arguments first.

* **Ties.** Under `ties="inclusive"` (the default) the decision is exactly
  `tf.math.in_top_k`'s: fewer than k classes score strictly higher than the
  true class, so a tie straddling the k-th place counts as correct. Under
  `ties="exclusive"` the true score is nudged to the float just below it
  and `tf.math.in_top_k` asked again, so every other class that scores at
  least as high counts against it. Asking again costs one more call per k,
  made only for the rows correct at max(ks) (no tie can change another).
  Scores compare as on CPU: a subnormal score equals 0.
* **Non-finite rows.** A row holding NaN or Inf is never correct (XLA's
  `in_top_k` would say True to a NaN row). One row sum finds them; every
  score is read again only when a sum is not finite, since finite scores
  can overflow a sum.
* **Labels.** Rows without a usable label (out of range under XLA, or a
  multi-label row with no true class) are never correct and are reported
  in their own masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tf_topk import metric_arguments

# The smallest normal float32; CPU kernels flush smaller magnitudes to 0.
_TINY = float(np.finfo(np.float32).tiny)


class Decisions(NamedTuple):
    """The outcome of every example of one batch, as bool or int32 tensors.

    Attributes:
        correct: bool [len(ks), B], under the chosen tie rule.
        tie_decided: bool [len(ks), B], whether a tie at the k-th place
            decided the outcome (correct under "inclusive", wrong under
            "exclusive"); None unless ties were counted or are exclusive.
        nonfinite: bool [B], the row held NaN or Inf.
        invalid_label: bool [B], the label was out of range (only ever True
            under XLA; elsewhere a bad label raises).
        has_label: bool [B], False for multi-label rows with no true label.
        labels: int32 [B], the class each example was judged by (for
            multi-label rows, the best-scoring true class).
    """

    correct: tf.Tensor
    tie_decided: tf.Tensor | None
    nonfinite: tf.Tensor
    invalid_label: tf.Tensor
    has_label: tf.Tensor
    labels: tf.Tensor


def decide(
    labels,
    predictions,
    ks: Sequence[int] = (1, 5),
    *,
    ties: str = "inclusive",
    count_ties: bool = False,
    sparse_labels: bool = True,
    multi_label: bool = False,
) -> Decisions:
    """Decides every example of a batch for every k (see the module doc).

    Cost: one `tf.math.in_top_k` per k, plus one per k over the rows correct
    at max(ks) when ties are exclusive or counted, and a row sum of the
    scores (every score is read again only when a sum is not finite).

    >>> decisions = decide([2, 0], [[0.1, 0.2, 0.7], [0.4, 0.4, 0.2]], (1,))
    >>> decisions.correct.numpy().tolist()
    [[True, True]]

    Args:
        labels: int [B] or [B, 1] class indices; or [B, C] one-hot or
            probabilities with `sparse_labels=False`; or multi-hot [B, C]
            with `multi_label=True`.
        predictions: [B, C] scores (logits or probabilities), any real
            dtype.
        ks: the k values, each in [1, C].
        ties: "inclusive" (`tf.math.in_top_k`'s rule) or "exclusive".
        count_ties: also decide `tie_decided` under the inclusive rule.
        sparse_labels: whether labels are class indices.
        multi_label: whether labels are multi-hot sets of true classes.

    Returns:
        A `Decisions` record.

    Raises:
        ValueError: a bad k, tie rule, shape or (eagerly) label.
        TypeError: predictions that are not real numbers.
    """
    ks = metric_arguments.validate_ks(ks)
    ties = metric_arguments.validate_ties(ties)
    scores = metric_arguments.scores(predictions, ks)
    labels, has_label, in_range = metric_arguments.class_indices(
        labels, scores, sparse=sparse_labels, multi_label=multi_label
    )
    valid_labels = tf.where(has_label & in_range, labels, 0)
    hits = [tf.math.in_top_k(valid_labels, scores, k) for k in ks]
    with tf.control_dependencies(hits):  # Read last: no in_top_k waits on it.
        finite = _finite_rows(scores)
    # XLA's in_top_k says True to NaN rows, bad labels (TF #118376, #127909).
    usable = has_label & in_range & finite
    inclusive = usable & tf.stack(hits)
    correct = inclusive
    tie_decided = None
    if count_ties or ties == "exclusive":
        # A tie can only change the outcome of a row correct at max(ks).
        exclusive = _exclusive(scores, valid_labels, ks, inclusive[-1])
        tie_decided = inclusive & ~exclusive
        if ties == "exclusive":
            correct = exclusive
    return Decisions(
        correct=correct,
        tie_decided=tie_decided,
        nonfinite=has_label & ~finite,
        invalid_label=has_label & ~in_range,
        has_label=has_label,
        labels=labels,
    )


def _finite_rows(scores):
    """Whether each row is free of NaN and Inf, as its sum shows; a sum of
    finite scores can overflow, so then every score of the batch is read."""
    finite = tf.math.is_finite(tf.reduce_sum(scores, axis=1))

    def score_by_score():
        return tf.reduce_all(tf.math.is_finite(scores), axis=1)

    return tf.cond(tf.reduce_all(finite), lambda: finite, score_by_score)


def _exclusive(scores, labels, ks, candidates):
    """The exclusive rule: `tf.math.in_top_k` with the true score nudged
    just below itself, so the classes tied with it rank above it. Rows other
    than the candidates get label -1: wrong, and on CPU left unread."""
    target = tf.gather(scores, labels, batch_dims=1)
    below = tf.math.nextafter(target, tf.fill(tf.shape(target), -np.inf))
    # Flushed to 0 on CPU, the float just below a score near 0 ties with it.
    below = tf.where(tf.abs(target) < _TINY, -_TINY, below)
    at_label = tf.stack([tf.range(tf.shape(labels)[0]), labels], axis=1)
    scores = tf.tensor_scatter_nd_update(scores, at_label, below)
    labels = tf.where(candidates, labels, -1)
    # k = num_classes holds all, even a true score nudged to -inf.
    everything = (tf.shape(scores)[1] <= ks)[:, None]
    hits = [tf.math.in_top_k(labels, scores, k) for k in ks]
    return candidates & (tf.stack(hits) | everything)
