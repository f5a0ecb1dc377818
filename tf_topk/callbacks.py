"""TopKEvaluation: exact top-k accuracy of the model being trained.

The callback runs `tf_topk.evaluation.evaluate` (the same loop as the
command line) at the end of every n-th epoch and writes `val_top1`,
`val_top5`, ... into the epoch logs, where later callbacks read them.
It caches the validation batches after the first evaluation, so later
epochs read them instead of decoding the images again.
"""

from __future__ import annotations

import math
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf
from absl import logging

from tf_topk import (
    distribute,
    evaluation,
    input_stage,
    listeners,
    metrics,
    results,
)
from tf_topk import progress as progress_display
from tf_topk.datasets import caching
from tf_topk.runs import files

# Bytes counted per string in a cache size estimate: strings (file names,
# ids) have no static size; longer ones make the estimate low.
_STRING_BYTES = 64


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

    The batches are cached (`cache`): the first evaluation, a full pass,
    fills the cache and later ones read it, so the images are not decoded
    again every epoch. The cache holds the batches exactly as `dataset`
    yields them, so the counts do not change. `"auto"` keeps them in
    memory when their estimated size fits `cache_budget_bytes`, else on
    disk. The estimate is the static size of one example (the shapes of
    `dataset.element_spec` after the batch dimension; a string counts 64
    bytes) times `expected_num_examples`, else times the number of batches
    and the batch size, when both are known; a dataset of unknown size is
    not cached by `"auto"`. Pass `cache="none"` for a dataset whose content
    changes between epochs, and for one built with
    `tf_topk.datasets.build(..., cache=...)`: it caches itself already. A
    disk cache goes into a new folder of its own under `cache_dir`, else
    `results_dir/cache`, else the temporary folder; `on_train_end` removes
    that folder (a memory cache stays with the callback).

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
    >>> callback.cache_size_bytes  # 10 * (32 * 40 * 3 uint8 + one int64)
    38480

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
        cache: where the batches are kept after the first evaluation:
            "auto", "memory", "disk" or "none" (see above). A dataset
            function is not cached ("auto" means "none" for it; "memory"
            and "disk" raise): each worker builds its own input, so cache
            inside the function, e.g. `tf_topk.datasets.build(...,
            cache="memory")`.
        cache_dir: the folder under which a disk cache goes (default:
            `results_dir/cache`, else the temporary folder). The callback
            writes a new subfolder and removes only that.
        cache_budget_bytes: the memory "auto" may fill (default: half of
            the memory available when the callback is built).

    Attributes:
        result: the last `EvalResult` (None before the first evaluation).
        results: every `EvalResult` by 1-based epoch.
        cache_mode: the cache in use: "memory", "disk" or "none".
        cache_size_bytes: the estimated size of the cache (None: unknown
            or not estimated).
        cache_folder: the folder of the disk cache while training, else
            None.
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
        cache: str = "auto",
        cache_dir: str | None = None,
        cache_budget_bytes: int | None = None,
    ):
        super().__init__()
        _check_arguments(
            dataset,
            every_n_epochs=every_n_epochs,
            prefix=prefix,
            expected_num_examples=expected_num_examples,
            batch_size=batch_size,
            cache=cache,
            cache_dir=cache_dir,
            cache_budget_bytes=cache_budget_bytes,
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
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self.cache_size_bytes: int | None = None
        self.cache_folder: str | None = None
        self._uncached = dataset
        self._made_parent: str | None = None
        self.cache_mode = self._choose_cache(cache, cache_budget_bytes)
        if self.cache_mode == "memory":
            self.dataset = caching.apply(dataset, "memory")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        if self.cache_mode == "disk" and self.cache_folder is None:
            self._open_disk_cache()
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
            listeners=[
                self._input_probe(),
                listeners.Metadata({**self.metadata, "epoch": epoch + 1}),
            ],
        )
        self.result = result
        self.results[epoch + 1] = result
        if logs is not None:
            for k in self.ks:
                logs[f"{self.prefix}top{k}"] = result.accuracy(k)
        logging.info("Epoch %d: %s", epoch + 1, result.summary())
        if self.results_dir and distribute.is_chief(strategy):
            files.write_results(
                result,
                os.path.join(self.results_dir, f"epoch_{epoch + 1:03d}"),
                class_names=self.class_names,
                step=epoch + 1,
            )

    def _input_probe(self) -> input_stage.InputProbe:
        """Times the input as this evaluation reads it: the first one times
        the uncached batches (a cache being filled is never read in part),
        later ones the cache."""
        if not isinstance(self._uncached, tf.data.Dataset):
            return input_stage.InputProbe(num_batches=0)
        first = self.result is None and self.cache_mode != "none"
        return input_stage.InputProbe(
            self._uncached if first else self.dataset,
            cache=self.cache_mode if not first else "none",
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        """Removes the disk cache: a later `fit()` fills a new one."""
        if self.cache_folder is None:
            return
        caching.clear(self.cache_folder)
        if self._made_parent:
            try:
                # Only if empty: other workers may still hold caches in it.
                os.rmdir(self._made_parent)
            except OSError:
                pass
        logging.info("TopKEvaluation: removed the cache %s", self.cache_folder)
        self.cache_folder = None
        self._made_parent = None
        self.dataset = self._uncached

    def _cache_parent(self) -> str | None:
        """The folder under which a disk cache goes (None: a temporary)."""
        if self.cache_dir:
            return self.cache_dir
        if self.results_dir:
            return os.path.join(self.results_dir, files.CACHE_DIR)
        return None

    def _choose_cache(self, cache: str, budget_bytes: int | None) -> str:
        """Resolves `cache` for this dataset; sets `cache_size_bytes`."""
        if not isinstance(self._uncached, tf.data.Dataset):
            if cache in ("memory", "disk"):
                raise ValueError(
                    "Argument `cache` must be 'auto' or 'none' with a dataset "
                    "function: each worker builds its own input, so cache "
                    "inside the function, e.g. with tf_topk.datasets.build("
                    f"..., cache='memory'). Received: cache={cache!r}"
                )
            return "none"
        if cache == "none":
            return "none"
        self.cache_size_bytes = _cache_size_bytes(
            self._uncached,
            num_examples=self.expected_num_examples,
            batch_size=self.batch_size,
        )
        if self.cache_size_bytes is None and cache == "auto":
            logging.info(
                "TopKEvaluation: the cache size of `dataset` is unknown (a "
                "dimension after the batch one is not static, or the number "
                "of examples is unknown), so cache='auto' leaves it "
                "uncached. To cache it, pass expected_num_examples (with "
                "static shapes) or cache='memory'."
            )
            return "none"
        mode = caching.resolve(
            cache,
            size_bytes=self.cache_size_bytes or 0,
            directory=self._cache_parent() or tempfile.gettempdir(),
            budget_bytes=budget_bytes,
        )
        logging.info(
            "TopKEvaluation: cache=%s (requested %s; estimated size %s).",
            mode,
            cache,
            "unknown"
            if self.cache_size_bytes is None
            else f"{self.cache_size_bytes / 2**20:.1f} MiB",
        )
        return mode

    def _open_disk_cache(self) -> None:
        """Points `dataset` at a disk cache in a new folder of its own."""
        parent = self._cache_parent()
        if parent is None:
            self.cache_folder = tempfile.mkdtemp(prefix="topk_evaluation_")
        else:
            if not self.cache_dir and not tf.io.gfile.exists(parent):
                self._made_parent = parent  # results_dir/cache: ours.
            # A unique name: workers sharing a folder do not collide.
            self.cache_folder = os.path.join(
                parent, f"topk_evaluation_{uuid.uuid4().hex[:12]}"
            )
        self.dataset = caching.apply(
            self._uncached, "disk", os.path.join(self.cache_folder, "batches")
        )
        logging.info(
            "TopKEvaluation: caching the batches in %s", self.cache_folder
        )


def _check_arguments(
    dataset,
    *,
    every_n_epochs,
    prefix,
    expected_num_examples,
    batch_size,
    cache,
    cache_dir,
    cache_budget_bytes,
) -> None:
    """Raises for a bad argument of `TopKEvaluation`, before training."""
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
    if not _is_count(every_n_epochs, minimum=1):
        raise ValueError(
            "Argument `every_n_epochs` must be a positive integer. "
            f"Received: every_n_epochs={every_n_epochs!r}"
        )
    if not isinstance(prefix, str):
        raise TypeError(
            "Argument `prefix` must be a string such as 'val_'. "
            f"Received: prefix={prefix!r}"
        )
    if expected_num_examples is not None and not _is_count(
        expected_num_examples, minimum=1
    ):
        raise ValueError(
            "Argument `expected_num_examples` must be a positive integer "
            "or None. Received: "
            f"expected_num_examples={expected_num_examples!r}"
        )
    caching.check_mode(cache, "cache")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(
            "Argument `cache_dir` must be a folder path or None. "
            f"Received: cache_dir={cache_dir!r}"
        )
    if cache_budget_bytes is not None and not _is_count(
        cache_budget_bytes, minimum=0
    ):
        raise ValueError(
            "Argument `cache_budget_bytes` must be a non-negative integer "
            f"or None. Received: cache_budget_bytes={cache_budget_bytes!r}"
        )


def _is_count(value, *, minimum: int) -> bool:
    """Whether `value` is an int (not a bool) of at least `minimum`."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int)
        and value >= minimum
    )


def _cache_size_bytes(
    dataset: tf.data.Dataset,
    *,
    num_examples: int | None,
    batch_size: int | None,
) -> int | None:
    """An upper bound of the bytes of all batches of `dataset`, or None.

    Bytes per example (static shapes after the batch dimension times the
    dtype size, `_STRING_BYTES` per string) times `num_examples`, else
    times the number of batches and the batch size (the argument, else the
    static batch dimension), when both are known. None when a component
    is not a dense tensor of static shape, or the count is unknown.
    """
    per_example = 0
    batch_dims = set()
    for spec in tf.nest.flatten(dataset.element_spec):
        if not isinstance(spec, tf.TensorSpec) or not spec.shape.rank:
            return None
        dims = spec.shape.as_list()
        if None in dims[1:]:
            return None
        batch_dims.add(dims[0])
        item = _STRING_BYTES if spec.dtype == tf.string else spec.dtype.size
        per_example += item * math.prod(dims[1:])
    if num_examples is None:
        if batch_size is None and len(batch_dims) == 1:
            batch_size = batch_dims.pop()
        num_batches = int(dataset.cardinality())
        if batch_size is None or num_batches < 0:
            return None
        num_examples = num_batches * batch_size
    return per_example * num_examples
