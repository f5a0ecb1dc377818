"""Checks and converts the arguments of the top-k metrics.

What `tf_topk.metrics` decides from, made uniform before any op runs:

* `ks` and `ties`, checked once (k is validated, never clamped);
* predictions as float32 [batch, num_classes];
* labels as int32 class indices [batch], whatever form they came in, with
  masks of the examples that have a true label and whose label is in range;
* sample weights as float64 [batch].

Bad values raise `ValueError` (`TypeError` for a wrong dtype) naming the
argument, the value received and the fix. Labels are tensors, so their range
is checked eagerly when the batch is eager and by a `tf.debugging.Assert` in
a graph (which XLA compiles away: `tf_topk.metrics` then counts them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

TIES = ("inclusive", "exclusive")
_LABEL_HINT = (
    "Check the label offset (1-based labels need label_offset=1) and the "
    "model's number of classes."
)


def _is_positive_integer(value) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, np.integer))
        and value >= 1
    )


def validate_k(k, argument: str = "k") -> int:
    """Returns `k` as an int, or raises if it is not a positive integer.

    >>> validate_k(5)
    5

    Args:
        k: the value to check (a Python or NumPy integer; bools are refused).
        argument: the argument's name in the error message (e.g.
            "num_classes").

    Returns:
        `k` as a Python int.

    Raises:
        ValueError: `k` is not an integer or is below 1.
    """
    if not _is_positive_integer(k):
        raise ValueError(
            f"Argument `{argument}` must be a positive integer. "
            f"Received: {argument}={k!r}"
        )
    return int(k)


def validate_ks(ks) -> tuple[int, ...]:
    """Returns the k values as a sorted tuple of ints, or raises.

    A single integer stands for one k. Duplicates are refused rather than
    merged: `ks=(5, 5)` is more likely a typo than a wish.

    >>> validate_ks((5, 1))
    (1, 5)

    Args:
        ks: a non-empty sequence of positive integers, or one integer.

    Returns:
        The k values, ascending.

    Raises:
        ValueError: `ks` is empty, not a sequence, holds a value that is not
            a positive integer, or repeats a value.
    """
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    if not isinstance(ks, Sequence) or isinstance(ks, str) or not ks:
        raise ValueError(
            "Argument `ks` must be a non-empty sequence of positive integers, "
            f"e.g. ks=(1, 5). Received: ks={ks!r}"
        )
    for k in ks:
        if not _is_positive_integer(k):
            raise ValueError(
                "Argument `ks` must hold positive integers, e.g. ks=(1, 5). "
                f"Received: ks={tuple(ks)!r} (bad value: {k!r})"
            )
    ks = tuple(int(k) for k in ks)
    if len(set(ks)) != len(ks):
        raise ValueError(
            f"Argument `ks` must not repeat a value. Received: ks={ks!r}"
        )
    return tuple(sorted(ks))


def validate_ties(ties: str) -> str:
    """Returns `ties` if it names a tie rule ("inclusive", "exclusive").

    Raises:
        ValueError: any other value.
    """
    if ties not in TIES:
        raise ValueError(
            f"Argument `ties` must be one of {list(TIES)}. "
            f"Received: ties={ties!r}"
        )
    return ties


def check_k_fits(ks: Sequence[int], num_classes_static: int | None) -> None:
    """Raises if the largest k exceeds a known number of classes.

    Args:
        ks: validated k values.
        num_classes_static: the number of classes, or None when it is known
            only at run time (then `scores` checks it in the graph).

    Raises:
        ValueError: `max(ks) > num_classes_static`.
    """
    if num_classes_static is not None and max(ks) > num_classes_static:
        raise ValueError(
            f"Argument `k` must be at most the number of classes "
            f"({num_classes_static}). Received: k={max(ks)}"
        )


def scores(predictions, ks: Sequence[int]) -> tf.Tensor:
    """Predictions as float32 [batch, num_classes], checked against `ks`.

    Any real dtype is accepted and cast to float32, the dtype
    `tf.math.in_top_k` ranks (float16 and bfloat16 inputs tie more often,
    float64 ones may tie once cast).

    Args:
        predictions: logits or probabilities of shape [batch, num_classes].
        ks: validated k values; the largest must fit the classes.

    Returns:
        A float32 tensor of shape [batch, num_classes].

    Raises:
        TypeError: the predictions are not real numbers.
        ValueError: the predictions are not of rank 2, or hold fewer classes
            than the largest k (checked in the graph when the number of
            classes is known only at run time).
    """
    predictions = tf.convert_to_tensor(predictions)
    if not (predictions.dtype.is_floating or predictions.dtype.is_integer):
        raise TypeError(
            "Argument `predictions` must hold real numbers. "
            f"Received: dtype={predictions.dtype.name}"
        )
    if predictions.shape.rank != 2:
        raise ValueError(
            "Argument `predictions` must have shape [batch, num_classes]. "
            f"Received: shape={predictions.shape}"
        )
    check_k_fits(ks, predictions.shape[1])
    if predictions.shape[1] is None:  # Known at run time only: check k then.
        tf.debugging.assert_less_equal(max(ks), tf.shape(predictions)[1])
    return tf.cast(predictions, tf.float32)


def class_indices(
    labels, scores: tf.Tensor, *, sparse: bool, multi_label: bool
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Labels as int32 class indices, with has-label and in-range masks.

    * Sparse labels (`sparse=True`): class indices of shape [batch] or
      [batch, 1], of an integer dtype or floats holding whole numbers. An
      index outside [0, num_classes) raises: a `ValueError` eagerly, a
      `tf.debugging.Assert` in a graph (`tf.errors.InvalidArgumentError`
      when it runs; compiled away under XLA, where the in-range mask is what
      still marks the example).
    * One-hot or probability labels (`sparse=False`): [batch, num_classes],
      reduced with an explicit argmax.
    * Multi-hot labels (`multi_label=True`, as ImageNet-ReaL): the true
      class that scores best stands for the set (it is in the top k exactly
      when any true class is); rows with no true class have no label.

    Args:
        labels: the labels, in one of the forms above.
        scores: the float32 predictions of the batch (`scores`).
        sparse: whether the labels are class indices.
        multi_label: whether the labels are multi-hot sets of true classes.

    Returns:
        (int32 labels [batch], bool has-label [batch], bool in-range
        [batch]). Labels of rows without a label or out of range are
        meaningless; the masks say which.

    Raises:
        ValueError: a label shape that does not fit the form, float labels
            that are not whole numbers, or (eagerly) a label out of range.
    """
    labels = tf.convert_to_tensor(labels)
    if multi_label or not sparse:
        return _dense_labels(labels, scores, multi_label=multi_label)
    if labels.shape.rank == 2 and labels.shape[1] == 1:
        labels = tf.squeeze(labels, axis=1)
    if labels.shape.rank != 1:
        raise ValueError(
            "Argument `labels` must be class indices of shape [batch] or "
            "[batch, 1]; pass `sparse_labels=False` for one-hot labels. "
            f"Received: shape={labels.shape}"
        )
    if labels.dtype.is_floating:
        _check_whole(labels)
    labels = tf.cast(labels, tf.int32)
    has_label = tf.ones(tf.shape(scores)[:1], tf.bool)
    num_classes = tf.shape(scores)[1]
    in_range = (labels >= 0) & (labels < num_classes)
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(in_range)):
            index = int(np.argmax(~in_range.numpy()))
            n = int(num_classes)
            raise ValueError(
                f"Labels must be class indices in [0, {n}) (num_classes={n})."
                f" Received: label={int(labels[index])} for example {index} "
                f"of the batch. {_LABEL_HINT}"
            )
        return labels, has_label, in_range
    message = "Labels must be class indices in [0, num_classes). Received "
    # The first bad label (none on a replica that got no rows).
    first_bad = tf.boolean_mask(labels, ~in_range)[:1]
    data = [message + "label:", first_bad, "num_classes:", num_classes]
    tf.debugging.Assert(tf.reduce_all(in_range), data + [_LABEL_HINT])
    return labels, has_label, in_range


