"""Tests of the listener protocol of the evaluation loop (tf_topk.listeners)."""

import doctest

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import evaluation, input_stage, listeners, testing


class Recorder(listeners.Listener):
    """Records every call the loop makes."""

    def __init__(self, needs_predictions=False):
        self.needs_predictions = needs_predictions
        self.calls = []
        self.batches = []
        self.run = None

    def on_begin(self, run):
        self.calls.append("begin")
        self.run = run

    def on_batch(self, batch):
        self.calls.append("batch")
        self.batches.append(batch)

    def on_end(self, result):
        self.calls.append("end")

    def on_exit(self):
        self.calls.append("exit")


class Annotate(listeners.Listener):
    def __init__(self, key, value):
        self.key = key
        self.value = value

    def on_end(self, result):
        return testing.eval_result(
            **{**_fields(result), "metadata": {self.key: self.value}}
        )


def _fields(result):
    return {
        "ks": result.ks,
        "num_examples": result.num_examples,
        "num_scored": result.num_scored,
        "correct": result.correct,
        "ties": result.ties,
        "nonfinite": result.nonfinite,
        "unlabeled": result.unlabeled,
        "per_class_correct": result.per_class_correct,
        "per_class_count": result.per_class_count,
    }


class Fails(listeners.Listener):
    def on_batch(self, batch):
        if batch.step == 2:
            raise RuntimeError("listener failed")


class ListenerTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(5)

    def evaluate(self, hooks, **kwargs):
        dataset, _, labels = testing.oracle_dataset(10, 7, with_ids=True)
        result = evaluation.evaluate(
            self.model,
            dataset,
            ks=(1, 3),
            progress="none",
            listeners=hooks,
            **kwargs,
        )
        return result, labels

    def test_calls_in_order_with_every_batch(self):
        recorder = Recorder()
        result, labels = self.evaluate([recorder])
        self.assertEqual(
            recorder.calls, ["begin", "batch", "batch", "batch", "end", "exit"]
        )
        self.assertEqual(recorder.run.ks, (1, 3))
        self.assertEqual(recorder.run.batch_size, 4)
        self.assertEqual(recorder.run.num_classes, 5)
        self.assertEqual(recorder.run.start, listeners.Position())
        self.assertEqual([b.step for b in recorder.batches], [1, 2, 3])
        # Batches of 4, 4 and 2: the last padded to 4 with weight 0.
        self.assertEqual([b.examples for b in recorder.batches], [4, 8, 10])
        self.assertAllEqual(recorder.batches[2].weights, [1, 1, 0, 0])
        labels_seen = np.concatenate(
            [b.labels[b.weights > 0] for b in recorder.batches]
        )
        self.assertAllEqual(labels_seen, labels)
        ids = np.concatenate([b.ids[b.weights > 0] for b in recorder.batches])
        self.assertEqual(ids[0], b"img-00")
        self.assertEqual(len(ids), 10)
        self.assertIsNone(recorder.batches[0].correct)
        self.assertEqual(result.correct[1], 7)

    def test_decisions_and_top_classes_when_asked(self):
        recorder = Recorder(needs_predictions=True)
        result, labels = self.evaluate([recorder])
        correct = np.concatenate(
            [b.correct[b.weights > 0] for b in recorder.batches]
        )
        self.assertEqual(correct.shape, (10, 2))
        # The first 7 are labelled as painted: right at k = 1.
        self.assertAllEqual(correct[:, 0], [True] * 7 + [False] * 3)
        self.assertEqual(int(correct[:, 0].sum()), result.correct[1])
        self.assertEqual(int(correct[:, 1].sum()), result.correct[3])
        top = np.concatenate(
            [b.top_classes[b.weights > 0] for b in recorder.batches]
        )
        self.assertAllEqual(top[:, 0], np.arange(10) % 5)
        self.assertEqual(recorder.batches[0].top_scores.shape, (4, 5))

    def test_on_end_annotations_reach_the_caller(self):
        result, _ = self.evaluate(
            [listeners.Metadata({"model": "oracle", "epoch": 2})]
        )
        self.assertEqual(result.metadata, {"model": "oracle", "epoch": 2})
        self.assertEqual(result.to_dict()["epoch"], 2)
        result, _ = self.evaluate([Annotate("a", 1), Annotate("b", 2)])
        self.assertEqual(result.metadata, {"b": 2})

    def test_on_exit_runs_when_the_loop_raises(self):
        recorder = Recorder()
        with self.assertRaisesRegex(RuntimeError, "listener failed"):
            self.evaluate([Fails(), recorder])
        self.assertEqual(recorder.calls[-1], "exit")
        self.assertNotIn("end", recorder.calls)

    def test_the_input_probe_is_added_unless_given(self):
        result, _ = self.evaluate([])
        self.assertGreater(result.input_images_per_s, 0)
        result, _ = self.evaluate([input_stage.InputProbe(num_batches=0)])
        self.assertIsNone(result.input_images_per_s)
        self.assertIsNone(result.input_limited)

    @parameterized.named_parameters(
        (
            "not_a_listener",
            [object()],
            TypeError,
            r"^Argument `listeners` must hold tf_topk\.listeners\.Listener "
            r"instances\. Received: an entry of type object\. Subclass "
            r"Listener\.$",
        ),
        (
            "two_checkpoints",
            "two_savers",
            ValueError,
            r"^Argument `listeners` may hold one listener that saves the "
            r"run's state \(a checkpoint\)\. Received: 2 \(\['Saver', "
            r"'Saver'\]\)\.$",
        ),
        (
            "start_without_state",
            "starts",
            ValueError,
            r"^Only a listener that saves the run's state may set `start`\. "
            r"Received: start=Position\(steps=1, examples=4, "
            r"input_resumed=False\) on Starts\.$",
        ),
    )
    def test_bad_listeners(self, hooks, error, message):
        class Saver(listeners.Listener):
            saves_state = True

        class Starts(listeners.Listener):
            start = listeners.Position(1, 4)

        if hooks == "two_savers":
            hooks = [Saver(), Saver()]
        elif hooks == "starts":
            hooks = [Starts()]
        with self.assertRaisesRegex(error, message):
            self.evaluate(hooks)

    def test_a_listener_that_saves_state_is_called_last(self):
        class Saver(listeners.Listener):
            saves_state = True

        first, saver, last = Recorder(), Saver(), Recorder()
        self.assertEqual(
            listeners.check([first, saver, last]), [first, last, saver]
        )

    def test_doctest(self):
        failures, _ = doctest.testmod(listeners)
        self.assertEqual(failures, 0)


if __name__ == "__main__":
    tf.test.main()
