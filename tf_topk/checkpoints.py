"""Saving and resuming an evaluation that was interrupted.

A run with a `Checkpointer` listener saves its state every N examples and
when the process receives SIGTERM or SIGINT (preemptible machines, job
schedulers, Ctrl-C): the exact counts so far (the metric variables) and the
input position (the number of batches done). A later run with the same
folder restores both and goes on from there, so its final counts equal an
uninterrupted run's.

A checkpoint belongs to one run: its fingerprint (model, weights SHA-256,
data, preprocessing, ks, tie rule, batch size, ...) is stored beside it, and
a run with another fingerprint refuses to resume from it rather than mix two
runs' counts.

Files in the checkpoint folder: `fingerprint.json`, tf.train.Checkpoint's
`checkpoint`, `ckpt-<n>.index` and `ckpt-<n>.data-*` (one kept).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import tensorflow as tf
from absl import logging

from tf_topk import listeners, results
from tf_topk.runs import files

_FIX = (
    "Resume only the same run: start afresh with "
    "--config.eval.resume=False (`resume=False` in Python; the checkpoint "
    "is then replaced) or use another workdir / checkpoint_dir."
)


class Interrupted(RuntimeError):
    """The evaluation stopped on a signal after saving its state.

    Attributes:
        signal_name: "SIGTERM" or "SIGINT".
        examples_done: examples counted so far (all workers).
        expected_num_examples: examples of the whole run, if known.
        checkpoint_dir: where the state was saved.
    """

    def __init__(
        self,
        signal_name: str,
        examples_done: int,
        expected_num_examples: int | None,
        checkpoint_dir: str,
    ):
        of = (
            f" of {expected_num_examples}"
            if expected_num_examples is not None
            else ""
        )
        super().__init__(
            f"Interrupted by {signal_name} after {examples_done}{of} "
            f"examples; the state is saved in {checkpoint_dir}. Run the same "
            "command again (or evaluate with a Checkpointer of the same "
            "directory) to resume."
        )
        self.signal_name = signal_name
        self.examples_done = examples_done
        self.expected_num_examples = expected_num_examples
        self.checkpoint_dir = checkpoint_dir


class StopRequest:
    """Set by a SIGTERM / SIGINT handler; read by the loop after a batch."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None


@contextlib.contextmanager
def stop_on_signals(
    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[StopRequest]:
    """Turns SIGTERM / SIGINT into a request to stop after the current batch.

    A second SIGINT while a stop is pending raises KeyboardInterrupt (a
    user's way out of a hung save). Outside the main thread, where Python
    cannot install handlers, nothing is installed and the request never
    fires. The previous handlers come back on exit.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(number, frame):
        del frame
        if request.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        request.signal_name = signal.Signals(number).name
        logging.warning(
            "Received %s: stopping after the current batch and saving.",
            request.signal_name,
        )

    previous = {number: signal.signal(number, handler) for number in signals}
    try:
        yield request
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _json_value(value: Any) -> Any:
    """The fingerprint as JSON would hold it (tuples become lists)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(saved) | set(current)):
            found += _differences(
                saved.get(key), current.get(key), f"{path}.{key}".lstrip(".")
            )
        return found
    if saved != current:
        return [f"{path} (checkpoint: {saved!r}, this run: {current!r})"]
    return []


