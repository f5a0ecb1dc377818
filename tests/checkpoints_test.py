"""Tests of resuming an interrupted evaluation (tf_topk.checkpoints).

An interrupted run followed by a resumed one must give exactly the counts of
an uninterrupted run; a checkpoint of another run, or a damaged one, is
refused with a message naming the way out.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import conftest
import keras
import pytest
import tensorflow as tf
from absl.testing import parameterized
from cli_main_test import CONFIGS, REPO, write_smoke_images

from tf_topk import checkpoints, evaluation, listeners, testing

NUM_CLASSES = 5


def oracle_data(num_examples=22, num_correct=15, batch_size=4):
    """Painted images and labels: exactly `num_correct` top-1 correct."""
    dataset, _, _ = testing.oracle_dataset(
        num_examples, num_correct, batch_size=batch_size
    )
    return dataset


def stop_at_step(step_number):
    """Patches the checkpoint so a SIGTERM seems to arrive at a step."""
    original = checkpoints.Checkpointer.on_batch

    def on_batch(self, batch):
        if batch.step == step_number:
            self.stop.signal_name = "SIGTERM"
        return original(self, batch)

    return mock.patch.object(checkpoints.Checkpointer, "on_batch", on_batch)


class ResumeTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(NUM_CLASSES)
        self.directory = os.path.join(
            self.create_tempdir().full_path, "checkpoint"
        )

    def evaluate(self, dataset=None, *, checkpoint=None, **kwargs):
        """Evaluates with a Checkpointer of `self.directory` (`checkpoint`:
        its keyword arguments)."""
        checkpointer = checkpoints.Checkpointer(
            self.directory, **(checkpoint or {})
        )
        return evaluation.evaluate(
            self.model,
            dataset if dataset is not None else oracle_data(),
            ks=kwargs.pop("ks", (1, 3)),
            expected_num_examples=22,
            progress="none",
            listeners=[checkpointer],
            **kwargs,
        )

    @parameterized.named_parameters(
        ("first_step", 1, 4),
        ("middle", 3, 12),
        ("before_the_partial_last_batch", 5, 20),
    )
    def test_interrupted_then_resumed_equals_uninterrupted(
        self, step, examples
    ):
        whole = evaluation.evaluate(
            self.model, oracle_data(), ks=(1, 3), progress="none"
        )
        with (
            stop_at_step(step),
            self.assertRaises(checkpoints.Interrupted) as raised,
        ):
            self.evaluate(checkpoint=dict(every_n_examples=0))
        self.assertEqual(raised.exception.examples_done, examples)
        self.assertEqual(
            str(raised.exception),
            f"Interrupted by SIGTERM after {examples} of 22 examples; the "
            f"state is saved in {self.directory}. Run the same command "
            "again (or evaluate with a Checkpointer of the same directory) "
            "to resume.",
        )
        with open(os.path.join(self.directory, "progress.json")) as f:
            progress = json.load(f)
        self.assertFalse(progress["complete"])
        self.assertEqual(progress["examples_done"], examples)
        self.assertEqual(progress["expected_num_examples"], 22)

        with self.assertLogs(level="INFO") as logs:
            resumed = self.evaluate()
        self.assertIn(
            f"Resuming from example {examples} of 22.", "\n".join(logs.output)
        )
        self.assertEqual(resumed.resumed_from, examples)
        self.assertEqual(resumed.to_dict()["resumed_from"], examples)
        self.assertEqual(resumed.correct, whole.correct)
        self.assertEqual(resumed.correct[1], 15)
        self.assertEqual(resumed.num_examples, 22)
        self.assertEqual(resumed.per_class_count, whole.per_class_count)
        self.assertEqual(resumed.per_class_correct, whole.per_class_correct)
        self.assertEqual(whole.resumed_from, 0)

    def test_periodic_saves_and_a_finished_checkpoint(self):
        result = self.evaluate(checkpoint=dict(every_n_examples=8))
        self.assertEqual(result.correct[1], 15)
        with open(os.path.join(self.directory, "progress.json")) as f:
            progress = json.load(f)
        self.assertTrue(progress["complete"])
        self.assertEqual(progress["examples_done"], 22)
        self.assertEqual(
            progress["correct"], {"top1": 15, "top3": result.correct[3]}
        )
        # Run again: everything is restored, nothing is counted twice.
        again = self.evaluate()
        self.assertEqual(again.resumed_from, 22)
        self.assertEqual(again.correct, result.correct)

    def test_resume_false_starts_afresh(self):
        with stop_at_step(2), self.assertRaises(checkpoints.Interrupted):
            self.evaluate()
        result = self.evaluate(checkpoint=dict(resume=False))
        self.assertEqual(result.resumed_from, 0)
        self.assertEqual(result.correct[1], 15)

    @parameterized.named_parameters(
        (
            "batch_size",
            dict(batch_size=5),
            r"batch_size \(checkpoint: 4, this run: 5\)",
        ),
        ("ks", dict(ks_override=(1, 5)), r"ks \(checkpoint: \[1, 3\], "),
        (
            "fingerprint",
            dict(fingerprint={"weights_sha256": "b" * 8}),
            r"weights_sha256 \(checkpoint: 'aaaaaaaa', this run: 'bbbbbbbb'\)",
        ),
        (
            "ties",
            dict(ties="exclusive"),
            r"ties \(checkpoint: 'inclusive', this run: 'exclusive'\)",
        ),
    )
    def test_another_run_is_refused(self, changed, difference):
        with stop_at_step(2), self.assertRaises(checkpoints.Interrupted):
            self.evaluate(
                checkpoint=dict(fingerprint={"weights_sha256": "a" * 8})
            )
        kwargs = {"fingerprint": {"weights_sha256": "a" * 8}, **changed}
        dataset = oracle_data(batch_size=kwargs.pop("batch_size", 4))
        ks = kwargs.pop("ks_override", (1, 3))
        ties = kwargs.pop("ties", "inclusive")
        with self.assertRaisesRegex(
            ValueError,
            rf"^The checkpoint in {self.directory} was made by a different "
            rf"run: .*{difference}.*\. Resume only the same run: start "
            r"afresh with --config\.eval\.resume=False \(`resume=False` in "
            r"Python; the checkpoint is then replaced\) or use another "
            r"workdir / checkpoint_dir\.$",
        ):
            self.evaluate(dataset, ks=ks, ties=ties, checkpoint=kwargs)

    @parameterized.named_parameters(
        ("corrupt_index", "*.index", b"not a checkpoint", "corrupt or partial"),
        ("missing_state", "ckpt-*", None, "partial \\(missing the saved"),
        ("corrupt_fingerprint", "fingerprint.json", b"{", "fingerprint"),
        ("missing_fingerprint", "fingerprint.json", None, "partial"),
    )
    def test_damaged_checkpoint_is_refused(self, pattern, content, message):
        with stop_at_step(2), self.assertRaises(checkpoints.Interrupted):
            self.evaluate()
        paths = glob.glob(os.path.join(self.directory, pattern))
        self.assertNotEmpty(paths)
        for path in paths:
            if content is None:
                os.remove(path)
            else:
                with open(path, "wb") as f:
                    f.write(content)
        if pattern == "ckpt-*":
            os.remove(os.path.join(self.directory, "checkpoint"))
        with self.assertRaisesRegex(
            ValueError, rf"^The checkpoint.* {message}.*resume=False"
        ):
            self.evaluate()

    def test_the_checkpoint_is_read_once_and_the_input_can_start_there(self):
        with stop_at_step(2), self.assertRaises(checkpoints.Interrupted):
            self.evaluate()
        checkpointer = checkpoints.Checkpointer(
            self.directory, input_resumed=True
        )
        self.assertEqual(
            checkpointer.start,
            listeners.Position(steps=2, examples=8, input_resumed=True),
        )
        # The input leaves out the 2 counted batches itself: not read again.
        resumed = evaluation.evaluate(
            self.model,
            oracle_data().skip(checkpointer.start.steps),
            ks=(1, 3),
            expected_num_examples=22,
            progress="none",
            listeners=[checkpointer],
        )
        self.assertEqual(resumed.resumed_from, 8)
        self.assertEqual(resumed.correct[1], 15)
        self.assertEqual(resumed.num_examples, 22)

    def test_a_fresh_checkpointer_has_no_start(self):
        self.assertIsNone(checkpoints.Checkpointer(self.directory).start)

    def test_remove_when_done_leaves_no_state(self):
        result = self.evaluate(checkpoint=dict(remove_when_done=True))
        self.assertEqual(result.correct[1], 15)
        self.assertFalse(os.path.exists(self.directory))

    @parameterized.named_parameters(
        ("negative", -1),
        ("float", 1.5),
    )
    def test_bad_interval(self, value):
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `every_n_examples` must be a non-negative integer "
            rf"\(0: save only on a signal and at the end\)\. "
            rf"Received: every_n_examples={value}$",
        ):
            self.evaluate(checkpoint=dict(every_n_examples=value))

    def test_mirrored_strategy_resumes_like_one_device(self):
        devices = conftest.logical_cpus(2)
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            model = testing.oracle_model(NUM_CLASSES)
        self.model = model
        with stop_at_step(3), self.assertRaises(checkpoints.Interrupted):
            self.evaluate(strategy=strategy)
        resumed = self.evaluate(strategy=strategy)
        self.assertEqual(resumed.resumed_from, 12)
        self.assertEqual(resumed.correct[1], 15)
        self.assertEqual(resumed.num_examples, 22)


class Pause(keras.layers.Layer):
    """Sleeps per batch: a run slow enough for a test to interrupt."""

    def __init__(self, seconds, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds

    def call(self, images):
        def pause(x):
            time.sleep(self.seconds)
            return x

        paused = tf.py_function(pause, [images], images.dtype)
        paused.set_shape(images.shape)
        return paused


def slow_oracle(num_classes=NUM_CLASSES, seconds=0.3):
    """The oracle behind a `Pause` (a factory for the command line)."""
    inputs = keras.Input(shape=(None, None, 3))
    outputs = testing.oracle_model(num_classes)(Pause(seconds)(inputs))
    return keras.Model(inputs, outputs, name="slow_oracle")


@pytest.mark.slow
class CommandLineResumeTest(tf.test.TestCase):
    """SIGTERM to a real `python -m tf_topk`, then the same command again."""

    def command(self, images, workdir, *extra):
        return [
            sys.executable,
            "-m",
            "tf_topk",
            f"--config={CONFIGS}/smoke.py",
            f"--config.data.path={images}",
            "--config.model.weights=checkpoints_test:slow_oracle",
            "--config.eval.progress=log",
            "--config.eval.log_every_n_examples=4",
            f"--workdir={workdir}",
            *extra,
        ]

    def interrupt(self, command, env, after="Processed 8 images"):
        """Runs `command`, sends SIGTERM once `after` is logged: (rc, log)."""
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        for line in process.stdout:
            lines.append(line)
            if after in line:
                process.send_signal(signal.SIGTERM)
                break
        output = "".join(lines) + process.communicate(timeout=300)[0]
        return process.returncode, output

    def test_sigterm_then_the_same_command_gives_the_same_counts(self):
        images = self.create_tempdir().full_path
        write_smoke_images(images, num_examples=40, num_correct=28)
        workdir = self.create_tempdir().full_path
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": os.path.dirname(os.path.abspath(__file__)),
        }
        returncode, output = self.interrupt(self.command(images, workdir), env)
        self.assertEqual(returncode, 128 + signal.SIGTERM, output)
        self.assertIn("Received SIGTERM", output)
        self.assertFalse(os.path.exists(os.path.join(workdir, "results.json")))
        with open(os.path.join(workdir, "progress.json")) as f:
            progress = json.load(f)
        self.assertFalse(progress["complete"])
        done = progress["examples_done"]
        self.assertBetween(done, 8, 36)
        self.assertEqual(progress["expected_num_examples"], 40)
        # The resumed run does not even decode what was counted: an image
        # damaged among those now cannot stop it.
        first = os.path.join(images, sorted(os.listdir(images))[0])
        first = os.path.join(first, sorted(os.listdir(first))[0])
        with open(first, "rb") as f:
            intact = f.read()
        with open(first, "wb") as f:
            f.write(b"damaged after it was counted")

        completed = subprocess.run(
            self.command(images, workdir),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(completed.returncode, 0, completed.stderr[-3000:])
        self.assertIn(f"Resuming from example {done} of 40.", completed.stderr)
        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["resumed_from"], done)
        self.assertEqual(record["num_examples"], 40)
        self.assertEqual(record["top1_correct"], 28)
        self.assertEqual(record["top5_correct"], 40)
        with open(first, "wb") as f:
            f.write(intact)
        # The finished run leaves no resume state behind.
        self.assertFalse(os.path.exists(os.path.join(workdir, "checkpoint")))
        self.assertFalse(os.path.exists(os.path.join(workdir, "progress.json")))

        # Another batch size: the checkpoint of the first run is refused.
        self.interrupt(self.command(images, workdir), env)
        completed = subprocess.run(
            self.command(images, workdir, "--config.data.batch_size=8"),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertNotEqual(completed.returncode, 0)
        self.assertIn("was made by a different run", completed.stderr)
        self.assertIn(
            "batch_size (checkpoint: 4, this run: 8)", completed.stderr
        )
        self.assertIn("--config.eval.resume=False", completed.stderr)


if __name__ == "__main__":
    tf.test.main()
