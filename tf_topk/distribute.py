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
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

STRATEGIES = ("mirrored", "multi_worker", "none", "tpu")


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