class Store:
    """The files of one evaluation's checkpoint: state, position, identity.

    Args:
        directory: the checkpoint folder (created).
        fingerprint: what identifies the run (JSON-able mapping).
        **trackables: what to save (TF variables, lists of them).
    """

    def __init__(
        self,
        directory: str,
        fingerprint: Mapping[str, Any],
        **trackables: Any,
    ):
        self.directory = os.fspath(directory)
        self.fingerprint = _json_value(dict(fingerprint))
        self.steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.examples = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._checkpoint = tf.train.Checkpoint(
            steps=self.steps, examples=self.examples, **trackables
        )
        tf.io.gfile.makedirs(self.directory)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, self.directory, max_to_keep=1
        )

    def restore(self, path: str) -> None:
        """Restores the state saved at `path` (a checkpoint prefix).

        Raises:
            ValueError: the checkpoint belongs to another run, or is
                corrupt or partial.
        """
        self._check_fingerprint()
        try:
            self._checkpoint.restore(path).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError) as e:
            raise ValueError(
                f"The checkpoint in {self.directory} is corrupt or partial "
                f"and cannot be restored ({str(e).splitlines()[0]}). {_FIX}"
            ) from e

    def _check_fingerprint(self) -> None:
        path = os.path.join(self.directory, files.FINGERPRINT_FILE)
        try:
            with tf.io.gfile.GFile(path) as f:
                saved = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(
                f"The checkpoint fingerprint {path} is corrupt ({e}). {_FIX}"
            ) from e
        differences = _differences(saved, self.fingerprint)
        if differences:
            raise ValueError(
                f"The checkpoint in {self.directory} was made by a different "
                f"run: {'; '.join(differences)}. {_FIX}"
            )

    def save(self, steps: int, examples: int) -> str:
        """Saves the state after `steps` batches and `examples` examples."""
        self.steps.assign(steps)
        self.examples.assign(examples)
        path = os.path.join(self.directory, files.FINGERPRINT_FILE)
        if not tf.io.gfile.exists(path):
            files.write_json(path, self.fingerprint)
        return self._manager.save(checkpoint_number=steps)


def _saved_position(directory: str) -> tuple[str, int, int] | None:
    """(checkpoint path, steps, examples) of the latest checkpoint in
    `directory`, read without building anything; None when there is none.

    Raises:
        ValueError: the checkpoint is partial or corrupt.
    """
    latest = tf.train.latest_checkpoint(directory)
    has_fingerprint = tf.io.gfile.exists(
        os.path.join(directory, files.FINGERPRINT_FILE)
    )
    if latest is None and not has_fingerprint:
        return None
    if latest is None or not has_fingerprint:
        missing = (
            "the saved state" if latest is None else files.FINGERPRINT_FILE
        )
        raise ValueError(
            f"The checkpoint in {directory} is partial (missing {missing}). "
            f"{_FIX}"
        )
    try:
        steps = tf.train.load_variable(latest, _STEPS_KEY)
        examples = tf.train.load_variable(latest, _EXAMPLES_KEY)
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(
            f"The checkpoint in {directory} is corrupt or partial and cannot "
            f"be restored ({str(e).splitlines()[0]}). {_FIX}"
        ) from e
    return latest, int(steps), int(examples)


_STEPS_KEY = "steps/.ATTRIBUTES/VARIABLE_VALUE"
_EXAMPLES_KEY = "examples/.ATTRIBUTES/VARIABLE_VALUE"


