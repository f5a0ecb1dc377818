"""Streaming top-k accuracy metrics with exact counts.

`tf.math.in_top_k` decides, once per k (`tf_topk.decisions.decide`, which
calls `tf.math.in_top_k(labels, scores, k)`); `tf.reduce_sum` counts, in
float64 sums of sample weights, so `result()` is an exact count divided by
an exact count. `tf_topk.metric_arguments` checks and converts the
arguments. Both modules' public names are also reachable here
(`metrics.decide`, `metrics.validate_ks`, ...).

Semantics:

* **Ties.** With `ties="inclusive"` (the default, exactly `tf.math.in_top_k`)
  an example is correct when fewer than k classes score strictly higher than
  the true class: a tie straddling the k-th place counts as correct, and a
  constant model is 100% top-1. With `ties="exclusive"` every other class
  that scores at least as high as the true class counts against it, so the
  same tie counts as wrong. With `count_ties=True`, `counts().ties` counts
  the examples such a tie decided (it costs one more `in_top_k` per k).
  Scores compare as on CPU: subnormal scores equal 0.
* **Non-finite rows.** A row of predictions holding any NaN or Inf counts as
  wrong and is counted in `counts().nonfinite`.
* **Labels.** Sparse labels are class indices in [0, num_classes); anything
  else raises (a `ValueError` eagerly, `tf.errors.InvalidArgumentError` in a
  graph). Under XLA, which compiles assertions away, such examples count as
  wrong, are counted in `counts().invalid_labels`, and `result()` becomes
  NaN, so a run cannot report a plausible number. One-hot or probability
  labels (`sparse_labels=False`) are reduced with an explicit argmax.
  Multi-hot labels (`multi_label=True`, as ImageNet-ReaL) are correct when
  any true label is in the top k; rows with no true label are left out of
  the counts (`counts().unlabeled`).
* **Precision.** Predictions of any real dtype are cast to float32 before
  ranking (float16 logits tie far more often; see ties).
* **Sample weights.** Every count is a sum of sample weights (1 by
  default); weight 0 removes an example from every count, but its label must
  still be a class index: a bad label is bad data, whatever its weight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_topk import decisions, distribute, metric_arguments

# Re-exported, so that `tf_topk.metrics.decide`, `tf_topk.metrics.validate_ks`
# and the like keep working: the decision and its argument checks.
from tf_topk.decisions import Decisions, decide  # noqa: F401
from tf_topk.metric_arguments import (  # noqa: F401
    check_k_fits,
    validate_k,
    validate_ks,
    validate_ties,
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

    For users who aggregate the decisions themselves. Semantics (ties,
    non-finite rows, label range) are those of the module docstring; a
    non-finite row is never correct.

    >>> correct = top_k_correct([2, 0], [[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]], 1)
    >>> correct.numpy().tolist()
    [True, False]

    Args:
        labels: class indices [B] (see `decide` for the other forms).
        predictions: [B, C] scores.
        k: a positive integer, at most C.
        ties: "inclusive" (`tf.math.in_top_k`'s rule) or "exclusive".
        sparse_labels: whether labels are class indices.
        multi_label: whether labels are multi-hot sets of true classes.

    Returns:
        A bool tensor of shape [B].
    """
    decided = decisions.decide(
        labels,
        predictions,
        (validate_k(k),),
        ties=ties,
        sparse_labels=sparse_labels,
        multi_label=multi_label,
    )
    return decided.correct[0]


@dataclasses.dataclass(frozen=True)
class Counts:
    """Exact counts accumulated by a metric (sums of sample weights).

    Attributes:
        ks: the k values, ascending.
        correct: correct examples per k.
        num_examples: examples counted (those with a true label).
        ties: examples per k whose outcome a tie at the k-th place decided;
            None unless the metric counts ties (`count_ties=True`).
        nonfinite: examples whose predictions held NaN or Inf.
        invalid_labels: examples with an out-of-range label (only ever under
            XLA; elsewhere they raise).
        unlabeled: multi-label examples with no true label (left out).
    """

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
        validate_ties(options["ties"])
        # `decide`'s keyword arguments, also what `get_config` saves.
        self._options = options
        for option, value in options.items():  # self.ties, ...
            setattr(self, option, value)

    def _counter(self, name, shape=()):
        return self.add_variable(shape, "zeros", "float64", name=name)

    def _decide(self, y_true, y_pred, ks, sample_weight):
        decided = decisions.decide(y_true, y_pred, ks, **self._options)
        batch = tf.shape(decided.has_label)[0]
        return decided, metric_arguments.weights(sample_weight, batch)

    def get_config(self):
        return {**super().get_config(), **self._options}


