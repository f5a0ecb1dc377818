"""Streaming top-k accuracy metrics with exact counts.

Every metric here reduces a batch to per-example decisions and accumulates
them with `tf.reduce_sum` into float64 counters, so `result()` is an exact
count divided by an exact count. A decision comes from the true class's
exact rank: one fused XLA pass over the scores counts, per row, the classes
above the true one, those tied with it, and any NaN/Inf, which decides every
k at once and is what `tf.math.in_top_k` decides (tests check they agree).

Semantics shared by all metrics and by `top_k_correct`:

* **Ties.** With `ties="inclusive"` (the default, exactly `tf.math.in_top_k`)
  an example is correct when fewer than k classes score strictly higher than
  the true class, so a tie straddling the k-th place counts as correct and a
  constant model is 100% top-1. With `ties="exclusive"` every other class that
  scores at least as high as the true class counts against it, so the same
  tie counts as wrong. Either way the number of examples whose outcome was
  decided by such a tie is counted (`counts().ties`).
* **Non-finite rows.** A row of predictions holding any NaN or Inf counts as
  wrong and is counted in `counts().nonfinite`.
* **Labels.** Sparse labels are class indices in [0, num_classes); anything
  else raises (a `ValueError` eagerly, `tf.errors.InvalidArgumentError` in a
  graph). Under XLA, where assertions are compiled away, such examples count
  as wrong, are counted in `counts().invalid_labels`, and `result()` becomes
  NaN so the run cannot report a plausible number. One-hot or probability
  labels (`sparse_labels=False`) are reduced with an explicit argmax.
  Multi-label ground truth (`multi_label=True`, multi-hot [B, C], as
  ImageNet-ReaL) is correct when any true label is in the top k; examples
  with no true label are left out of the counts (`counts().unlabeled`).
* **Precision.** float16, bfloat16 and float64 predictions are cast to
  float32 before ranking (float16 logits tie far more often; see ties).
* **Sample weights.** Every counter is a sum of sample weights (1 by
  default); weight 0 removes an example from every count (its label must
  still be a valid class index: a bad label is bad data, whatever weight).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

_TIES = ("inclusive", "exclusive")


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


# Field width of `_rank_counts`' packed sum: int32 with 10-bit fields up to
# 1023 classes, else int64 with 21-bit fields.
_NARROW_MAX_CLASSES = (1 << 10) - 1
_WIDE_MAX_CLASSES = (1 << 21) - 1


def _rank_counts_graph(scores, labels):
    """Per row: classes above the true one, at or above it, and finiteness.

    One fused reduction: each score adds 1 + 2**b when above the true
    class's score, 2**b when equal to it (the true class itself included)
    and 2**(2b) when NaN or +-Inf, so the row sum packs the three counts in
    b-bit fields (each at most num_classes < 2**b, so they never carry into
    each other). Integer sums are exact in any order. A NaN compares false
    to everything, so a NaN row's counts are meaningless, but its
    non-finite field is not.
    """
    num_classes = scores.shape[1]
    narrow = num_classes is not None and num_classes <= _NARROW_MAX_CLASSES
    dtype, bits = (tf.int32, 10) if narrow else (tf.int64, 21)
    if num_classes is not None and num_classes > _WIDE_MAX_CLASSES:
        raise ValueError(
            f"At most {_WIDE_MAX_CLASSES} classes are supported. Received: "
            f"predictions of shape {scores.shape}"
        )
    target = tf.gather(scores, labels, axis=1, batch_dims=1)[:, None]
    zero = tf.constant(0, dtype)
    code = tf.where(
        scores > target,
        tf.constant(1 + (1 << bits), dtype),
        tf.where(scores >= target, tf.constant(1 << bits, dtype), zero),
    )
    code += tf.where(
        tf.math.is_finite(scores), zero, tf.constant(1 << (2 * bits), dtype)
    )
    total = tf.reduce_sum(code, axis=1)
    field = tf.constant((1 << bits) - 1, dtype)
    shift = tf.constant(bits, dtype)
    greater = tf.bitwise.bitwise_and(total, field)
    at_least = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(total, shift), field
    )
    finite = tf.equal(tf.bitwise.right_shift(total, 2 * shift), 0)
    return tf.cast(greater, tf.int32), tf.cast(at_least, tf.int32), finite


# Compiled by XLA, the select-and-sum above is one fused loop that reads
# each score once; as separate TF ops it would write [B, C] intermediates.
# Inside an XLA computation (jit_compile, TPU) the call is simply inlined.
_rank_counts_xla = tf.function(
    _rank_counts_graph, jit_compile=True, reduce_retracing=True
)


# Below this many scores per batch, `_rank_counts` runs as plain TF ops.
_SMALL_BATCH_ELEMENTS = 1 << 16


def _rank_counts(scores, labels):
    if scores.shape.num_elements() is not None and (
        scores.shape.num_elements() < _SMALL_BATCH_ELEMENTS
    ):
        # Small batches: not worth an XLA compilation per shape.
        return _rank_counts_graph(scores, labels)
    return _rank_counts_xla(scores, labels)


def validate_ties(ties):
    if ties not in _TIES:
        raise ValueError(
            f"Argument `ties` must be one of {list(_TIES)}. "
            f"Received: ties={ties!r}"
        )
    return ties


def _in_xla_context() -> bool:
    """Whether ops built now are compiled by XLA (jit_compile or TPU)."""
    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # Private API moved: take the static-shape path.
        return True
    graph = tf.compat.v1.get_default_graph()
    return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


def _scores(predictions) -> tf.Tensor:
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
    return tf.cast(predictions, tf.float32)


def check_k_fits(ks, num_classes_static):
    if num_classes_static is not None and max(ks) > num_classes_static:
        raise ValueError(
            f"Argument `k` must be at most the number of classes "
            f"({num_classes_static}). Received: k={max(ks)}"
        )


def _sparse_labels(labels, scores, *, sparse, multi_label):
    """Reduces any label form to int32 [B] plus a has-label mask [B]."""
    labels = tf.convert_to_tensor(labels)
    batch = tf.shape(scores)[0]
    if multi_label or not sparse:
        if labels.shape.rank != 2:
            raise ValueError(
                "Argument `labels` must have shape [batch, num_classes] with "
                "`sparse_labels=False` or `multi_label=True`. "
                f"Received: shape={labels.shape}"
            )
        labels.shape.assert_is_compatible_with(scores.shape)
        positive = tf.cast(labels, tf.float32) > 0
        if multi_label:
            # The best-scoring true label is in the top k iff any is.
            masked = tf.where(positive, scores, -np.inf)
            has_label = tf.reduce_any(positive, axis=1)
            return tf.argmax(masked, axis=1, output_type=tf.int32), has_label
        index = tf.argmax(tf.cast(labels, tf.float32), axis=1)
        return tf.cast(index, tf.int32), tf.ones([batch], tf.bool)
    if labels.shape.rank == 2 and labels.shape[1] == 1:
        labels = tf.squeeze(labels, axis=1)
    if labels.shape.rank != 1:
        raise ValueError(
            "Argument `labels` must be class indices of shape [batch] or "
            "[batch, 1]; pass `sparse_labels=False` for one-hot labels. "
            f"Received: shape={labels.shape}"
        )
    if labels.dtype.is_floating:
        integral = tf.reduce_all(tf.equal(labels, tf.round(labels)))
        _assert(
            integral,
            ["Argument `labels` must be whole class indices. Received:"],
            labels,
        )
    return tf.cast(labels, tf.int32), tf.ones([batch], tf.bool)


def _assert(condition, message, labels):
    """Raises on a false condition (a ValueError eagerly).

    In a graph the assertion runs through automatic control dependencies;
    XLA compiles it away.
    """
    if tf.executing_eagerly():
        if not bool(condition):
            received = np.asarray(labels).ravel()[:8].tolist()
            raise ValueError(" ".join(message) + f" labels={received}")
    elif not _in_xla_context():
        tf.debugging.Assert(condition, message + [labels], summarize=8)


def _check_label_range(labels, has_label, num_classes):
    in_range = (labels >= 0) & (labels < num_classes)
    bad = has_label & ~in_range
    if tf.executing_eagerly():
        bad_np = bad.numpy()
        if bad_np.any():
            index = int(np.argmax(bad_np))
            raise ValueError(
                f"Labels must be class indices in [0, {int(num_classes)}) "
                f"(num_classes={int(num_classes)}). Received: "
                f"label={int(labels[index])} for example {index} of the "
                "batch. Check the label offset (1-based labels need "
                "label_offset=1) and the model's number of classes."
            )
        return in_range
    if not _in_xla_context():
        # Empty on a replica that got no rows of a small batch.
        first_bad = tf.boolean_mask(labels, bad)[:1]
        tf.debugging.Assert(
            ~tf.reduce_any(bad),
            [
                "Labels must be class indices in [0, num_classes). Received "
                "label:",
                first_bad,
                "num_classes:",
                num_classes,
                "Check the label offset (1-based labels need label_offset=1) "
                "and the model's number of classes.",
            ],
        )
    return in_range


@dataclasses.dataclass(frozen=True)
class Decisions:
    """Per-example outcome of one batch (all tensors of shape [B] or [B, K]).

    Attributes:
        correct: bool [B, len(ks)], under the chosen tie rule.
        tie_decided: bool [B, len(ks)], outcome decided by a tie at the k-th
            place (correct under "inclusive", wrong under "exclusive").
        nonfinite: bool [B], the row held NaN or Inf.
        invalid_label: bool [B], the label was out of range.
        has_label: bool [B], False for multi-label rows with no true label.
        labels: int32 [B], the class each example was judged by (for
            multi-label rows, the best-scoring true class).
    """

    correct: tf.Tensor
    tie_decided: tf.Tensor
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
    sparse_labels: bool = True,
    multi_label: bool = False,
) -> Decisions:
    """Decides every example of a batch for every k at once.

    Cost: one fused pass over the scores (`_rank_counts`), the same for
    every k and whatever the data; see benchmarks/metrics_bench.py.

    Args:
        labels: int [B] or [B, 1] class indices; or [B, C] one-hot /
            probabilities with `sparse_labels=False`; or multi-hot [B, C]
            with `multi_label=True`.
        predictions: [B, C] scores (logits or probabilities), any float type.
        ks: the k values, each in [1, C].
        ties: "inclusive" (tf.math.in_top_k) or "exclusive".
        sparse_labels: whether labels are class indices.
        multi_label: whether labels are multi-hot sets of true classes.

    Returns:
        A `Decisions` record.
    """
    ks = validate_ks(ks)
    ties = validate_ties(ties)
    scores = _scores(predictions)
    check_k_fits(ks, scores.shape[1])
    num_classes = tf.shape(scores)[1]
    if scores.shape[1] is None and not tf.executing_eagerly():
        tf.debugging.assert_less_equal(
            max(ks), num_classes, message="k must be at most num_classes."
        )
    labels, has_label = _sparse_labels(
        labels, scores, sparse=sparse_labels, multi_label=multi_label
    )
    in_range = _check_label_range(labels, has_label, num_classes)
    valid = in_range & has_label
    safe_labels = tf.where(valid, labels, 0)

    greater, at_least, finite = _rank_counts(scores, safe_labels)
    usable = valid & finite
    k_row = tf.constant(ks, tf.int32)[None, :]
    # inclusive (tf.math.in_top_k's rule): fewer than k classes strictly
    # above the true class.
    inclusive = greater[:, None] < k_row
    # exclusive: at most k classes (the true one included) at or above it.
    exclusive = at_least[:, None] <= k_row
    usable_k = usable[:, None]
    inclusive &= usable_k
    exclusive &= usable_k
    correct = inclusive if ties == "inclusive" else exclusive
    return Decisions(
        correct=correct,
        tie_decided=inclusive & ~exclusive,
        nonfinite=~finite & has_label,
        invalid_label=has_label & ~in_range,
        has_label=has_label,
        labels=labels,
    )


def top_k_correct(
    labels,
    predictions,
    k: int = 5,
    *,
    ties: str = "inclusive",
    sparse_labels: bool = True,
    multi_label: bool = False,
) -> tf.Tensor:
    """Whether each example's true class is among the top k predictions.

    For users who aggregate themselves. Semantics (ties, non-finite rows,
    labels) are those of the module docstring.

    >>> correct = top_k_correct([2, 0], [[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]], 1)
    >>> correct.numpy().tolist()
    [True, False]

    Args:
        labels: class indices [B] (see `decide` for other forms).
        predictions: [B, C] scores.
        k: a positive integer at most C.
        ties: "inclusive" (tf.math.in_top_k) or "exclusive".
        sparse_labels: whether labels are class indices.
        multi_label: whether labels are multi-hot sets of true classes.

    Returns:
        A bool tensor of shape [B].
    """
    k = validate_k(k)
    decisions = decide(
        labels,
        predictions,
        (k,),
        ties=ties,
        sparse_labels=sparse_labels,
        multi_label=multi_label,
    )
    return decisions.correct[:, 0]


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
    """Exact counts accumulated by a metric (sums of sample weights).

    Attributes:
        ks: the k values, ascending.
        correct: correct examples per k.
        num_examples: examples counted (with a true label).
        ties: examples per k whose outcome a tie at the k-th place decided.
        nonfinite: examples whose predictions held NaN or Inf.
        invalid_labels: examples with an out-of-range label (XLA only;
            elsewhere they raise).
        unlabeled: multi-label examples with no true label (left out).
    """

    ks: tuple[int, ...]
    correct: tuple[float, ...]
    num_examples: float
    ties: tuple[float, ...]
    nonfinite: float
    invalid_labels: float
    unlabeled: float


class _TopKBase(keras.metrics.Metric):
    """Shared state and update of the top-k metrics."""

    def __init__(
        self,
        ks,
        *,
        sparse_labels=True,
        multi_label=False,
        ties="inclusive",
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "tf_topk metrics need the TensorFlow backend of Keras. "
                f"Received: KERAS_BACKEND={keras.backend.backend()!r}; set "
                "KERAS_BACKEND=tensorflow."
            )
        self.ks = validate_ks(ks)
        self.ties = validate_ties(ties)
        self.sparse_labels = bool(sparse_labels)
        self.multi_label = bool(multi_label)
        size = len(self.ks)
        self._correct = self.add_variable(
            shape=(size,), initializer="zeros", dtype="float64", name="correct"
        )
        self._ties = self.add_variable(
            shape=(size,), initializer="zeros", dtype="float64", name="ties"
        )
        self._count = self.add_variable(
            shape=(), initializer="zeros", dtype="float64", name="count"
        )
        self._nonfinite = self.add_variable(
            shape=(), initializer="zeros", dtype="float64", name="nonfinite"
        )
        self._invalid = self.add_variable(
            shape=(), initializer="zeros", dtype="float64", name="invalid"
        )
        self._unlabeled = self.add_variable(
            shape=(), initializer="zeros", dtype="float64", name="unlabeled"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Accumulates one batch (see the module docstring for semantics)."""
        decisions = decide(
            y_true,
            y_pred,
            self.ks,
            ties=self.ties,
            sparse_labels=self.sparse_labels,
            multi_label=self.multi_label,
        )
        batch = tf.shape(decisions.has_label)[0]
        weight = _sample_weight(sample_weight, batch)
        zero = tf.zeros([], tf.float64)
        labelled = tf.where(decisions.has_label, weight, zero)

        def total(mask):
            return tf.reduce_sum(tf.where(mask, labelled[:, None], zero), 0)

        self._correct.assign_add(total(decisions.correct))
        self._ties.assign_add(total(decisions.tie_decided))
        self._count.assign_add(tf.reduce_sum(labelled))
        self._nonfinite.assign_add(total(decisions.nonfinite[:, None])[0])
        self._invalid.assign_add(total(decisions.invalid_label[:, None])[0])
        unlabeled = tf.where(decisions.has_label, zero, weight)
        self._unlabeled.assign_add(tf.reduce_sum(unlabeled))

    def _accuracies(self):
        value = tf.math.divide_no_nan(
            tf.convert_to_tensor(self._correct), self._count
        )
        value = tf.where(
            self._invalid > 0, tf.constant(np.nan, tf.float64), value
        )
        return tf.cast(value, self.dtype)

    def counts(self) -> Counts:
        """The exact counts so far, as Python numbers."""

        def floats(variable):
            return tuple(float(v) for v in np.asarray(variable.numpy()))

        return Counts(
            ks=self.ks,
            correct=floats(self._correct),
            num_examples=float(self._count.numpy()),
            ties=floats(self._ties),
            nonfinite=float(self._nonfinite.numpy()),
            invalid_labels=float(self._invalid.numpy()),
            unlabeled=float(self._unlabeled.numpy()),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            sparse_labels=self.sparse_labels,
            multi_label=self.multi_label,
            ties=self.ties,
        )
        return config


