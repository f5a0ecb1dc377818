"""tf.distribute strategies by name, and which process writes results.

`get_strategy(name)` builds the strategy for `config.distribution`:

- "mirrored": `MirroredStrategy` over every local GPU (or the CPU).
- "multi_worker": `MultiWorkerMirroredStrategy` over the processes or
  machines that the `TF_CONFIG` environment variable describes; every
  worker runs the same program.
- "tpu": `TPUStrategy` on the TPU named by `TPU_NAME` (default: the local
  TPU of a TPU VM).
- "none": the default (no-op) strategy.

Every worker of a multi-worker run computes the same global counts (the
metric variables are summed across workers when read); `is_chief` says
which one writes them, so a run leaves one results file, not one per worker.

The input side of a distributed evaluation lives here too: `pad_to_batch`
pads every batch to one static shape (padding weighted 0), and
`distribute_dataset` splits every padded batch by rows across the replicas
and workers, so each example is counted exactly once and every worker runs
the same number of steps (`num_steps`). A multi-worker run may give a
dataset function of a `tf.distribute.InputContext` instead of a dataset, so
each worker reads only its share, in batches of `per_worker_batch_size`
rows; `whole_dataset` gets the whole dataset back from such a function.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

STRATEGIES = ("mirrored", "multi_worker", "none", "tpu")

# A function of a tf.distribute.InputContext returning the batches of one
# input pipeline's share (see `whole_dataset`, `distribute_dataset`).
DatasetFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]


def get_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy called `name`.

    >>> get_strategy("none") is tf.distribute.get_strategy()
    True

    Args:
        name: one of "mirrored", "multi_worker", "none", "tpu".

    Returns:
        The strategy. "multi_worker" must be asked for before any other
        TensorFlow op runs in the process (a TensorFlow rule).

    Raises:
        TypeError: `name` is not a string.
        ValueError: an unknown name, or a `TF_CONFIG` that is not valid
            JSON.
        RuntimeError: "tpu" on a machine without a reachable TPU.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"Argument `name` must be a string, one of {list(STRATEGIES)}. "
            f"Received: name={name!r} of type {type(name).__name__}"
        )
    if name not in STRATEGIES:
        raise ValueError(
            f"Argument `name` must be one of {list(STRATEGIES)}. "
            f"Received: name={name!r}"
        )
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return _multi_worker()
    return _tpu()


def _tf_config() -> dict:
    """The parsed `TF_CONFIG` environment variable ({} when unset)."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            "The `TF_CONFIG` environment variable must be JSON like "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
            f'"worker", "index": 0}}}}. Received: TF_CONFIG={text!r} ({e})'
        ) from e
    if not isinstance(config, dict):
        raise ValueError(
            "The `TF_CONFIG` environment variable must be a JSON object. "
            f"Received: TF_CONFIG={text!r}"
        )
    return config


def _multi_worker() -> tf.distribute.Strategy:
    config = _tf_config()
    if not config.get("cluster"):
        logging.warning(
            "distribution='multi_worker' without a cluster in TF_CONFIG: "
            "running as a single worker."
        )
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def _tpu() -> tf.distribute.Strategy:
    tpu = os.environ.get("TPU_NAME") or "local"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise RuntimeError(
            f"distribution='tpu' needs a TPU, but none was found (tried "
            f"TPU_NAME={tpu!r}: {str(e).splitlines()[0]}). Run on a TPU VM, "
            "set TPU_NAME to your TPU, or use distribution='mirrored' or "
            "'none'."
        ) from e
    return tf.distribute.TPUStrategy(resolver)


def shard_size(num_examples: int, num_shards: int, shard_index: int) -> int:
    """Examples in shard `shard_index`: those at shard_index + i * num_shards.

    The rule every input pipeline of a multi-worker run follows
    (`tf_topk.datasets.build(num_shards=, shard_index=)`); shard 0 is the
    largest.

    >>> [shard_size(10, 3, i) for i in range(3)]
    [4, 3, 3]
    """
    return len(range(shard_index, num_examples, num_shards))