@keras.saving.register_keras_serializable(package="tf_topk")
class TopKAccuracies(_Metric):
    """Top-k accuracy for several k in one metric.

    `result()` is a dict `{"top1": ..., "top5": ...}`, so `fit` logs and
    `model.evaluate(..., return_dict=True)` show every k (with `val_` in
    validation logs). Exact counts: `counts()`. One metric decides every k
    of a batch from the same converted scores and labels.

    Semantics, in short (the module docstring says more): under the
    inclusive rule (the default) a tie at the k-th place counts as correct,
    under the exclusive rule as wrong; a row of predictions holding NaN or
    Inf counts as wrong and in `counts().nonfinite`; a sparse label outside
    [0, num_classes) raises (under XLA it counts in
    `counts().invalid_labels` and `result()` is NaN); each example weighs
    its sample weight (weight 0 leaves it out of every count).

    >>> m = TopKAccuracies(ks=(1, 2), count_ties=True)
    >>> m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.2]])
    >>> {k: float(v) for k, v in m.result().items()}
    {'top1': 1.0, 'top2': 1.0}
    >>> m.counts().ties
    (1.0, 0.0)
    >>> m = TopKAccuracies(ks=(1, 2), ties="exclusive")
    >>> m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.2]])
    >>> {k: float(v) for k, v in m.result().items()}
    {'top1': 0.5, 'top2': 1.0}

    Usage with `compile()`:

    ```python
    model.compile(
        loss="sparse_categorical_crossentropy",
        metrics=[tf_topk.metrics.TopKAccuracies(ks=(1, 5))],
    )
    ```

    Args:
        ks: the k values, positive and at most the number of classes.
        sparse_labels: labels are class indices (else one-hot or
            probabilities, reduced with argmax).
        multi_label: labels are multi-hot sets of true classes (ReaL).
        ties: "inclusive" (`tf.math.in_top_k`'s rule) or "exclusive".
        count_ties: count the examples a tie decided (one more in_top_k per
            k, over the rows correct at max(ks)).
        name: the metric's name (default "top_k_accuracies").
        dtype: the dtype of `result()`.
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
        super().__init__(
            name or "top_k_accuracies",
            dtype,
            sparse_labels=bool(sparse_labels),
            ties=ties,
            multi_label=bool(multi_label),
            count_ties=bool(count_ties),
        )
        self.ks = validate_ks(ks)
        per_k = (len(self.ks),)
        self._correct = self._counter("correct", per_k)
        self._ties = self._counter("ties", per_k) if count_ties else None
        self._count = self._counter("count")
        # Rows non-finite, with an invalid label, with no label.
        self._rows = self._counter("rows", (3,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Counts one batch (see the class docstring for the semantics)."""
        decided, weight = self._decide(y_true, y_pred, self.ks, sample_weight)
        labelled = decided.has_label
        rows = [labelled, decided.nonfinite, decided.invalid_label]
        masks = [decided.correct, tf.stack(rows + [~labelled])]
        if self._ties is not None:
            masks.append(decided.tie_decided)
        # One reduction gives a weighted sum per row of masks: correct per
        # k, labelled, non-finite, invalid, unlabeled, then ties per k.
        zero = tf.zeros([], tf.float64)
        sums = tf.reduce_sum(tf.where(tf.concat(masks, 0), weight, zero), 1)
        num_ks = len(self.ks)
        self._correct.assign_add(sums[:num_ks])
        self._count.assign_add(sums[num_ks])
        self._rows.assign_add(sums[num_ks + 1 : num_ks + 4])
        if self._ties is not None:
            self._ties.assign_add(sums[num_ks + 4 :])

    def result(self):
        """{"top{k}": accuracy} per k; NaN after an invalid label (XLA)."""
        correct = tf.convert_to_tensor(self._correct)
        value = tf.math.divide_no_nan(correct, self._count)
        nan = tf.constant(np.nan, tf.float64)
        value = tf.cast(tf.where(self._rows[1] > 0, nan, value), self.dtype)
        return {f"top{k}": value[i] for i, k in enumerate(self.ks)}

    def counts(self) -> Counts:
        """The exact counts so far, as Python numbers."""
        nonfinite, invalid_labels, unlabeled = self._rows.numpy().tolist()
        return Counts(
            ks=self.ks,
            correct=_floats(self._correct),
            num_examples=float(self._count.numpy()),
            ties=None if self._ties is None else _floats(self._ties),
            nonfinite=nonfinite,
            invalid_labels=invalid_labels,
            unlabeled=unlabeled,
        )

    def local_counts(self, strategy=None) -> tuple[tuple[float, ...], float]:
        """(correct per k, num_examples) of this worker's replicas.

        A local read, for running progress: under a multi-worker strategy
        `counts()` is a collective every worker must join.
        """
        strategy = strategy or tf.distribute.get_strategy()
        correct = distribute.local_sum(self._correct, strategy)
        count = distribute.local_sum(self._count, strategy)
        return tuple(correct.tolist()), float(count)

    def get_config(self):
        return {**super().get_config(), "ks": list(self.ks)}


