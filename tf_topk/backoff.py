"""Out-of-memory back-off: a batch too large for the device is halved.

When a step of the loop raises `tf.errors.ResourceExhaustedError`, the loop
asks its `OomBackoff` for a smaller batch, splits the batch that failed (and
every batch after it) into parts of that size (`split`, the last part padded
with weight 0) and goes on: nothing counted is counted twice or lost, since
a failed step updates no count. The input keeps its batch size; a resumed
or later run can start at the size that fitted (`EvalResult.batch_size`).
This is timm's `validate.py --retry`, without starting over.

Under several workers the workers must run the same steps, so a back-off on
one would leave the others waiting: the run stops with the advice instead.
"""

from __future__ import annotations

import tensorflow as tf
from absl import logging

from tf_topk import listeners


class OutOfMemory(RuntimeError):
    """A batch of one example (per replica) does not fit, or the back-off
    is off or impossible: the run stops with the advice in the message."""


class OomBackoff(listeners.Listener):
    """How the loop answers a step that ran out of memory.

    `evaluate` adds one (enabled) unless the caller passes their own.

    Args:
        enabled: halve the batch and go on (True), or stop with the advice
            (False).
        batch_size: the step's batch size to start at, smaller than the
            input's (e.g. what fitted an earlier run of a bulk command);
            None: the input's.

    Usage with `tf_topk.evaluate`:

    ```python
    result = tf_topk.evaluate(
        model, dataset, listeners=[backoff.OomBackoff(enabled=False)]
    )
    result.batch_size, result.oom_backoffs
    ```
    """

    def __init__(self, enabled: bool = True, *, batch_size: int | None = None):
        if not isinstance(enabled, bool):
            raise TypeError(
                "Argument `enabled` must be True or False. Received: "
                f"enabled={enabled!r}"
            )
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or batch_size < 1
        ):
            raise ValueError(
                "Argument `batch_size` must be a positive integer or None. "
                f"Received: batch_size={batch_size!r}"
            )
        self.enabled = enabled
        self.batch_size = batch_size

    def next_batch_size(
        self,
        batch_size: int,
        *,
        num_replicas: int,
        num_workers: int,
        error: tf.errors.ResourceExhaustedError,
    ) -> int:
        """The global batch size to retry at: half of `batch_size` per
        replica (rounded down), times the replicas.

        Raises:
            OutOfMemory: off, several workers, or already one example per
                replica; the message says what to do.
        """
        cause = _cause(error)
        per_replica = batch_size // num_replicas
        if not self.enabled:
            raise OutOfMemory(
                f"Out of memory at batch size {batch_size} ({cause}). The "
                "out-of-memory back-off is off: lower "
                "--config.data.batch_size (e.g. to "
                f"{max(1, per_replica // 2) * num_replicas}), or turn it on "
                "with --config.eval.oom_backoff=True."
            )
        if num_workers > 1:
            raise OutOfMemory(
                f"Out of memory at batch size {batch_size} on one of "
                f"{num_workers} workers ({cause}). Workers must run the same "
                "steps, so the batch cannot be halved on one: run again with "
                "a smaller --config.data.batch_size (e.g. "
                f"{max(1, per_replica // 2) * num_replicas})."
            )
        if per_replica <= 1:
            raise OutOfMemory(
                f"Out of memory at batch size {batch_size}, one example per "
                f"replica ({cause}): the model does not fit this device even "
                "alone. Use a device with more memory, a smaller "
                "--config.model.image_size, or --config.data.num_crops=1."
            )
        smaller = per_replica // 2 * num_replicas
        logging.warning(
            "Out of memory at batch size %d: going on at batch size %d "
            "from the last counted batch (%s).",
            batch_size,
            smaller,
            cause,
        )
        return smaller


def _cause(error: tf.errors.ResourceExhaustedError) -> str:
    """The allocator's own line ("OOM when allocating tensor with shape
    ..."), else the message's first line."""
    lines = [line.strip() for line in error.message.splitlines()]
    found = [line for line in lines if line.startswith("OOM when")]
    return (found or lines or [""])[0][:300]


def _pad(part, rows: int, size: int):
    """`part` (images, labels, weights[, ids]) padded to `size` rows with
    weight 0 (ids with empty strings)."""
    missing = size - rows
    if missing == 0:
        return part

    def pad(x):
        paddings = [[0, missing]] + [[0, 0]] * (x.shape.rank - 1)
        return tf.pad(x, paddings)

    images, labels, weights, *ids = part
    padded = (
        tf.nest.map_structure(pad, images),
        pad(labels),
        pad(weights),
    )
    return padded + tuple(pad(x) for x in ids)


def _parts(element, size: int) -> list:
    """One replica's (images, labels, weights[, ids]) in parts of `size`
    rows, the last one padded."""
    rows = int(element[1].shape[0])
    return [
        _pad(
            tf.nest.map_structure(
                lambda x, begin=begin: x[begin : begin + size], element
            ),
            min(size, rows - begin),
            size,
        )
        for begin in range(0, rows, size)
    ]


def _replica(element, strategy: tf.distribute.Strategy, replica: int):
    """Replica `replica`'s tensors of a per-replica `element`."""
    return tf.nest.map_structure(
        lambda x: strategy.experimental_local_results(x)[replica], element
    )


def _per_replica(strategy: tf.distribute.Strategy, values):
    """One per-replica value of the tensors `values`, one per replica."""
    return strategy.experimental_distribute_values_from_function(
        lambda context: values[context.replica_id_in_sync_group]
    )


def split(element, batch_size: int, strategy: tf.distribute.Strategy) -> list:
    """The parts of `batch_size` (global) rows of one padded batch.

    Args:
        element: (images, labels, weights[, ids]) of one step: tensors, or
            per-replica values under a strategy of several replicas (each
            replica's rows are split alike).
        batch_size: the global rows of a part, a multiple of the replicas.
        strategy: the strategy the step runs under.

    Returns:
        The parts, in order, each padded with weight 0 to `batch_size`;
        parts after the first that hold padding only on every replica are
        left out (the first runs, so a batch of padding still makes a
        step).

    >>> element = (tf.zeros([6, 2, 2, 3]), tf.range(6), tf.constant(
    ...     [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    >>> parts = split(element, 2, tf.distribute.get_strategy())
    >>> [part[2].numpy().tolist() for part in parts]
    [[1.0, 1.0], [1.0, 0.0]]
    """
    replicas = strategy.num_replicas_in_sync
    size = batch_size // replicas
    local_parts = [
        _parts(_replica(element, strategy, replica), size)
        for replica in range(replicas)
    ]
    parts = []
    for index in range(len(local_parts[0])):
        per_replica = [replica_parts[index] for replica_parts in local_parts]
        if parts and not any(
            bool(tf.reduce_any(part[2] > 0)) for part in per_replica
        ):
            continue  # Padding only; the first part always runs.
        if replicas == 1:
            parts.append(per_replica[0])
        else:
            parts.append(
                tf.nest.map_structure(
                    lambda *values: _per_replica(strategy, values),
                    *per_replica,
                )
            )
    return parts
