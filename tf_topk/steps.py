"""The loop's passes over the batches: the step, its timing, its back-off.

`run` feeds every batch to the step, times the wait for the input and the
step apart (and each step alone, for its latency), answers a step that runs
out of memory by splitting its batch into smaller parts
(`tf_topk.backoff`), and tells the listeners after each batch what this
worker saw of it. `tf_topk.evaluation.evaluate` builds the step and calls
`run` once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tf_topk import backoff, distribute, listeners, results


def run(
    step: Callable,
    batches,
    *,
    strategy: tf.distribute.Strategy,
    hooks: Sequence[listeners.Listener],
    start: listeners.Position,
    policy: backoff.OomBackoff,
) -> results.Timing:
    """Runs `step` on every batch of `batches` and tells the listeners.

    Args:
        step: (images, labels, weights) -> per-replica outputs, the first
            of which is the rows the replica counted.
        batches: the padded (distributed) batches.
        strategy: the strategy the step runs under.
        hooks: the listeners, told after every batch.
        start: where the run starts (a resumed run's position).
        policy: how to answer a step that runs out of memory.

    Returns:
        What the loop measured: this worker's rows, input and step time,
        each step's latency, the step's final batch size and back-offs.

    Raises:
        ValueError: a failed input check (a corrupt image, a bad label).
        backoff.OutOfMemory: a step ran out of memory and the policy could
            not go on.
    """
    timing = results.Timing()
    steps_done = start.steps
    runner = _Runner(step, strategy, policy, timing)
    begin = time.perf_counter()
    iterator = iter(batches)
    while True:
        t0 = time.perf_counter()
        try:
            element = next(iterator)
        except StopIteration:
            break
        except tf.errors.InvalidArgumentError as e:
            raise _input_error(e) from e
        timing.input_time += time.perf_counter() - t0
        done = runner.run(element)
        steps_done += 1
        batch = _batch_record(
            done,
            strategy,
            step=steps_done,
            examples=start.examples + timing.local_seen,
        )
        for hook in hooks:
            hook.on_batch(batch)
    timing.wall_time = time.perf_counter() - begin
    return timing


class _Runner:
    """Runs the step on one batch, in parts after an out-of-memory error."""

    def __init__(self, step, strategy, policy, timing: results.Timing):
        self.step = step
        self.strategy = strategy
        self.policy = policy
        self.timing = timing
        # None: the input's own batch size; after a back-off, the parts'.
        self.batch_size: int | None = policy.batch_size
        timing.batch_size = policy.batch_size
        self._traced: set[int | None] = set()

    def run(self, element) -> list[tuple]:
        """[(part, this worker's outputs of it)] for every part run."""
        parts = [element]
        if self.batch_size is not None:
            parts = backoff.split(element, self.batch_size, self.strategy)
        done = []
        while parts:
            part = parts.pop(0)
            t0 = time.perf_counter()
            try:
                local = self.strategy.experimental_local_results(
                    self.step(*part[:3])
                )
                rows = _local_rows(local)
            except tf.errors.ResourceExhaustedError as e:
                self.timing.model_time += time.perf_counter() - t0
                failed = _global_rows(part, self.strategy)
                self.batch_size = self.policy.next_batch_size(
                    failed,
                    num_replicas=self.strategy.num_replicas_in_sync,
                    num_workers=distribute.num_input_pipelines(self.strategy),
                    error=e,
                )
                self.timing.oom_backoffs.append(failed)
                self.timing.batch_size = self.batch_size
                # The failed part and those still queued, at the new size.
                parts = [
                    smaller
                    for queued in [part, *parts]
                    for smaller in backoff.split(
                        queued, self.batch_size, self.strategy
                    )
                ]
                continue
            seconds = time.perf_counter() - t0
            self.timing.model_time += seconds
            self.timing.local_seen += rows
            # The first step at a batch size traces (and compiles) it.
            if self.batch_size in self._traced:
                self.timing.step_times_ms.append(1000 * seconds)
            self._traced.add(self.batch_size)
            done.append((part, local))
        return done


def _input_error(error: tf.errors.InvalidArgumentError) -> ValueError:
    """A failed input check (a corrupt image, a bad label) in plain words."""
    found = re.search(
        r"assertion failed: \[(.*?)\]\s*$", error.message, re.S | re.M
    )
    return ValueError(found[1] if found else error.message)


def _local_rows(local) -> int:
    """The rows this worker's replicas counted in one step."""
    return sum(
        int(part[0] if isinstance(part, tuple) else part) for part in local
    )


def _global_rows(element, strategy: tf.distribute.Strategy) -> int:
    """The rows of one step's batch over every replica (padding included)."""
    per_replica = strategy.experimental_local_results(element[1])
    return int(per_replica[0].shape[0]) * strategy.num_replicas_in_sync


def _local(value, strategy) -> np.ndarray:
    """This worker's rows of a per-replica value, replicas in order."""
    parts = strategy.experimental_local_results(value)
    return np.concatenate([np.asarray(part) for part in parts])


def _batch_record(
    done: list[tuple], strategy, *, step: int, examples: int
) -> listeners.Batch:
    """What the listeners see of one batch: this worker's rows, the parts
    it ran in joined in order."""
    fields = {}
    if isinstance(done[0][1][0], tuple):
        for index, name in enumerate(
            ("correct", "top_classes", "top_scores"), start=1
        ):
            fields[name] = np.concatenate(
                [
                    np.asarray(outputs[index])
                    for _, local in done
                    for outputs in local
                ]
            )
    ids = None
    if len(done[0][0]) > 3:
        ids = np.concatenate([_local(part[3], strategy) for part, _ in done])
    return listeners.Batch(
        step=step,
        examples=examples,
        labels=np.concatenate([_local(part[1], strategy) for part, _ in done]),
        weights=np.concatenate([_local(part[2], strategy) for part, _ in done]),
        ids=ids,
        **fields,
    )