@keras.saving.register_keras_serializable(package="tf_topk")
class TopKAccuracy(TopKAccuracies):
    """Top-k accuracy: the fraction of examples whose class is in the top k.

    `TopKAccuracies` for one k, with a scalar `result()`; exact counts:
    `counts()`. Semantics as in `TopKAccuracies`: a tie at the k-th place is
    correct under `ties="inclusive"` (the default) and wrong under
    "exclusive"; a NaN or Inf row is wrong; a label outside
    [0, num_classes) raises; counts are sums of sample weights.

    >>> m = TopKAccuracy(k=1)
    >>> m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    >>> float(m.result())
    0.5
    >>> m.update_state([1], [[0.5, float("nan"), 0.1]])
    >>> counts = m.counts()
    >>> counts.correct, counts.num_examples, counts.nonfinite
    ((1.0,), 3.0, 1.0)

    Usage with `compile()`:

    ```python
    model.compile(
        loss="sparse_categorical_crossentropy",
        metrics=[tf_topk.metrics.TopKAccuracy(k=5)],
    )
    ```

    Args:
        k: a positive integer, at most the number of classes.
        name: the metric's name (default `top{k}`).
        **options: `sparse_labels`, `multi_label`, `ties`, `count_ties` and
            `dtype`, as in `TopKAccuracies`.
    """

    def __init__(self, k: int = 5, *, name: str | None = None, **options):
        k = validate_k(k)
        super().__init__((k,), name=name or f"top{k}", **options)
        self.k = k

    def result(self):
        """The accuracy at k; NaN after an invalid label (XLA)."""
        return super().result()[f"top{self.k}"]

    def get_config(self):
        config = super().get_config()
        del config["ks"]
        return {**config, "k": self.k}


@keras.saving.register_keras_serializable(package="tf_topk")
class PerClassTopKAccuracy(_Metric):
    """Top-k accuracy per true class: a [num_classes] vector.

    Entry c is the fraction of the examples of true class c whose class is
    in the top k: NaN for a class with no examples (no accuracy exists).
    Semantics as in `TopKAccuracies`: a tie at the k-th place is correct
    under `ties="inclusive"` (the default) and wrong under "exclusive"; a
    NaN or Inf row counts as wrong for its class; a label outside
    [0, num_classes) raises (under XLA it is left out of every class);
    counts are sums of sample weights. Multi-hot labels are not supported:
    an example belongs to one class here.

    >>> m = PerClassTopKAccuracy(num_classes=3, k=1)
    >>> m.update_state([2, 0, 0], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    >>> [round(float(v), 2) for v in m.result()]
    [0.5, nan, 1.0]
    >>> [c.tolist() for c in m.counts()]
    [[1.0, 0.0, 1.0], [2.0, 0.0, 1.0]]

    Usage with `compile()`:

    ```python
    model.compile(
        loss="sparse_categorical_crossentropy",
        metrics=[tf_topk.metrics.PerClassTopKAccuracy(num_classes=1000)],
    )
    ```

    Args:
        num_classes: the number of classes (that of the predictions).
        k: a positive integer, at most `num_classes`.
        sparse_labels: labels are class indices (else one-hot or
            probabilities, reduced with argmax).
        ties: "inclusive" (`tf.math.in_top_k`'s rule) or "exclusive".
        name: the metric's name (default `per_class_top{k}`).
        dtype: the dtype of `result()`.
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
        super().__init__(
            name or f"per_class_top{k}",
            dtype,
            sparse_labels=bool(sparse_labels),
            ties=ties,
        )
        self.num_classes = validate_k(num_classes, "num_classes")
        self.k = validate_k(k)
        check_k_fits((self.k,), self.num_classes)
        self._correct = self._counter("correct", (self.num_classes,))
        self._count = self._counter("count", (self.num_classes,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Counts one batch into its examples' true classes."""
        classes = tf.convert_to_tensor(y_pred).shape[-1]
        if classes is not None and classes != self.num_classes:
            raise ValueError(
                f"Predictions have {classes} classes but the metric was built "
                f"with num_classes={self.num_classes}. Pass "
                f"num_classes={classes}."
            )
        decided, weight = self._decide(y_true, y_pred, (self.k,), sample_weight)
        # An invalid label (XLA only) names no class: it counts nowhere.
        invalid = decided.invalid_label
        zero = tf.zeros_like(weight)
        weight = tf.where(invalid, zero, weight)
        correct = tf.where(decided.correct[0], weight, zero)
        labels = tf.where(invalid, 0, decided.labels)
        self._count.assign_add(
            tf.math.unsorted_segment_sum(weight, labels, self.num_classes)
        )
        self._correct.assign_add(
            tf.math.unsorted_segment_sum(correct, labels, self.num_classes)
        )

    def result(self):
        """The accuracy per class; NaN for a class with no examples."""
        count = tf.convert_to_tensor(self._count)
        nan = tf.constant(np.nan, tf.float64)
        value = tf.where(count > 0, self._correct / count, nan)
        return tf.cast(value, self.dtype)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact (correct, count) per class, as float64 arrays."""
        correct = np.asarray(self._correct.numpy())
        count = np.asarray(self._count.numpy())
        return correct, count

    def get_config(self):
        config = {"num_classes": self.num_classes, "k": self.k}
        return {**super().get_config(), **config}