@keras.saving.register_keras_serializable(package="tf_topk")
class TopKAccuracies(_TopKBase):
    """Top-k accuracy for several k in one metric.

    `result()` is a dict `{"top1": ..., "top5": ...}`, so `fit` logs and
    `model.evaluate(..., return_dict=True)` show every k (with `val_` in
    validation logs). Exact counts: `counts()`. Semantics (ties, NaN/Inf,
    label range, sample weights): see the `tf_topk.metrics` docstring.

    >>> m = TopKAccuracies(ks=(1, 2))
    >>> m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.3, 0.5, 0.2]])
    >>> {k: float(v) for k, v in m.result().items()}
    {'top1': 0.5, 'top2': 1.0}

    Usage with `compile()`:

    ```python
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[tf_topk.metrics.TopKAccuracies(ks=(1, 5))])
    ```

    Args:
        ks: the k values, positive and at most the number of classes.
        sparse_labels: labels are class indices (else one-hot or
            probabilities, reduced with argmax).
        multi_label: labels are multi-hot sets of true classes (ReaL).
        ties: "inclusive" (tf.math.in_top_k's rule) or "exclusive".
        name: metric name.
        dtype: dtype of `result()`.
    """

    def __init__(
        self,
        ks: Sequence[int] = (1, 5),
        *,
        sparse_labels: bool = True,
        multi_label: bool = False,
        ties: str = "inclusive",
        name: str | None = None,
        dtype=None,
    ):
        super().__init__(
            ks,
            sparse_labels=sparse_labels,
            multi_label=multi_label,
            ties=ties,
            name=name or "top_k_accuracies",
            dtype=dtype,
        )

    def result(self):
        values = self._accuracies()
        return {f"top{k}": values[i] for i, k in enumerate(self.ks)}

    def get_config(self):
        return {**super().get_config(), "ks": list(self.ks)}


