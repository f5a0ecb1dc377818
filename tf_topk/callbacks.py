"""TopKEvaluation: exact top-k accuracy of the model being trained.

The callback runs `tf_topk.evaluation.evaluate` (the same loop as the
command line) at the end of every n-th epoch and writes `val_top1`,
`val_top5`, ... into the epoch logs, where later callbacks read them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf
from absl import logging

from tf_topk import distribute, evaluation, metrics, report, results
from tf_topk import progress as progress_display


class TopKEvaluation(keras.callbacks.Callback):
    """Evaluates top-k accuracy exactly at the end of every n-th epoch.

    The model is evaluated on every example of `dataset` once, with
    `tf_topk.evaluate` (padding masked, counts summed across replicas and
    workers, the example count checked), under the strategy the model was
    built in (`model.distribute_strategy`). The accuracies go into the
    epoch `logs` as `f"{prefix}top{k}"`, before the callbacks listed after
    this one run: put it first, so `ModelCheckpoint`, `EarlyStopping`,
    `CSVLogger` and `TensorBoard` see the keys (Keras adds `History` last,
    so `fit()`'s history holds them too). Epochs skipped by
    `every_n_epochs` get no keys. With `results_dir`, the chief writes
    `results_dir/epoch_{epoch:03d}/results.json` (and per_class.csv,
    TensorBoard scalars) after each evaluation.

    >>> import numpy as np
    >>> from tf_topk import testing
    >>> images = np.stack([testing.constant_image(i % 5, 5) for i in range(10)])
    >>> labels = testing.oracle_labels(np.arange(10) % 5, 7, 5)
    >>> data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    >>> model = testing.oracle_model(5)
    >>> model.compile(loss="sparse_categorical_crossentropy")
    >>> callback = TopKEvaluation(data, ks=(1, 5), expected_num_examples=10)
    >>> history = model.fit(data, epochs=2, callbacks=[callback], verbose=0)
    >>> history.history["val_top1"], history.history["val_top5"]
    ([0.7, 0.7], [1.0, 1.0])
    >>> callback.result.correct[1]
    7

    Usage with `fit()`:

    ```python
    evaluator = tf_topk.callbacks.TopKEvaluation(
        val_ds, ks=(1, 5), expected_num_examples=50000,
        results_dir="/tmp/run/eval")
    model.fit(train_ds, epochs=90, callbacks=[
        evaluator,  # first: the callbacks below read its val_top1
        keras.callbacks.ModelCheckpoint(
            "/tmp/run/best.keras", monitor="val_top1", mode="max",
            save_best_only=True),
        keras.callbacks.EarlyStopping(
            monitor="val_top1", mode="max", patience=5),
        keras.callbacks.CSVLogger("/tmp/run/log.csv"),
    ])
    ```

    Args:
        dataset: batches of (images, labels) or (images, labels, weights),
            as for `tf_topk.evaluate`; finite (no `repeat()`) and in a
            fixed order. Or, so that each worker of a multi-worker run reads
            only its share, a function of a `tf.distribute.InputContext`
            (see `tf_topk.evaluate`; needs `batch_size` and
            `expected_num_examples`).
        ks: the k values to report.
        every_n_epochs: evaluate after epochs n, 2n, ... (1-based).
        prefix: prepended to the log keys (`val_top1`).
        expected_num_examples: the number of examples `dataset` must yield
            each time; a different count raises (strongly recommended).
        batch_size: the global batch size of `dataset` (inferred when None).
        results_dir: when set, the chief writes each evaluation's results
            into `results_dir/epoch_{epoch:03d}`.
        class_names: names for per_class.csv.
        ties: "inclusive" or "exclusive" (see `tf_topk.metrics`).
        jit_compile: compile the evaluation step with XLA.
        progress: as for `tf_topk.evaluate`; default "none" (fit shows its
            own progress).
        metadata: copied into every result (e.g. the model name).

    Attributes:
        result: the last `EvalResult` (None before the first evaluation).
        results: every `EvalResult` by 1-based epoch.
    """

    def __init__(
        self,
        dataset,
        *,
        ks: Sequence[int] = (1, 5),
        every_n_epochs: int = 1,
        prefix: str = "val_",
        expected_num_examples: int | None = None,
        batch_size: int | None = None,
        results_dir: str | None = None,
        class_names: Sequence[str] | None = None,
        ties: str = "inclusive",
        jit_compile: bool = False,
        progress: str = "none",
        metadata: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if not isinstance(dataset, tf.data.Dataset):
            if not callable(dataset):
                raise TypeError(
                    "Argument `dataset` must be a tf.data.Dataset of batches "
                    "or a function of a tf.distribute.InputContext returning "
                    f"one. Received: {type(dataset).__name__}"
                )
            if batch_size is None or expected_num_examples is None:
                raise ValueError(
                    "A dataset function needs `batch_size` and "
                    "`expected_num_examples`. Received: "
                    f"batch_size={batch_size!r}, "
                    f"expected_num_examples={expected_num_examples!r}"
                )
        if (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or every_n_epochs < 1
        ):
            raise ValueError(
                "Argument `every_n_epochs` must be a positive integer. "
                f"Received: every_n_epochs={every_n_epochs!r}"
            )
        if not isinstance(prefix, str):
            raise TypeError(
                "Argument `prefix` must be a string such as 'val_'. "
                f"Received: prefix={prefix!r}"
            )
        if expected_num_examples is not None and (
            isinstance(expected_num_examples, bool)
            or not isinstance(expected_num_examples, int)
            or expected_num_examples < 1
        ):
            raise ValueError(
                "Argument `expected_num_examples` must be a positive integer "
                "or None. Received: "
                f"expected_num_examples={expected_num_examples!r}"
            )
        progress_display.validate(progress)
        self.dataset = dataset
        self.ks = metrics.validate_ks(ks)
        self.ties = metrics.validate_ties(ties)
        self.every_n_epochs = every_n_epochs
        self.prefix = prefix
        self.expected_num_examples = expected_num_examples
        self.batch_size = batch_size
        self.results_dir = results_dir
        self.class_names = class_names
        self.jit_compile = jit_compile
        self.progress = progress
        self.metadata = dict(metadata or {})
        self.result: results.EvalResult | None = None
        self.results: dict[int, results.EvalResult] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        strategy = (
            getattr(self.model, "distribute_strategy", None)
            or tf.distribute.get_strategy()
        )
        result = evaluation.evaluate(
            self.model,
            self.dataset,
            ks=self.ks,
            strategy=strategy,
            expected_num_examples=self.expected_num_examples,
            batch_size=self.batch_size,
            ties=self.ties,
            jit_compile=self.jit_compile,
            progress=self.progress,
            metadata={**self.metadata, "epoch": epoch + 1},
        )
        self.result = result
        self.results[epoch + 1] = result
        if logs is not None:
            for k in self.ks:
                logs[f"{self.prefix}top{k}"] = result.accuracy(k)
        logging.info("Epoch %d: %s", epoch + 1, result.summary())
        if self.results_dir and distribute.is_chief(strategy):
            report.write(
                result,
                os.path.join(self.results_dir, f"epoch_{epoch + 1:03d}"),
                class_names=self.class_names,
                step=epoch + 1,
            )