def _dense_labels(labels, scores, *, multi_label):
    """One-hot, probability or multi-hot [batch, num_classes] labels."""
    if labels.shape.rank != 2:
        raise ValueError(
            "Argument `labels` must have shape [batch, num_classes] with "
            "`sparse_labels=False` or `multi_label=True`. "
            f"Received: shape={labels.shape}"
        )
    labels.shape.assert_is_compatible_with(scores.shape)
    labels = tf.cast(labels, tf.float32)
    # An argmax is always a class index.
    in_range = tf.ones(tf.shape(scores)[:1], tf.bool)
    has_label = in_range
    if multi_label:
        # The best-scoring true label is in the top k iff any is.
        has_label = tf.reduce_any(labels > 0, axis=1)
        labels = tf.where(labels > 0, scores, -np.inf)
    return tf.argmax(labels, 1, output_type=tf.int32), has_label, in_range


def _check_whole(labels):
    """Raises unless float labels hold whole numbers (in a graph, on run)."""
    whole = tf.reduce_all(tf.equal(labels, tf.round(labels)))
    message = "Argument `labels` must be whole class indices. Received:"
    if not tf.executing_eagerly():
        tf.debugging.Assert(whole, [message, labels], summarize=8)
    elif not bool(whole):
        received = labels.numpy().ravel()[:8].tolist()
        raise ValueError(f"{message} labels={received}")


def weights(sample_weight, batch) -> tf.Tensor:
    """Sample weights as float64 [batch]; None weighs every example 1.

    Counts are sums of these weights, kept in float64 so that a count of
    whole examples stays exact far beyond ImageNet's 50,000.

    Args:
        sample_weight: None, a scalar, or a tensor of shape [batch] or
            [batch, 1].
        batch: the batch size (a scalar tensor).

    Returns:
        A float64 tensor of shape [batch].

    Raises:
        ValueError: weights of another shape.
    """
    if sample_weight is None:
        return tf.ones([batch], tf.float64)
    weight = tf.cast(tf.convert_to_tensor(sample_weight), tf.float64)
    if weight.shape.rank == 2 and weight.shape[1] == 1:
        weight = tf.squeeze(weight, axis=1)
    if weight.shape.rank not in (0, 1):
        raise ValueError(
            "Argument `sample_weight` must be a scalar or have shape [batch]. "
            f"Received: shape={weight.shape}"
        )
    return tf.broadcast_to(weight, [batch])
