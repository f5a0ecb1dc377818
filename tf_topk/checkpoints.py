"""Saving and resuming an evaluation that was interrupted.

An evaluation with a checkpoint folder saves its state every N examples and
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
            "command again (or call evaluate with the same checkpoint_dir) "
            "to resume."
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
    """The checkpoint of one evaluation: its state, position and fingerprint.

    Args:
        directory: the checkpoint folder (created).
        fingerprint: what identifies the run (JSON-able mapping).
        resume: restore an existing checkpoint of the same run; False
            deletes any checkpoint in `directory` first.
        **trackables: what to save (metric objects, variables).
    """

    def __init__(
        self,
        directory: str,
        fingerprint: Mapping[str, Any],
        *,
        resume: bool = True,
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
        if not resume:
            self.clear()
            tf.io.gfile.makedirs(self.directory)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, self.directory, max_to_keep=1
        )

    @property
    def _fingerprint_path(self) -> str:
        return os.path.join(self.directory, files.FINGERPRINT_FILE)

    def restore(self) -> tuple[int, int]:
        """Restores the saved state, if any: (steps done, examples done).

        Raises:
            ValueError: the checkpoint belongs to another run, or is
                corrupt or partial.
        """
        latest = self._manager.latest_checkpoint
        has_fingerprint = tf.io.gfile.exists(self._fingerprint_path)
        if latest is None and not has_fingerprint:
            return 0, 0
        if latest is None or not has_fingerprint:
            missing = (
                "the saved state" if latest is None else files.FINGERPRINT_FILE
            )
            raise ValueError(
                f"The checkpoint in {self.directory} is partial (missing "
                f"{missing}). {_FIX}"
            )
        self._check_fingerprint()
        try:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError) as e:
            raise ValueError(
                f"The checkpoint in {self.directory} is corrupt or partial "
                f"and cannot be restored ({str(e).splitlines()[0]}). {_FIX}"
            ) from e
        return int(self.steps.numpy()), int(self.examples.numpy())

    def _check_fingerprint(self) -> None:
        try:
            with tf.io.gfile.GFile(self._fingerprint_path) as f:
                saved = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(
                f"The checkpoint fingerprint {self._fingerprint_path} is "
                f"corrupt ({e}). {_FIX}"
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
        if not tf.io.gfile.exists(self._fingerprint_path):
            files.write_json(self._fingerprint_path, self.fingerprint)
        return self._manager.save(checkpoint_number=steps)

    def clear(self) -> None:
        """Deletes the checkpoint (after a finished run)."""
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)


class Autosave:
    """Saves a `Store` every N examples, and on a stop request, then stops.

    Args:
        store: the checkpoint store.
        every_n_examples: the saving interval in examples (0: only on a stop
            request and at the end).
        progress_file: where `progress.json` goes (rewritten at every save).
        stop: the request set by `stop_on_signals`.
        expected_num_examples: the examples of the whole run, if known.
        read_counts: returns {"top1": correct, ...} so far, for the
            progress file.
    """

    def __init__(
        self,
        store: Store,
        *,
        every_n_examples: int,
        progress_file: str,
        stop: StopRequest,
        expected_num_examples: int | None,
        read_counts,
    ):
        self.store = store
        self.every_n_examples = every_n_examples
        self.progress_file = progress_file
        self.stop = stop
        self.expected_num_examples = expected_num_examples
        self.read_counts = read_counts
        # Called before each save (e.g. to flush the predictions file).
        self.before_save = None
        self._last_saved = None

    @classmethod
    def create(
        cls,
        directory: str,
        *,
        run: Mapping[str, Any],
        fingerprint: Mapping[str, Any] | None,
        state: Mapping[str, Any],
        resume: bool,
        every_n_examples: int,
        progress_file: str | None,
        stop: StopRequest,
        expected_num_examples: int | None,
        read_counts,
    ) -> Autosave:
        """Checks the arguments and opens the `Store` in `directory`.

        Args:
            directory: the checkpoint folder.
            run: what the loop itself knows of the run (ks, batch size...).
            fingerprint: the caller's part of the run's identity.
            state: what to save: Keras metrics (their variables are saved;
                None entries are skipped) and TF variables.
            resume: restore a checkpoint of the same run.
            every_n_examples: the saving interval (0: only on a signal).
            progress_file: where progress.json goes (default: in
                `directory`).
            stop: the stop request of `stop_on_signals`.
            expected_num_examples: the run's example count, if known.
            read_counts: () -> (correct per k, count) so far, for
                progress.json.
        """
        if (
            isinstance(every_n_examples, bool)
            or not isinstance(every_n_examples, int)
            or every_n_examples < 0
        ):
            raise ValueError(
                "Argument `checkpoint_every_n_examples` must be a "
                "non-negative integer (0: save only on a signal and at the "
                f"end). Received: checkpoint_every_n_examples="
                f"{every_n_examples!r}"
            )
        # Keras 3 metrics are not TF trackables; their variables are.
        trackables = {
            name: value
            if isinstance(value, tf.Variable)
            else list(value.variables)
            for name, value in state.items()
            if value is not None
        }
        store = Store(
            directory,
            {**run, **dict(fingerprint or {})},
            resume=resume,
            **trackables,
        )
        return cls(
            store,
            every_n_examples=every_n_examples,
            progress_file=progress_file
            or os.path.join(store.directory, files.PROGRESS_FILE),
            stop=stop,
            expected_num_examples=expected_num_examples,
            read_counts=read_counts,
        )

    def restore(self, input_start_step: int = 0) -> tuple[int, int]:
        """Restores the store: (steps, examples) counted so far.

        Args:
            input_start_step: the batches the input already leaves out
                (0: it starts at the beginning); must be the checkpoint's.
        """
        steps, examples = self.store.restore()
        if input_start_step not in (0, steps):
            raise ValueError(
                "Argument `input_start_step` must equal the batches the "
                f"checkpoint counted ({steps}). Received: "
                f"input_start_step={input_start_step}"
            )
        if examples:
            logging.info(
                "Resuming from example %d of %s.",
                examples,
                self.expected_num_examples or "?",
            )
        return steps, examples

    def start(self, examples: int) -> None:
        """Sets the position the run starts (or resumes) from."""
        self._last_saved = examples

    def after_step(self, steps: int, examples: int) -> None:
        """Saves when due; raises `Interrupted` after a requested stop."""
        due = (
            self.every_n_examples > 0
            and examples - self._last_saved >= self.every_n_examples
        )
        if due or self.stop.requested:
            self.save(steps, examples, complete=False)
        if self.stop.requested:
            raise Interrupted(
                self.stop.signal_name,
                examples,
                self.expected_num_examples,
                self.store.directory,
            )

    def _correct(self) -> dict[str, int]:
        correct, _ = self.read_counts()
        ks = self.store.fingerprint.get("ks") or range(1, len(correct) + 1)
        return {f"top{k}": int(round(c)) for k, c in zip(ks, correct)}

    def save(self, steps: int, examples: int, *, complete: bool) -> None:
        """Saves the state and rewrites the progress file."""
        if self.before_save is not None:
            self.before_save()
        self.store.save(steps, examples)
        self._last_saved = examples
        files.write_json(
            self.progress_file,
            {
                "complete": complete,
                "examples_done": examples,
                "expected_num_examples": self.expected_num_examples,
                "correct": self._correct(),
                "checkpoint_dir": self.store.directory,
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


def saved_steps(directory: str | None) -> int:
    """The batches the latest checkpoint in `directory` counted (0: none),
    read without restoring anything, so a resumed run can build its input
    from there (`datasets.build(start=...)`); `evaluate` checks it."""
    latest = directory and tf.train.latest_checkpoint(directory)
    if not latest:
        return 0
    try:
        return int(
            tf.train.load_variable(latest, "steps/.ATTRIBUTES/VARIABLE_VALUE")
        )
    except (tf.errors.OpError, ValueError):
        return 0  # A damaged checkpoint: `evaluate` refuses it by name.
