"""Streaming top-k accuracy metrics with exact counts.

`tf.math.in_top_k` decides, once per k; `tf.reduce_sum` counts, in float64
sums of sample weights. A row sum finds the non-finite rows. Semantics:

* **Ties.** With `ties="inclusive"` (the default, exactly `tf.math.in_top_k`)
  an example is correct when fewer than k classes score strictly higher than
  the true class: a tie straddling the k-th place counts as correct, and a
  constant model is 100% top-1. With `ties="exclusive"` every other class
  that scores at least as high as the true class counts against it. With
  `count_ties=True`, `counts().ties` counts the examples such a tie decided
  (costs `in_top_k` again). Scores compare as on CPU: subnormals equal 0.
* **Non-finite rows.** A row holding any NaN or Inf counts as wrong and is
  counted in `counts().nonfinite`.
* **Labels.** Sparse labels are class indices in [0, num_classes); anything
  else raises (`ValueError` eagerly, `tf.errors.InvalidArgumentError` in a
  graph). Under XLA, which compiles assertions away, such examples count as
  wrong and in `counts().invalid_labels`, and `result()` becomes NaN. One-hot
  or probability labels (`sparse_labels=False`) are argmax'ed. Multi-hot
  labels (`multi_label=True`, ImageNet-ReaL) are correct when any true label
  is in the top k; rows with none are left out (`counts().unlabeled`).
* **Precision.** Predictions of any real dtype are cast to float32.
* **Sample weights.** Every count is a sum of sample weights (default 1);
  weight 0 removes an example from every count, but a bad label raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tf_topk import distribute

_TIES = ("inclusive", "exclusive")
# The smallest normal float32; CPU kernels flush smaller magnitudes to 0.
_TINY = float(np.finfo(np.float32).tiny)
_LABEL_HINT = (
    "Check the label offset (1-based labels need label_offset=1) and the "
    "model's number of classes."
)


def validate_k(k, argument="k"):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(
            f"Argument `{argument}` must be a positive integer. "
            f"Received: {argument}={k!r}"
        )
    return int(k)


def validate_ks(ks):
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    if not isinstance(ks, Sequence) or isinstance(ks, str) or not ks:
        raise ValueError(
            "Argument `ks` must be a non-empty sequence of positive integers, "
            f"e.g. ks=(1, 5). Received: ks={ks!r}"
        )
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
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


def validate_ties(ties):
    if ties not in _TIES:
        raise ValueError(
            f"Argument `ties` must be one of {list(_TIES)}. "
            f"Received: ties={ties!r}"
        )
    return ties


def check_k_fits(ks, num_classes_static):
    if num_classes_static is not None and max(ks) > num_classes_static:
        raise ValueError(
            f"Argument `k` must be at most the number of classes "
            f"({num_classes_static}). Received: k={max(ks)}"
        )


def top_k_correct(labels, predictions, k: int = 5, **options) -> tf.Tensor:
    """Whether each example's true class is among the top k predictions: a
    bool tensor [B]. `options` (ties, sparse_labels, ...) as in `decide`.

    >>> correct = top_k_correct([2, 0], [[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]], 1)
    >>> correct.numpy().tolist()
    [True, False]
    """
    ks = (validate_k(k),)
    return decide(labels, predictions, ks, **options).correct[0]


class Decisions(NamedTuple):
    """Per-example outcome of a batch: bool [len(ks), B] or [B] tensors."""

    correct: tf.Tensor  # Under the chosen tie rule.
    tie_decided: tf.Tensor | None  # None unless ties were counted.
    nonfinite: tf.Tensor
    invalid_label: tf.Tensor
    has_label: tf.Tensor  # False for multi-label rows with no true label.
    labels: tf.Tensor  # int32, the class each example was judged by.


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
    """Decides every example of a batch for every k (see module docstring).

    Labels: class indices [B] or [B, 1]; or [B, C] one-hot or probabilities
    (`sparse_labels=False`) or multi-hot (`multi_label=True`).
    """
    ks, ties = validate_ks(ks), validate_ties(ties)
    scores = _scores(predictions, ks)
    labels, has_label, in_range = _labels(
        labels, scores, sparse_labels, multi_label
    )
    valid_labels = tf.where(has_label & in_range, labels, 0)
    hits = [tf.math.in_top_k(valid_labels, scores, k) for k in ks]
    with tf.control_dependencies(hits):  # Read last: no in_top_k waits on it.
        finite = _finite_rows(scores)
    # XLA's in_top_k says True to NaN rows, bad labels (TF #118376, #127909).
    usable = has_label & in_range & finite
    correct = inclusive = usable & tf.stack(hits)
    tied = None
    if count_ties or ties == "exclusive":
        # A tie can only change the outcome of a row correct at max(ks).
        exclusive = _exclusive(scores, valid_labels, ks, inclusive[-1])
        tied = inclusive & ~exclusive
        correct = inclusive if ties == "inclusive" else exclusive
    nonfinite, invalid = has_label & ~finite, has_label & ~in_range
    return Decisions(correct, tied, nonfinite, invalid, has_label, labels)


def _finite_rows(scores):
    """Whether each row is free of NaN and Inf, as its sum shows; a sum of
    finite scores can overflow, so then every score of the batch is read."""
    finite = tf.math.is_finite(tf.reduce_sum(scores, axis=1))
    exact = lambda: tf.reduce_all(tf.math.is_finite(scores), axis=1)  # noqa: E731
    return tf.cond(tf.reduce_all(finite), lambda: finite, exact)


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


def _scores(predictions, ks) -> tf.Tensor:
    """Float32 [B, C] predictions, checked, with C >= max(ks)."""
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


def _labels(labels, scores, sparse, multi_label):
    """Labels as int32 [B], with has-label and in-range masks; bad labels
    raise (eagerly, or in a graph through a `tf.debugging.Assert`)."""
    labels = tf.convert_to_tensor(labels)
    has_label = tf.ones(tf.shape(scores)[:1], tf.bool)
    if multi_label or not sparse:
        if labels.shape.rank != 2:
            raise ValueError(
                "Argument `labels` must have shape [batch, num_classes] with "
                "`sparse_labels=False` or `multi_label=True`. "
                f"Received: shape={labels.shape}"
            )
        labels.shape.assert_is_compatible_with(scores.shape)
        labels, in_range = tf.cast(labels, tf.float32), has_label
        if multi_label:
            # The best-scoring true label is in the top k iff any is.
            has_label = tf.reduce_any(labels > 0, axis=1)
            labels = tf.where(labels > 0, scores, -np.inf)
        return tf.argmax(labels, 1, output_type=tf.int32), has_label, in_range
    if labels.shape.rank == 2 and labels.shape[1] == 1:
        labels = tf.squeeze(labels, axis=1)
    if labels.shape.rank != 1:
        raise ValueError(
            "Argument `labels` must be class indices of shape [batch] or "
            "[batch, 1]; pass `sparse_labels=False` for one-hot labels. "
            f"Received: shape={labels.shape}"
        )
    if labels.dtype.is_floating:
        whole = tf.reduce_all(tf.equal(labels, tf.round(labels)))
        message = "Argument `labels` must be whole class indices. Received:"
        if not tf.executing_eagerly():
            tf.debugging.Assert(whole, [message, labels], summarize=8)
        elif not bool(whole):
            received = labels.numpy().ravel()[:8].tolist()
            raise ValueError(f"{message} labels={received}")
    labels = tf.cast(labels, tf.int32)
    num_classes = tf.shape(scores)[1]
    in_range = (labels >= 0) & (labels < num_classes)
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(in_range)):
            index, n = int(np.argmax(~in_range.numpy())), int(num_classes)
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


def _sample_weight(sample_weight, batch):
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


@dataclasses.dataclass(frozen=True)
class Counts:
    """Exact counts of a metric (sums of sample weights): `correct` and
    `ties` (None unless counted) per k of `ks`; `num_examples` with a true
    label, `unlabeled` without; `invalid_labels` (only ever under XLA)."""

    ks: tuple[int, ...]
    correct: tuple[float, ...]
    num_examples: float
    ties: tuple[float, ...] | None
    nonfinite: float
    invalid_labels: float
    unlabeled: float


def _floats(variable) -> tuple[float, ...]:
    return tuple(variable.numpy().tolist())


class _Metric(keras.metrics.Metric):
    """The metrics' shared options (attributes and config), and counters."""

    def __init__(self, name, dtype, **options):
        super().__init__(name=name, dtype=dtype)
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "tf_topk metrics need the TensorFlow backend of Keras. "
                f"Received: KERAS_BACKEND={keras.backend.backend()!r}; set "
                "KERAS_BACKEND=tensorflow."
            )
        self._options = dict(options, ties=validate_ties(options["ties"]))
        for option, value in options.items():  # self.ties, ...
            setattr(self, option, value)

    def _counter(self, name, shape=()):
        return self.add_variable(shape, "zeros", "float64", name=name)

    def _decide(self, y_true, y_pred, ks, sample_weight):
        decisions = decide(y_true, y_pred, ks, **self._options)
        batch = tf.shape(decisions.has_label)[0]
        return decisions, _sample_weight(sample_weight, batch)

    def get_config(self):
        return {**super().get_config(), **self._options}