@keras.saving.register_keras_serializable(package="tf_topk")
class TopKAccuracy(_TopKBase):
    """Top-k accuracy: the fraction of examples whose class is in the top k.

    Semantics (ties, NaN/Inf, label range, sample weights): see the
    `tf_topk.metrics` docstring. Exact counts: `counts()`.

    >>> m = TopKAccuracy(k=1)
    >>> m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    >>> float(m.result())
    0.5

    Usage with `compile()`:

    ```python
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[tf_topk.metrics.TopKAccuracy(k=5)])
    ```

    Args:
        k: a positive integer, at most the number of classes.
        sparse_labels: labels are class indices (else one-hot or
            probabilities, reduced with argmax).
        multi_label: labels are multi-hot sets of true classes (ReaL).
        ties: "inclusive" (tf.math.in_top_k's rule) or "exclusive".
        name: metric name (default `top{k}`).
        dtype: dtype of `result()`.
    """

    def __init__(
        self,
        k: int = 5,
        *,
        sparse_labels: bool = True,
        multi_label: bool = False,
        ties: str = "inclusive",
        name: str | None = None,
        dtype=None,
    ):
        k = validate_k(k)
        super().__init__(
            (k,),
            sparse_labels=sparse_labels,
            multi_label=multi_label,
            ties=ties,
            name=name or f"top{k}",
            dtype=dtype,
        )
        self.k = k

    def result(self):
        return self._accuracies()[0]

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="tf_topk")
class PerClassTopKAccuracy(keras.metrics.Metric):
    """Top-k accuracy per true class: a [num_classes] vector.

    Entry c is the fraction of examples of true class c whose class is in the
    top k; NaN for a class with no examples (no accuracy exists). Semantics
    otherwise as the `tf_topk.metrics` docstring.

    >>> m = PerClassTopKAccuracy(num_classes=3, k=1)
    >>> m.update_state([2, 0, 0], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    >>> [round(float(v), 2) for v in m.result()]
    [0.5, nan, 1.0]

    Usage with `compile()`:

    ```python
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[tf_topk.metrics.PerClassTopKAccuracy(1000)])
    ```

    Args:
        num_classes: number of classes.
        k: a positive integer, at most num_classes.
        sparse_labels: labels are class indices (else one-hot or
            probabilities, reduced with argmax).
        ties: "inclusive" (tf.math.in_top_k's rule) or "exclusive".
        name: metric name (default `per_class_top{k}`).
        dtype: dtype of `result()`.
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
        super().__init__(name=name or f"per_class_top{k}", dtype=dtype)
        self.num_classes = validate_k(num_classes, "num_classes")
        self.k = validate_k(k)
        check_k_fits((self.k,), self.num_classes)
        self.sparse_labels = bool(sparse_labels)
        self.ties = validate_ties(ties)
        self._correct = self.add_variable(
            shape=(self.num_classes,),
            initializer="zeros",
            dtype="float64",
            name="correct",
        )
        self._count = self.add_variable(
            shape=(self.num_classes,),
            initializer="zeros",
            dtype="float64",
            name="count",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        scores = _scores(y_pred)
        if scores.shape[1] is not None and scores.shape[1] != self.num_classes:
            raise ValueError(
                f"Predictions have {scores.shape[1]} classes but the metric "
                f"was built with num_classes={self.num_classes}. Pass "
                f"num_classes={scores.shape[1]}."
            )
        decisions = decide(
            y_true,
            scores,
            (self.k,),
            ties=self.ties,
            sparse_labels=self.sparse_labels,
        )
        batch = tf.shape(scores)[0]
        weight = _sample_weight(sample_weight, batch)
        valid = ~decisions.invalid_label
        zero = tf.zeros([], tf.float64)
        weight = tf.where(valid, weight, zero)
        labels = tf.where(valid, decisions.labels, 0)
        correct = tf.where(decisions.correct[:, 0], weight, zero)
        self._count.assign_add(
            tf.math.unsorted_segment_sum(weight, labels, self.num_classes)
        )
        self._correct.assign_add(
            tf.math.unsorted_segment_sum(correct, labels, self.num_classes)
        )

    def result(self):
        count = tf.convert_to_tensor(self._count)
        nan = tf.constant(np.nan, tf.float64)
        value = tf.where(count > 0, self._correct / count, nan)
        return tf.cast(value, self.dtype)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact (correct, count) per class, as float64 arrays."""
        return np.asarray(self._correct.numpy()), np.asarray(
            self._count.numpy()
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            k=self.k,
            sparse_labels=self.sparse_labels,
            ties=self.ties,
        )
        return config