def task(strategy: tf.distribute.Strategy | None = None) -> tuple[str, int]:
    """This process's (task type, task index); ("chief", 0) when alone.

    Read from the strategy's cluster resolver when it has one, else from
    `TF_CONFIG`.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    cluster = {}
    if task_type is not None:
        try:
            cluster = resolver.cluster_spec().as_dict()
        except (ValueError, RuntimeError):
            cluster = {}
    else:
        config = _tf_config()
        cluster = config.get("cluster") or {}
        task_type = (config.get("task") or {}).get("type")
        task_id = (config.get("task") or {}).get("index")
    if not cluster or task_type is None:
        return ("chief", 0)
    return (str(task_type), int(task_id or 0))


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes results: only one process of a run does.

    The chief is the "chief" task when the cluster has one, else worker 0
    (TensorFlow's rule); a process without a cluster is its own chief.
    Evaluators and parameter servers are never the chief.

    >>> is_chief(tf.distribute.get_strategy())
    True

    Args:
        strategy: the strategy of the run (its cluster resolver is read);
            None reads `TF_CONFIG`.

    Returns:
        True for the one process that writes.
    """
    task_type, task_id = task(strategy)
    if task_type == "chief":
        return True
    if task_type == "worker" and task_id == 0:
        resolver = getattr(strategy, "cluster_resolver", None)
        try:
            cluster = (
                resolver.cluster_spec().as_dict()
                if getattr(resolver, "task_type", None) is not None
                else _tf_config().get("cluster") or {}
            )
        except (ValueError, RuntimeError):
            cluster = {}
        return "chief" not in cluster
    return False