@keras.saving.register_keras_serializable(package="tf_topk")
class TopKAccuracies(_Metric):
    """Top-k accuracy for several k in one metric (semantics: module doc).

    `result()` is a dict `{"top1": ..., "top5": ...}`, so `fit` and
    `evaluate(..., return_dict=True)` log every k. Exact counts: `counts()`.

    >>> m = TopKAccuracies(ks=(1, 2), count_ties=True)
    >>> m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.2]])
    >>> {k: float(v) for k, v in m.result().items()}
    {'top1': 1.0, 'top2': 1.0}
    >>> m.counts().ties
    (1.0, 0.0)

    Usage with `compile()`:
    `model.compile(loss=..., metrics=[metrics.TopKAccuracies(ks=(1, 5))])`.

    Args:
        ks: the k values, positive and at most the number of classes.
        sparse_labels: labels are class indices (else one-hot/probabilities).
        multi_label: labels are multi-hot sets of true classes (ReaL).
        ties: "inclusive" (tf.math.in_top_k's rule) or "exclusive".
        count_ties: count the examples a tie decided (one more in_top_k per
            k, over the rows correct at max(ks)).
        name, dtype: the metric's name and the dtype of `result()`.
    """

    def __init__(
        self,
        ks: Sequence[int] = (1, 5),
        *,
        sparse_labels: bool = True,
        multi_label: bool = False,
        ties: str = "inclusive",
        count_ties: bool = False,
        name: str | None = None,
        dtype=None,
    ):
        options = dict(sparse_labels=bool(sparse_labels), ties=ties)
        options.update(multi_label=bool(multi_label))
        options.update(count_ties=bool(count_ties))
        super().__init__(name or "top_k_accuracies", dtype, **options)
        self.ks = validate_ks(ks)
        per_k = (len(self.ks),)
        self._correct = self._counter("correct", per_k)
        self._ties = self._counter("ties", per_k) if count_ties else None
        self._count = self._counter("count")
        # Rows non-finite, with an invalid label, with no label.
        self._rows = self._counter("rows", (3,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        decided, weight = self._decide(y_true, y_pred, self.ks, sample_weight)
        labelled = decided.has_label
        rows = [labelled, decided.nonfinite, decided.invalid_label, ~labelled]
        masks = [decided.correct, tf.stack(rows)]
        masks += [] if self._ties is None else [decided.tie_decided]
        # One weighted sum per row of masks: correct, labelled, ..., ties.
        zero = tf.zeros([], tf.float64)
        sums = tf.reduce_sum(tf.where(tf.concat(masks, 0), weight, zero), 1)
        k = len(self.ks)
        self._correct.assign_add(sums[:k])
        self._count.assign_add(sums[k])
        self._rows.assign_add(sums[k + 1 : k + 4])
        if self._ties is not None:
            self._ties.assign_add(sums[k + 4 :])

    def result(self):
        correct = tf.convert_to_tensor(self._correct)
        value = tf.math.divide_no_nan(correct, self._count)
        nan = tf.constant(np.nan, tf.float64)
        value = tf.cast(tf.where(self._rows[1] > 0, nan, value), self.dtype)
        return {f"top{k}": value[i] for i, k in enumerate(self.ks)}

    def counts(self) -> Counts:
        """The exact counts so far, as Python numbers."""
        ties = None if self._ties is None else _floats(self._ties)
        count = float(self._count.numpy())
        rows = self._rows.numpy().tolist()  # nonfinite, invalid, unlabeled
        return Counts(self.ks, _floats(self._correct), count, ties, *rows)

    def local_counts(self, strategy=None) -> tuple[tuple[float, ...], float]:
        """(correct per k, num_examples) of this worker's replicas: a local
        read, where `counts()` under a multi-worker strategy is collective."""
        strategy = strategy or tf.distribute.get_strategy()
        correct = distribute.local_sum(self._correct, strategy)
        count = distribute.local_sum(self._count, strategy)
        return tuple(correct.tolist()), float(count)

    def get_config(self):
        return {**super().get_config(), "ks": list(self.ks)}


@keras.saving.register_keras_serializable(package="tf_topk")
class TopKAccuracy(TopKAccuracies):
    """Top-k accuracy: `TopKAccuracies` for one k, with a scalar `result()`.

    Named `top{k}` by default; other arguments as in `TopKAccuracies`.

    >>> m = TopKAccuracy(k=1)
    >>> m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    >>> float(m.result())
    0.5

    Usage with `compile()`:
    `model.compile(loss=..., metrics=[metrics.TopKAccuracy(k=5)])`.
    """

    def __init__(self, k: int = 5, *, name: str | None = None, **options):
        k = validate_k(k)
        super().__init__((k,), name=name or f"top{k}", **options)
        self.k = k

    def result(self):
        return super().result()[f"top{self.k}"]

    def get_config(self):
        config = super().get_config()
        del config["ks"]
        return {**config, "k": self.k}


@keras.saving.register_keras_serializable(package="tf_topk")
class PerClassTopKAccuracy(_Metric):
    """Top-k accuracy per true class: a [num_classes] vector (NaN for a
    class with no examples); `sparse_labels` and `ties` as in `TopKAccuracy`.

    >>> m = PerClassTopKAccuracy(num_classes=3, k=1)
    >>> m.update_state([2, 0, 0], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    >>> [round(float(v), 2) for v in m.result()]
    [0.5, nan, 1.0]

    Usage with `compile()`:
    `model.compile(loss=..., metrics=[metrics.PerClassTopKAccuracy(1000)])`.
    """

    def __init__(
        self,
        num_classes: int,
        k: int = 1,
        *,
        sparse_labels: bool = True,
        ties: str = "inclusive",
        name: str | None = None,
        dtype=None,
    ):
        options = dict(sparse_labels=bool(sparse_labels), ties=ties)
        super().__init__(name or f"per_class_top{k}", dtype, **options)
        self.num_classes = validate_k(num_classes, "num_classes")
        self.k = validate_k(k)
        check_k_fits((self.k,), self.num_classes)
        self._correct = self._counter("correct", (self.num_classes,))
        self._count = self._counter("count", (self.num_classes,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        classes = tf.convert_to_tensor(y_pred).shape[-1]
        if classes is not None and classes != self.num_classes:
            raise ValueError(
                f"Predictions have {classes} classes but the metric was built "
                f"with num_classes={self.num_classes}. Pass "
                f"num_classes={classes}."
            )
        ks = (self.k,)
        decisions, weight = self._decide(y_true, y_pred, ks, sample_weight)
        zero, invalid = tf.zeros_like(weight), decisions.invalid_label
        weight = tf.where(invalid, zero, weight)
        correct = tf.where(decisions.correct[0], weight, zero)
        labels = tf.where(invalid, 0, decisions.labels)
        for state, values in ((self._count, weight), (self._correct, correct)):
            per_class = tf.math.unsorted_segment_sum
            state.assign_add(per_class(values, labels, self.num_classes))

    def result(self):
        count = tf.convert_to_tensor(self._count)
        nan = tf.constant(np.nan, tf.float64)
        value = tf.where(count > 0, self._correct / count, nan)
        return tf.cast(value, self.dtype)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact (correct, count) per class, as float64 arrays."""
        correct, count = self._correct.numpy(), self._count.numpy()
        return np.asarray(correct), np.asarray(count)

    def get_config(self):
        config = dict(num_classes=self.num_classes, k=self.k)
        return {**super().get_config(), **config}