class Checkpointer(listeners.Listener):
    """Checkpoints a run and resumes it: the loop's listener for both.

    The checkpoint is read once, here: `start` says where the run resumes
    (None: from the first example), so a caller can build its input from
    there (`datasets.build(start=checkpointer.start.steps * batch_size)`,
    nothing decoded twice) and pass `input_resumed=True`. When the loop
    begins, the saved counts are restored into its metrics after checking
    the fingerprint; then the state is saved every `every_n_examples`
    examples, at the end, and on SIGTERM / SIGINT (then `Interrupted` is
    raised). The loop calls a checkpoint after every other listener, so it
    covers what they did with each batch (the predictions lines written).
    `stop` is the request a SIGTERM / SIGINT sets while the loop runs.

    Args:
        directory: the checkpoint folder.
        every_n_examples: the saving interval in examples (0: only on a
            signal and at the end).
        resume: restore a checkpoint of the same run found in `directory`;
            False deletes it now and starts afresh.
        fingerprint: what identifies the run beyond what the loop knows
            (ks, ties, batch size, example count, model name), e.g. the
            weights hash, data and preprocessing: a checkpoint of another
            fingerprint is refused. Kept as the dict `fingerprint`, which a
            caller may complete until the loop begins (the command line
            knows the data's record only once its input is built from
            `start`).
        progress_file: where `progress.json` goes (rewritten at every
            save); default `<directory>/progress.json`.
        input_resumed: True when the dataset given to the loop already
            starts after the batches the checkpoint counted; False: the
            loop reads and skips them.
        remove_when_done: delete the checkpoint and the progress file once
            the run ended and the listeners before this one handled the
            result (e.g. wrote results.json); False keeps them, so the same
            call returns the counts at once.

    Raises:
        ValueError: a bad interval, or a partial or corrupt checkpoint.

    Usage with `tf_topk.evaluate`:

    ```python
    checkpointer = checkpoints.Checkpointer("/ckpt", every_n_examples=5000)
    result = tf_topk.evaluate(model, dataset, listeners=[checkpointer])
    ```
    """

    saves_state = True

    def __init__(
        self,
        directory: str,
        *,
        every_n_examples: int = 5000,
        resume: bool = True,
        fingerprint: Mapping[str, Any] | None = None,
        progress_file: str | None = None,
        input_resumed: bool = False,
        remove_when_done: bool = False,
    ):
        if (
            isinstance(every_n_examples, bool)
            or not isinstance(every_n_examples, int)
            or every_n_examples < 0
        ):
            raise ValueError(
                "Argument `every_n_examples` must be a non-negative integer "
                "(0: save only on a signal and at the end). Received: "
                f"every_n_examples={every_n_examples!r}"
            )
        self.directory = os.fspath(directory)
        self.every_n_examples = every_n_examples
        self.fingerprint = dict(fingerprint or {})
        self.progress_file = progress_file or os.path.join(
            self.directory, files.PROGRESS_FILE
        )
        self.remove_when_done = remove_when_done
        if not resume:
            remove(self.directory)
        saved = _saved_position(self.directory)
        self._saved_path = None
        if saved is not None:
            self._saved_path, steps, examples = saved
            self.start = listeners.Position(steps, examples, input_resumed)
        self._store = None
        self._signals = None
        self.stop = StopRequest()
        self._run = None
        self._steps = self._last_saved = 0

    def on_begin(self, run: listeners.Run) -> None:
        if run.num_input_pipelines > 1:
            raise ValueError(
                "A Checkpointer is not supported with several workers (each "
                "reads its own share). Received: a Checkpointer of "
                f"directory={self.directory!r} and "
                f"{run.num_input_pipelines} workers. Evaluate without it, "
                "or in one process."
            )
        self._run = run
        # Keras 3 metrics are not TF trackables; their variables are.
        trackables = {name: list(value) for name, value in run.state.items()}
        self._store = Store(
            self.directory, {**run.identity(), **self.fingerprint}, **trackables
        )
        if self._saved_path:
            self._store.restore(self._saved_path)
            logging.info(
                "Resuming from example %d of %s.",
                run.start.examples,
                run.expected_num_examples or "?",
            )
        self._signals = stop_on_signals()
        self.stop = self._signals.__enter__()
        self._steps = run.start.steps
        self._last_saved = run.start.examples

    def on_batch(self, batch: listeners.Batch) -> None:
        """Saves when due; raises `Interrupted` after a requested stop."""
        self._steps = batch.step
        self._examples = batch.examples
        due = (
            self.every_n_examples > 0
            and batch.examples - self._last_saved >= self.every_n_examples
        )
        if due or self.stop.requested:
            self.save(batch.step, batch.examples, complete=False)
        if self.stop.requested:
            raise Interrupted(
                self.stop.signal_name,
                batch.examples,
                self._run.expected_num_examples,
                self.directory,
            )

    def on_end(self, result: results.EvalResult) -> None:
        if self.remove_when_done:
            remove(self.directory, self.progress_file)
        else:
            self.save(self._steps, result.num_examples, complete=True)

    def on_exit(self) -> None:
        if self._signals is not None:
            self._signals.__exit__(None, None, None)
            self._signals = None

    def save(self, steps: int, examples: int, *, complete: bool) -> None:
        """Saves the state and rewrites the progress file."""
        self._store.save(steps, examples)
        self._last_saved = examples
        correct, _ = self._run.local_counts()
        files.write_json(
            self.progress_file,
            {
                "complete": complete,
                "examples_done": examples,
                "expected_num_examples": self._run.expected_num_examples,
                "correct": {
                    f"top{k}": int(round(c))
                    for k, c in zip(self._run.ks, correct)
                },
                "checkpoint_dir": self.directory,
            },
        )


def remove(*paths: str | None) -> None:
    """Deletes finished runs' checkpoint folders and progress files."""
    for path in paths:
        if not path or not tf.io.gfile.exists(path):
            continue
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
