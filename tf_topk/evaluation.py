"""The evaluation loop: one pass of a model over a dataset, exact top-k counts.

`evaluate` is the only loop in tf_topk: the command line, the Python API and
the Keras callback all call it. It pads the last batch to a full, static
shape and masks the padding with sample weight 0, runs under any
`tf.distribute` strategy (counts are summed across replicas and workers),
averages multi-crop predictions per image, and checks that it saw exactly
the number of examples expected.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_topk import distribute, metrics
from tf_topk.results import EvalResult

_PROGRESS = ("auto", "bar", "log", "none")


def _element_parts(element):
    if not isinstance(element, tuple) or len(element) not in (2, 3):
        raise ValueError(
            "Argument `dataset` must yield (images, labels) or (images, "
            "labels, sample_weights) batches. Received: element_spec="
            f"{element}"
        )
    return element


def _leading_dim(spec) -> int | None:
    return tf.nest.flatten(spec)[0].shape[0]


def _infer_batch_size(dataset: tf.data.Dataset) -> int:
    static = _leading_dim(dataset.element_spec[1])
    if static is not None:
        return int(static)
    for element in dataset.take(1):
        return int(tf.shape(element[1])[0])
    raise ValueError(
        "Argument `dataset` is empty: there is nothing to evaluate. Check "
        "the data path and split."
    )


def _pad_to_batch(
    dataset: tf.data.Dataset, batch_size: int, rows: int | None = None
):
    """Pads every batch to `rows` (default `batch_size`) rows, weighted 0."""
    target = rows or batch_size

    def pad(images, labels, weights=None):
        rows = tf.shape(labels)[0]
        tf.debugging.assert_less_equal(
            rows,
            batch_size,
            message=f"A batch is larger than batch_size={batch_size}.",
        )
        if weights is None:
            weights = tf.ones([rows], tf.float32)
        missing = target - rows

        def pad_one(x):
            paddings = [[0, missing]] + [[0, 0]] * (x.shape.rank - 1)
            x = tf.pad(x, paddings)
            return tf.ensure_shape(x, [target] + x.shape[1:].as_list())

        return (
            tf.nest.map_structure(pad_one, images),
            pad_one(labels),
            pad_one(tf.cast(weights, tf.float32)),
        )

    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE)


def _predict(model, images, num_classes):
    """Model outputs as float32 [B, C]; multi-crop outputs averaged."""
    flat = tf.nest.flatten(images)
    crops = flat[0].shape.rank == 5
    if crops:
        num_crops = tf.shape(flat[0])[1]
        flat = [
            tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)) for x in flat
        ]
    inputs = flat[0] if len(flat) == 1 else flat
    outputs = tf.cast(model(inputs, training=False), tf.float32)
    if crops:
        outputs = tf.reduce_mean(
            tf.reshape(outputs, [-1, num_crops, num_classes]), axis=1
        )
    return outputs


def _num_classes(model) -> int:
    shape = getattr(model, "output_shape", None)
    if shape is None or not isinstance(shape[-1], int):
        raise ValueError(
            "Argument `model` must have a static number of output classes "
            f"(output_shape[-1]). Received: output_shape={shape}"
        )
    return int(shape[-1])


def _use_progress_bar(progress: str) -> bool:
    if progress not in _PROGRESS:
        raise ValueError(
            f"Argument `progress` must be one of {list(_PROGRESS)}. "
            f"Received: progress={progress!r}"
        )
    if progress == "auto":
        return sys.stdout.isatty()
    return progress == "bar"


def evaluate(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    ks: Sequence[int] = (1, 5),
    strategy: tf.distribute.Strategy | None = None,
    expected_num_examples: int | None = None,
    batch_size: int | None = None,
    ties: str = "inclusive",
    jit_compile: bool = False,
    progress: str = "auto",
    log_every_n_examples: int = 12800,
    metadata: Mapping[str, Any] | None = None,
) -> EvalResult:
    """Evaluates `model` on every example of `dataset`, exactly once.

    >>> from tf_topk import testing
    >>> model = testing.oracle_model(5)
    >>> import numpy as np
    >>> images = np.stack([testing.constant_image(c, 5) for c in range(5)])
    >>> data = tf.data.Dataset.from_tensor_slices((images, [0, 1, 2, 0, 0]))
    >>> result = evaluate(model, data.batch(2), ks=(1, 5), progress="none")
    >>> result.correct[1], result.num_examples
    (3, 5)

    Args:
        model: maps an image batch (or a list of image batches, one per
            ensemble member) to [B, C] class scores; with multi-crop
            batches [B, N, H, W, 3] the N outputs are averaged per image.
        dataset: batches of (images, labels) or (images, labels, weights),
            labels as class indices [B] or multi-hot [B, C] (multi-label).
            For multi-worker runs in which each worker should read and
            decode only its share, a function of a
            `tf.distribute.InputContext` returning the batches of examples
            i with i % num_input_pipelines == input_pipeline_id, at most
            ceil(batch_size / num_input_pipelines) per batch (what
            `tf_topk.datasets.build(..., num_shards=, shard_index=)`
            gives); with one pipeline it must return the whole dataset.
            A function needs `batch_size` and `expected_num_examples`.
        ks: the k values, each at most C.
        strategy: a `tf.distribute` strategy to run under; default: the
            current one (none). Every batch is split by rows across its
            replicas and workers (see `_distribute`): each example is
            counted once, every worker runs one step per batch, and every
            replica sees one static shape. Every worker of a multi-worker
            run must call `evaluate` with the same dataset (or dataset
            function); each gets the global result.
        expected_num_examples: the number of examples the dataset must
            yield; a different count raises.
        batch_size: the (global) batch size of `dataset`; inferred from its
            first batch when None. Every batch is padded to it (under a
            strategy, to the next multiple of the number of replicas).
        ties: "inclusive" (tf.math.in_top_k) or "exclusive"; see
            `tf_topk.metrics`.
        jit_compile: compile the step with XLA (under a strategy, the
            model's forward pass only).
        progress: "auto" (a bar on a terminal, log lines otherwise), "bar",
            "log" or "none".
        log_every_n_examples: interval of the progress log lines.
        metadata: copied into the result (and results.json).

    Returns:
        An `EvalResult`.

    Raises:
        ValueError: bad arguments, an empty dataset, or an example count that
            differs from `expected_num_examples`.
    """
    ks = metrics.validate_ks(ks)
    metrics.validate_ties(ties)
    dataset_fn = None
    if callable(dataset) and not isinstance(dataset, tf.data.Dataset):
        if batch_size is None or expected_num_examples is None:
            raise ValueError(
                "A dataset function needs `batch_size` and "
                "`expected_num_examples` (each worker pads its share to the "
                "step count of the largest). Received: "
                f"batch_size={batch_size!r}, "
                f"expected_num_examples={expected_num_examples!r}"
            )
        dataset_fn = dataset
        # One input pipeline: the whole dataset (also gives the spec).
        dataset = dataset_fn(tf.distribute.InputContext())
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "Argument `dataset` must be a tf.data.Dataset of batches, or a "
            "function of a tf.distribute.InputContext returning one. "
            f"Received: {type(dataset).__name__}"
        )
    spec = _element_parts(dataset.element_spec)
    use_bar = _use_progress_bar(progress)
    num_classes = _num_classes(model)
    metrics.check_k_fits(ks, num_classes)
    multi_label = spec[1].shape.rank == 2 and spec[1].shape[-1] != 1
    if batch_size is None:
        batch_size = _infer_batch_size(dataset)
    strategy = strategy or tf.distribute.get_strategy()

    with strategy.scope():
        topk = metrics.TopKAccuracies(
            ks, multi_label=multi_label, ties=ties, name="eval_top_k"
        )
        per_class = (
            None
            if multi_label
            else metrics.PerClassTopKAccuracy(num_classes, 1, ties=ties)
        )

    distributed = not _is_default(strategy)
    if distributed:
        padded = _distribute(
            dataset, strategy, batch_size, dataset_fn, expected_num_examples
        )
    else:
        padded = _pad_to_batch(dataset, batch_size)

    # Under a strategy, XLA compiles only the model: a compiled step reads
    # every replica's metric variables from one device, which XLA refuses.
    predict = (
        tf.function(_predict, jit_compile=True)
        if jit_compile and distributed
        else _predict
    )

    def replica_step(images, labels, weights):
        outputs = predict(model, images, num_classes)
        topk.update_state(labels, outputs, weights)
        if per_class is not None:
            per_class.update_state(labels, outputs, weights)
        return tf.reduce_sum(weights)

    # No collective per step: each worker counts its own rows, and the
    # global count comes from the metric variables, summed across replicas
    # and workers when read. Workers never wait on each other mid-loop.
    @tf.function(jit_compile=jit_compile and not distributed)
    def step(images, labels, weights):
        return strategy.run(replica_step, args=(images, labels, weights))

    num_batches = None
    if expected_num_examples is not None:
        num_batches = -(-expected_num_examples // batch_size)
        pipelines = _num_input_pipelines(strategy) if dataset_fn else 1
        if pipelines > 1:
            num_batches = _sharded_steps(
                expected_num_examples, pipelines, batch_size
            )
    bar = (
        keras.utils.Progbar(
            num_batches, stateful_metrics=[f"top{k}" for k in ks]
        )
        if use_bar
        else None
    )
    local_seen = 0
    next_log = log_every_n_examples
    input_time = model_time = first_step_time = 0.0
    first_step_examples = 0
    start = time.perf_counter()
    iterator = iter(padded)
    batch_index = 0
    while True:
        t0 = time.perf_counter()
        try:
            images, labels, weights = next(iterator)
        except StopIteration:
            break
        t1 = time.perf_counter()
        step_seen = sum(
            float(x)
            for x in strategy.experimental_local_results(
                step(images, labels, weights)
            )
        )
        t2 = time.perf_counter()
        input_time += t1 - t0
        model_time += t2 - t1
        local_seen += step_seen
        if batch_index == 0:
            first_step_time, first_step_examples = t2 - t0, step_seen
        batch_index += 1
        if bar is not None:
            bar.update(batch_index, values=_running(topk, strategy))
        elif progress != "none" and local_seen >= next_log:
            running = " ".join(
                f"{k}={v:.4f}" for k, v in _running(topk, strategy)
            )
            logging.info("Processed %d images. %s", local_seen, running)
            next_log += log_every_n_examples
    wall_time = time.perf_counter() - start

    # Reading the metric variables sums them across replicas and workers
    # (a collective that every worker reaches here, in the same order).
    counts = topk.counts()
    seen = int(round(counts.num_examples + counts.unlabeled))

    if seen == 0:
        raise ValueError(
            "Argument `dataset` is empty: there is nothing to evaluate. "
            "Check the data path and split."
        )
    if expected_num_examples is not None and seen != expected_num_examples:
        raise ValueError(
            f"The evaluation saw {seen} examples but "
            f"expected_num_examples={expected_num_examples}: examples were "
            "dropped or duplicated (drop_remainder, repeat(), a filter, or a "
            "wrong count). Refusing to report a number over the wrong set."
        )
    if counts.invalid_labels:
        raise ValueError(
            f"{int(counts.invalid_labels)} examples had labels outside "
            f"[0, {num_classes}). Check the label offset and the model's "
            "number of classes."
        )
    warm_time = wall_time - first_step_time
    # All workers run the same number of steps, so this worker's share of
    # the examples scales its local rate to the global one.
    share = seen / local_seen if local_seen else 1.0
    warm_examples = (local_seen - first_step_examples) * share
    images_per_s = (
        warm_examples / warm_time
        if warm_examples > 0 and warm_time > 0
        else seen / wall_time
    )
    per_class_correct = per_class_count = None
    if per_class is not None:
        correct_arr, count_arr = per_class.counts()
        per_class_correct = tuple(int(round(x)) for x in correct_arr)
        per_class_count = tuple(int(round(x)) for x in count_arr)
    return EvalResult(
        ks=ks,
        num_examples=seen,
        num_scored=int(round(counts.num_examples)),
        correct={k: int(round(c)) for k, c in zip(ks, counts.correct)},
        ties={k: int(round(t)) for k, t in zip(ks, counts.ties)},
        nonfinite=int(round(counts.nonfinite)),
        unlabeled=int(round(counts.unlabeled)),
        per_class_correct=per_class_correct,
        per_class_count=per_class_count,
        wall_time_s=wall_time,
        images_per_s=images_per_s,
        input_time_s=input_time,
        model_time_s=model_time,
        ties_rule=ties,
        metadata=dict(metadata or {}),
    )


def _num_input_pipelines(strategy: tf.distribute.Strategy) -> int:
    """Workers feeding their own input (1 when not multi-worker)."""
    try:
        local = len(strategy.extended.worker_devices)
    except (AttributeError, RuntimeError, ValueError):
        return 1
    return max(1, strategy.num_replicas_in_sync // max(1, local))


def _is_default(strategy: tf.distribute.Strategy) -> bool:
    # The no-op strategy in force outside any `strategy.scope()`.
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def _distribute(
    dataset: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
    batch_size: int,
    shards=None,
    expected_num_examples: int | None = None,
):
    """Splits the examples across replicas and workers, each exactly once.

    With a dataset, every batch is padded (weight 0) to
    `replicas * per_replica` rows, and worker w's L local replicas get rows
    [w*L*b, (w+1)*L*b) as L slices of b = per_replica rows. So every example
    is counted exactly once, every worker runs exactly one step per batch (no
    worker waits in a collective for one that ran out of data), and every
    replica sees one static shape (TPUs need that). The cost: every worker
    reads and preprocesses every batch and keeps its share; tf.data's file
    or DATA auto-sharding of an already batched, padded dataset could not
    guarantee both properties.

    With a dataset function `shards` (see `evaluate`) and W > 1 input
    pipelines, each pipeline builds only its own share (examples w, w + W,
    ...), so each worker decodes 1/W of the images. Its batches (at most
    ceil(batch_size / W) rows) are padded to L * b rows as above and
    followed by all-padding batches up to the step count of the largest
    share, so every worker still runs the same number of steps with the
    same static shapes.
    """
    replicas = strategy.num_replicas_in_sync
    per_replica = -(-batch_size // replicas)
    options = tf.data.Options()
    # The rows are split here; tf.data must not shard again.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
    )

    def split(padded, local, first):
        def slices(images, labels, weights):
            def cut(x):
                rows = x[first : first + local * per_replica]
                shape = tf.concat([[local, per_replica], tf.shape(x)[1:]], 0)
                return tf.ensure_shape(
                    tf.reshape(rows, shape),
                    [local, per_replica] + x.shape[1:].as_list(),
                )

            return tf.data.Dataset.from_tensor_slices(
                tf.nest.map_structure(cut, (images, labels, weights))
            )

        # Consecutive elements go to the worker's replicas in turn.
        return padded.flat_map(slices).with_options(options)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        pipelines = context.num_input_pipelines
        local = context.num_replicas_in_sync // pipelines
        if shards is None or pipelines == 1:
            padded = _pad_to_batch(dataset, batch_size, per_replica * replicas)
            return split(
                padded, local, context.input_pipeline_id * local * per_replica
            )
        own_batch = -(-batch_size // pipelines)
        padded = _pad_to_batch(shards(context), own_batch, local * per_replica)
        steps = _sharded_steps(expected_num_examples, pipelines, batch_size)
        filler = tf.data.Dataset.from_tensors(
            tf.nest.map_structure(
                lambda spec: tf.zeros(_static(spec), spec.dtype),
                padded.element_spec,
            )
        ).repeat()
        # take() never drops examples of a correct share; a share larger
        # than ceil(N / W) loses its tail, and the final count check says so.
        return split(padded.concatenate(filler).take(steps), local, 0)

    return strategy.distribute_datasets_from_function(dataset_fn)


def _sharded_steps(num_examples: int, pipelines: int, batch_size: int) -> int:
    """Steps of every pipeline: those of the largest share (pipeline 0's)."""
    largest = distribute.shard_size(num_examples, pipelines, 0)
    return -(-largest // -(-batch_size // pipelines))


def _static(spec: tf.TensorSpec) -> list[int]:
    if not spec.shape.is_fully_defined():
        raise ValueError(
            "A sharded dataset function must yield batches of static shape "
            f"(images resized to a fixed size). Received: {spec}"
        )
    return spec.shape.as_list()


def _local_sum(variable, strategy: tf.distribute.Strategy) -> np.ndarray:
    """This worker's part of a metric variable, without a collective."""
    parts = strategy.experimental_local_results(
        getattr(variable, "value", variable)
    )
    return sum(np.asarray(part.numpy(), np.float64) for part in parts)


def _running(
    topk: metrics.TopKAccuracies, strategy: tf.distribute.Strategy
) -> list[tuple[str, float]]:
    """Running accuracies over this worker's examples.

    Local reads only: a global read is a collective, and workers reach
    their progress updates at different times.
    """
    correct = _local_sum(topk._correct, strategy)
    count = float(_local_sum(topk._count, strategy))
    return [
        (f"top{k}", float(c) / count if count else math.nan)
        for k, c in zip(topk.ks, correct)
    ]
