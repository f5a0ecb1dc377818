"""Tests of the loop's passes over the batches (tf_topk.steps)."""

import numpy as np
import tensorflow as tf

from tf_topk import backoff, listeners, results, steps


class Keep(listeners.Listener):
    def __init__(self):
        self.batches = []

    def on_batch(self, batch):
        self.batches.append(batch)


def batches(rows_per_batch, batch_size=4):
    """Padded batches of 2x2 images; labels are the example's index."""
    elements = []
    first = 0
    for rows in rows_per_batch:
        weights = np.array([1.0] * rows + [0.0] * (batch_size - rows))
        labels = np.arange(first, first + batch_size)
        elements.append(
            (
                tf.zeros([batch_size, 2, 2, 3]),
                tf.constant(labels),
                tf.constant(weights, tf.float32),
            )
        )
        first += rows
    return elements


def counting_step(limit=None):
    """A step that counts its rows; above `limit` rows it runs out of
    memory as the allocator does."""
    calls = []

    def step(images, labels, weights):
        calls.append(int(labels.shape[0]))
        if limit is not None and labels.shape[0] > limit:
            raise tf.errors.ResourceExhaustedError(
                None, None, "OOM when allocating tensor with shape[9]"
            )
        return tf.math.count_nonzero(weights > 0, dtype=tf.int64)

    return step, calls


class RunTest(tf.test.TestCase):
    def run_steps(self, step, elements, hooks=(), start=None, **policy):
        return steps.run(
            step,
            elements,
            strategy=tf.distribute.get_strategy(),
            hooks=list(hooks),
            start=start or listeners.Position(),
            policy=backoff.OomBackoff(**policy),
        )

    def test_counts_rows_and_tells_the_listeners(self):
        step, calls = counting_step()
        keep = Keep()
        timing = self.run_steps(step, batches([4, 4, 2]), [keep])
        self.assertIsInstance(timing, results.Timing)
        self.assertEqual(timing.local_seen, 10)
        self.assertEqual(calls, [4, 4, 4])
        self.assertEqual([b.step for b in keep.batches], [1, 2, 3])
        self.assertEqual([b.examples for b in keep.batches], [4, 8, 10])
        # The first step (tracing) is not a latency sample.
        self.assertLen(timing.step_times_ms, 2)
        self.assertEqual(timing.oom_backoffs, [])
        self.assertIsNone(timing.batch_size)

    def test_a_resumed_run_counts_from_its_position(self):
        step, _ = counting_step()
        keep = Keep()
        self.run_steps(
            step, batches([4, 2]), [keep], start=listeners.Position(3, 12)
        )
        self.assertEqual([b.step for b in keep.batches], [4, 5])
        self.assertEqual([b.examples for b in keep.batches], [16, 18])

    def test_out_of_memory_splits_the_batch_and_goes_on(self):
        step, calls = counting_step(limit=2)
        keep = Keep()
        timing = self.run_steps(step, batches([4, 4, 2]), [keep])
        self.assertEqual(timing.local_seen, 10)
        self.assertEqual(timing.oom_backoffs, [4])
        self.assertEqual(timing.batch_size, 2)
        # 4 fails; then parts of 2; the last batch (2 rows) is one part.
        self.assertEqual(calls, [4, 2, 2, 2, 2, 2])
        labels = np.concatenate([b.labels[b.weights > 0] for b in keep.batches])
        self.assertAllEqual(labels, np.arange(10))
        self.assertEqual([b.examples for b in keep.batches], [4, 8, 10])

    def test_start_at_a_smaller_batch(self):
        step, calls = counting_step(limit=2)
        timing = self.run_steps(step, batches([4, 1]), batch_size=2)
        self.assertEqual(calls, [2, 2, 2])
        self.assertEqual(timing.oom_backoffs, [])
        self.assertEqual(timing.batch_size, 2)
        self.assertEqual(timing.local_seen, 5)

    def test_a_failed_input_check_names_the_problem(self):
        def broken():
            yield from batches([4])
            raise tf.errors.InvalidArgumentError(
                None, None, "assertion failed: [Corrupt image: a.jpg]"
            )

        step, _ = counting_step()
        with self.assertRaisesRegex(ValueError, r"^Corrupt image: a\.jpg$"):
            self.run_steps(step, broken())


if __name__ == "__main__":
    tf.test.main()