def is_default(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` is the default (no-op) strategy.

    The default strategy is the one in force outside every
    `strategy.scope()` (`get_strategy("none")`): it runs on one device and
    needs no distributed input.

    >>> is_default(tf.distribute.get_strategy())
    True

    Raises:
        RuntimeError: called inside the scope of another strategy (scopes of
            different strategies do not nest).
    """
    # In its own scope the current strategy is `strategy`, and only the
    # default strategy leaves has_strategy() False there.
    with strategy.scope():
        return not tf.distribute.has_strategy()


def num_input_pipelines(strategy: tf.distribute.Strategy) -> int:
    """Workers feeding their own input (1 when not multi-worker).

    >>> num_input_pipelines(tf.distribute.get_strategy())
    1
    """
    try:
        local = len(strategy.extended.worker_devices)
    except (AttributeError, RuntimeError, ValueError):
        return 1
    return max(1, strategy.num_replicas_in_sync // max(1, local))


def per_worker_batch_size(batch_size: int, num_pipelines: int) -> int:
    """Rows of each input pipeline's batches: ceil(batch_size / pipelines).

    When each of `num_pipelines` workers reads only its share of the data
    (examples w, w + W, ...), its batches hold at most this many rows, and
    one batch of every worker together make a global batch of at least
    `batch_size` rows.

    >>> per_worker_batch_size(64, 1), per_worker_batch_size(64, 3)
    (64, 22)
    """
    return -(-batch_size // num_pipelines)


def num_steps(
    num_examples: int, batch_size: int, *, num_pipelines: int = 1
) -> int:
    """Steps of every input pipeline: those of the largest share.

    Shard 0 is the largest (`shard_size`), read in batches of
    `per_worker_batch_size(batch_size, num_pipelines)` rows; with one
    pipeline, ceil(num_examples / batch_size).

    >>> num_steps(1001, 64), num_steps(1001, 64, num_pipelines=3)
    (16, 16)
    """
    largest = shard_size(num_examples, num_pipelines, 0)
    return -(-largest // per_worker_batch_size(batch_size, num_pipelines))


def whole_dataset(dataset: tf.data.Dataset | DatasetFn) -> tf.data.Dataset:
    """The whole dataset, from a dataset or from a dataset function.

    A dataset function (of a `tf.distribute.InputContext`, see
    `distribute_dataset`) returns the whole dataset for one input pipeline,
    so it is called with a default `tf.distribute.InputContext()`.

    >>> data = tf.data.Dataset.range(3).batch(2)
    >>> whole_dataset(lambda context: data) is data
    True

    Raises:
        TypeError: neither a dataset nor a function returning one.
    """
    if callable(dataset) and not isinstance(dataset, tf.data.Dataset):
        dataset = dataset(tf.distribute.InputContext())
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "Argument `dataset` must be a tf.data.Dataset of batches, or a "
            "function of a tf.distribute.InputContext returning one. "
            f"Received: {type(dataset).__name__}"
        )
    return dataset


def pad_to_batch(
    dataset: tf.data.Dataset, batch_size: int, rows: int | None = None
) -> tf.data.Dataset:
    """Pads every batch to `rows` (default `batch_size`) rows, weighted 0.

    Every element becomes (images, labels, weights) of static batch size
    `rows`; the given weights (default 1) are kept and cast to float32, the
    padding rows are zeros with weight 0. Example ids (a string batch after
    the labels or the weights) are kept as a fourth element, padded with
    empty strings. A static shape lets one compiled
    step serve every batch, the last partial one too.

    >>> data = tf.data.Dataset.from_tensor_slices(([[1.0]] * 3, [0] * 3))
    >>> [w.numpy().tolist() for _, _, w in pad_to_batch(data.batch(2), 2)]
    [[1.0, 1.0], [1.0, 0.0]]

    Args:
        dataset: batches of (images, labels) or (images, labels, weights),
            none larger than `batch_size` rows (checked as it runs).
        batch_size: the largest batch `dataset` may hold.
        rows: the rows of every padded batch, at least `batch_size`.
    """
    target = rows or batch_size

    def pad(images, labels, *rest):
        # rest: weights (float), example ids (string), or both.
        weights = next((x for x in rest if x.dtype != tf.string), None)
        ids = next((x for x in rest if x.dtype == tf.string), None)
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

        padded = (
            tf.nest.map_structure(pad_one, images),
            pad_one(labels),
            pad_one(tf.cast(weights, tf.float32)),
        )
        return padded if ids is None else padded + (pad_one(ids),)

    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE)


def distribute_dataset(
    dataset: tf.data.Dataset,
    strategy: tf.distribute.Strategy,
    *,
    batch_size: int,
    dataset_fn: DatasetFn | None = None,
    num_examples: int | None = None,
):
    """Splits the examples across replicas and workers, each exactly once.

    Every batch is padded (weight 0) to `replicas * per_replica` rows, and
    worker w's L local replicas get rows [w*L*b, (w+1)*L*b) as L slices of
    b = per_replica rows. So every example is counted exactly once, every
    worker runs exactly one step per batch (no worker waits in a collective
    for one that ran out of data), and every replica sees one static shape
    (TPUs need that). The cost: every worker reads and preprocesses every
    batch and keeps its share; tf.data's file or DATA auto-sharding of an
    already batched, padded dataset could not guarantee both properties.

    With `dataset_fn` and W > 1 input pipelines, each pipeline builds only
    its own share (examples w, w + W, ...), so each worker decodes 1/W of
    the images. Its batches (at most `per_worker_batch_size(batch_size, W)`
    rows) are padded to L * b rows as above and followed by all-padding
    batches up to `num_steps`, so every worker still runs the same number
    of steps with the same static shapes.

    Args:
        dataset: the whole dataset, batches of (images, labels) or (images,
            labels, weights) of at most `batch_size` rows; read by every
            worker when there is no `dataset_fn` or a single pipeline.
        strategy: the strategy whose replicas share the batches.
        batch_size: the global batch size of `dataset`.
        dataset_fn: a function of a `tf.distribute.InputContext` returning
            batches of pipeline `input_pipeline_id`'s share (examples i with
            i % num_input_pipelines == input_pipeline_id); its static
            shapes must be fully defined.
        num_examples: the number of examples of `dataset`; needed with
            `dataset_fn`.

    Returns:
        A distributed dataset of (images, labels, weights) per replica.

    Raises:
        ValueError: `dataset_fn` without `num_examples`; a share of
            non-static shape (raised as the pipelines are built).
    """
    if dataset_fn is not None and num_examples is None:
        raise ValueError(
            "Argument `num_examples` is needed with a `dataset_fn` (every "
            "share is padded to the step count of the largest). Received: "
            "num_examples=None"
        )
    replicas = strategy.num_replicas_in_sync
    per_replica = -(-batch_size // replicas)
    options = tf.data.Options()
    # The rows are split here; tf.data must not shard again.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
    )

    def split(padded, local, first):
        def slices(*element):
            def cut(x):
                rows = x[first : first + local * per_replica]
                shape = tf.concat([[local, per_replica], tf.shape(x)[1:]], 0)
                return tf.ensure_shape(
                    tf.reshape(rows, shape),
                    [local, per_replica] + x.shape[1:].as_list(),
                )

            return tf.data.Dataset.from_tensor_slices(
                tf.nest.map_structure(cut, element)
            )

        # Consecutive elements go to the worker's replicas in turn.
        return padded.flat_map(slices).with_options(options)

    def pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
        pipelines = context.num_input_pipelines
        local = context.num_replicas_in_sync // pipelines
        if dataset_fn is None or pipelines == 1:
            padded = pad_to_batch(dataset, batch_size, per_replica * replicas)
            return split(
                padded, local, context.input_pipeline_id * local * per_replica
            )
        padded = pad_to_batch(
            dataset_fn(context),
            per_worker_batch_size(batch_size, pipelines),
            local * per_replica,
        )
        steps = num_steps(num_examples, batch_size, num_pipelines=pipelines)
        filler = tf.data.Dataset.from_tensors(
            tf.nest.map_structure(
                lambda spec: (
                    tf.fill(_static(spec), "")
                    if spec.dtype == tf.string
                    else tf.zeros(_static(spec), spec.dtype)
                ),
                padded.element_spec,
            )
        ).repeat()
        # take() never drops examples of a correct share; a share larger
        # than ceil(N / W) loses its tail, and the final count check says so.
        return split(padded.concatenate(filler).take(steps), local, 0)

    # String ids stay in host memory (they cannot be copied to a GPU); the
    # step copies the images to the replicas' devices itself.
    has_ids = dataset.element_spec[-1].dtype == tf.string
    return strategy.distribute_datasets_from_function(
        pipeline,
        options=tf.distribute.InputOptions(experimental_fetch_to_device=False)
        if has_ids
        else None,
    )


def _static(spec: tf.TensorSpec) -> list[int]:
    if not spec.shape.is_fully_defined():
        raise ValueError(
            "A sharded dataset function must yield batches of static shape "
            f"(images resized to a fixed size). Received: {spec}"
        )
    return spec.shape.as_list()


def local_sum(
    variable: tf.Variable | keras.Variable, strategy: tf.distribute.Strategy
) -> np.ndarray:
    """This worker's part of a variable: its local replicas' values summed.

    A local read, with no collective: workers may call it at different
    times (reading a variable of a multi-worker strategy sums it across
    workers, and every worker must reach that read).

    >>> float(local_sum(tf.Variable(2.0), tf.distribute.get_strategy()))
    2.0
    """
    if isinstance(variable, keras.Variable):
        variable = variable.value  # Its (distributed) tf.Variable.
    parts = strategy.experimental_local_results(variable)
    return sum(np.asarray(part.numpy(), np.float64) for part in parts)
