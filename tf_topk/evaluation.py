"""The evaluation loop: one pass of a model over a dataset, exact top-k counts.

`evaluate` is the only loop in tf_topk (the command line, the Python API and
the Keras callback call it). It pads the last batch to a full, static shape
masked with sample weight 0, runs under any `tf.distribute` strategy
(`tf_topk.distribute`), averages multi-crop predictions, checks that it saw
exactly the examples expected, and can checkpoint (`tf_topk.checkpoints`)
and save every prediction (`tf_topk.predictions`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from tf_topk import (
    checkpoints,
    distribute,
    metrics,
    models,
    results,
)
from tf_topk import progress as progress_display
from tf_topk.runs import predictions


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
    checkpoint_dir: str | None = None,
    checkpoint_every_n_examples: int = 5000,
    resume: bool = True,
    fingerprint: Mapping[str, Any] | None = None,
    progress_file: str | None = None,
    predictions_dir: str | None = None,
    input_start_step: int = 0,
) -> results.EvalResult:
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
            `tf_topk.distribute.per_worker_batch_size(batch_size,
            num_input_pipelines)` per batch (what
            `tf_topk.datasets.build(..., num_shards=, shard_index=)`
            gives); with one pipeline it must return the whole dataset.
            A function needs `batch_size` and `expected_num_examples`.
        ks: the k values, each at most C.
        strategy: a `tf.distribute` strategy to run under; default: the
            current one (none). Every batch is split by rows across its
            replicas and workers (see
            `tf_topk.distribute.distribute_dataset`): each example is
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
        checkpoint_dir: save the state (counts, batches done; see
            `tf_topk.checkpoints`) here every `checkpoint_every_n_examples`
            examples, at the end and on SIGTERM / SIGINT (then raise
            `checkpoints.Interrupted`). A later call of the same run resumes
            from it with the counts of an uninterrupted run (the input
            pipeline reads the counted batches again; the model does not
            see them). Not with several workers.
        checkpoint_every_n_examples: the saving interval (0: only on a
            signal and at the end).
        resume: restore a checkpoint found in `checkpoint_dir`; False
            replaces it.
        fingerprint: what identifies the run beyond ks, ties, batch size,
            example count and model (e.g. weights hash, data, preprocessing):
            a checkpoint of another fingerprint is refused.
        progress_file: where `progress.json` (counts so far, examples done
            and expected, `"complete"`) is written at every save; default
            `<checkpoint_dir>/progress.json`.
        predictions_dir: stream every example's id, labels, top-10
            classes and scores here (format: `tf_topk.predictions`); ids
            from a string batch after the labels or weights
            (`datasets.build(..., with_ids=True)`), else positions.
        input_start_step: the batches `dataset` already leaves out
            (`datasets.build(start=...)`: no decoding) for a resume; it
            must equal the checkpoint's. 0: the skipped batches are read.

    Returns:
        An `EvalResult`; `resumed_from` says where a resumed run started.

    Raises:
        ValueError: bad arguments, an empty dataset, an example count that
            differs from `expected_num_examples`, or a checkpoint of another
            run, corrupt or partial.
        checkpoints.Interrupted: SIGTERM / SIGINT arrived (state saved).
    """
    setup = _resolve(
        model,
        dataset,
        ks=ks,
        strategy=strategy,
        expected_num_examples=expected_num_examples,
        batch_size=batch_size,
        ties=ties,
        progress=progress,
    )
    topk, per_class = _build_metrics(setup)
    step = _build_step(
        model,
        setup,
        topk,
        per_class,
        jit_compile=jit_compile,
        with_top=predictions_dir is not None,
    )
    show = progress_display.display(
        topk,
        progress=setup.progress,
        strategy=setup.strategy,
        num_steps=_num_steps(setup),
        log_every_n_examples=log_every_n_examples,
    )
    timing, start = _run(
        model,
        setup,
        step,
        show,
        {"topk": topk, "per_class": per_class},
        checkpoint=dict(
            directory=checkpoint_dir,
            every_n_examples=checkpoint_every_n_examples,
            resume=resume,
            fingerprint=fingerprint,
            progress_file=progress_file,
            input_start_step=input_start_step,
        ),
        predictions_dir=predictions_dir,
    )
    # Reading the metric variables sums them across replicas and workers
    # (a collective that every worker reaches here, in the same order).
    return results.from_counts(
        topk.counts(),
        None if per_class is None else per_class.counts(),
        timing=timing,
        expected_num_examples=setup.expected_num_examples,
        num_classes=setup.num_classes,
        ties_rule=setup.ties,
        resumed_from=start,
        metadata=metadata,
    )


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What one evaluation resolved from its arguments, before any step."""

    ks: tuple[int, ...]
    dataset: tf.data.Dataset  # The whole dataset.
    dataset_fn: distribute.DatasetFn | None  # Or each worker reads it all.
    batch_size: int
    expected_num_examples: int | None
    num_classes: int
    multi_label: bool
    ties: str
    progress: str
    use_bar: bool
    strategy: tf.distribute.Strategy
    distributed: bool


def _resolve(
    model,
    dataset,
    *,
    ks,
    strategy,
    expected_num_examples,
    batch_size,
    ties,
    progress,
) -> _Setup:
    """Checks the arguments (each error before any step) into a `_Setup`."""
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
    dataset = distribute.whole_dataset(dataset)
    spec = dataset.element_spec
    predictions.check_element_spec(spec)
    use_bar = progress_display.uses_bar(progress)
    num_classes = models.num_classes(model)
    metrics.check_k_fits(ks, num_classes)
    multi_label = spec[1].shape.rank == 2 and spec[1].shape[-1] != 1
    if batch_size is None:
        batch_size = _infer_batch_size(dataset)
    strategy = strategy or tf.distribute.get_strategy()
    return _Setup(
        ks=ks,
        dataset=dataset,
        dataset_fn=dataset_fn,
        batch_size=batch_size,
        expected_num_examples=expected_num_examples,
        num_classes=num_classes,
        multi_label=multi_label,
        ties=ties,
        progress=progress,
        use_bar=use_bar,
        strategy=strategy,
        distributed=not distribute.is_default(strategy),
    )


def _infer_batch_size(dataset: tf.data.Dataset) -> int:
    static = tf.nest.flatten(dataset.element_spec[1])[0].shape[0]
    if static is not None:
        return int(static)
    for element in dataset.take(1):
        return int(tf.shape(element[1])[0])
    raise ValueError(
        "Argument `dataset` is empty: there is nothing to evaluate. Check "
        "the data path and split."
    )


def _build_metrics(setup: _Setup):
    """The top-k counts and (single-label) the per-class top-1 counts."""
    ties = setup.ties
    with setup.strategy.scope():
        topk = metrics.TopKAccuracies(
            setup.ks,
            multi_label=setup.multi_label,
            ties=ties,
            count_ties=True,
            name="eval_top_k",
        )
        per_class = (
            None
            if setup.multi_label
            else metrics.PerClassTopKAccuracy(setup.num_classes, 1, ties=ties)
        )
    return topk, per_class


def _batches(setup: _Setup, *, skip_steps: int = 0):
    """Full, static batches (padding weighted 0), split across replicas.

    `skip_steps` batches already counted (a resumed run) are left out; the
    input pipeline still reads them.
    """
    dataset = setup.dataset.skip(skip_steps) if skip_steps else setup.dataset
    if not setup.distributed:
        return distribute.pad_to_batch(dataset, setup.batch_size)
    return distribute.distribute_dataset(
        dataset,
        setup.strategy,
        batch_size=setup.batch_size,
        dataset_fn=setup.dataset_fn,
        num_examples=setup.expected_num_examples,
    )


def _num_steps(setup: _Setup) -> int | None:
    """The steps of the whole run (per worker), if the count is known."""
    if setup.expected_num_examples is None:
        return None
    pipelines = 1
    if setup.dataset_fn:
        pipelines = distribute.num_input_pipelines(setup.strategy)
    return distribute.num_steps(
        setup.expected_num_examples,
        setup.batch_size,
        num_pipelines=pipelines,
    )


def _run(
    model,
    setup: _Setup,
    step: Callable,
    show: Callable,
    state: dict[str, Any],
    *,
    checkpoint: dict[str, Any],
    predictions_dir: str | None,
) -> tuple[results.Timing, int]:
    """Restores, runs the steps, saves: (timing, examples restored)."""
    directory = checkpoint["directory"]
    input_start_step = checkpoint.pop("input_start_step")
    guard = (
        checkpoints.stop_on_signals()
        if directory
        else contextlib.nullcontext(checkpoints.StopRequest())
    )
    # The bytes of the predictions file a checkpoint accounts for.
    state["bytes"] = tf.Variable(0, dtype=tf.int64, trainable=False)
    with guard as stop:
        autosave = None
        if checkpoint["directory"]:
            if setup.dataset_fn and (
                distribute.num_input_pipelines(setup.strategy) > 1
            ):
                raise ValueError(
                    "Argument `checkpoint_dir` is not supported with several "
                    "workers (each reads its own share). Received: "
                    f"checkpoint_dir={checkpoint['directory']!r}. Pass "
                    "checkpoint_dir=None, or evaluate in one process."
                )
            autosave = checkpoints.Autosave.create(
                run={
                    "model": model.name,
                    "num_classes": setup.num_classes,
                    "ks": list(setup.ks),
                    "ties": setup.ties,
                    "batch_size": setup.batch_size,
                    "expected_num_examples": setup.expected_num_examples,
                },
                state=state,
                stop=stop,
                expected_num_examples=setup.expected_num_examples,
                read_counts=lambda: state["topk"].local_counts(setup.strategy),
                **checkpoint,
            )
        steps, start = (
            autosave.restore(input_start_step) if autosave else (0, 0)
        )
        writer = None
        if predictions_dir:
            writer = predictions.Writer.for_strategy(
                predictions_dir,
                setup.strategy,
                keep_bytes=int(state["bytes"].numpy()) if start else None,
            )
        if writer and autosave:
            autosave.before_save = lambda: state["bytes"].assign(writer.flush())
        try:
            timing = _run_steps(
                step,
                _batches(setup, skip_steps=steps - input_start_step),
                setup.strategy,
                show,
                autosave,
                (steps, start),
                writer,
            )
        finally:
            if writer:
                writer.close()
    return timing, start


def _build_step(
    model,
    setup: _Setup,
    topk,
    per_class,
    *,
    jit_compile: bool,
    with_top: bool = False,
) -> Callable:
    """The step: updates the metrics, returns each replica's weight sum.

    With `with_top`, also each replica's top classes and scores.
    """
    # Under a strategy, XLA compiles only the model: a compiled step reads
    # every replica's metric variables from one device, which XLA refuses.
    model_fn = (
        tf.function(models.predict, jit_compile=True)
        if jit_compile and setup.distributed
        else models.predict
    )

    def replica_step(images, labels, weights):
        outputs = model_fn(model, images, setup.num_classes)
        topk.update_state(labels, outputs, weights)
        if per_class is not None:
            per_class.update_state(labels, outputs, weights)
        if with_top:
            top = predictions.top(outputs, setup.num_classes)
            return (tf.reduce_sum(weights),) + top
        return tf.reduce_sum(weights)

    # No collective per step: each worker counts its own rows; the global
    # count is the metric variables summed across replicas when read.
    @tf.function(jit_compile=jit_compile and not setup.distributed)
    def step(images, labels, weights):
        return setup.strategy.run(replica_step, args=(images, labels, weights))

    return step


def _run_steps(
    step: Callable,
    batches,
    strategy: tf.distribute.Strategy,
    show: Callable[[int, float], None],
    autosave: checkpoints.Autosave | None,
    start: tuple[int, int],
    writer: predictions.Writer | None = None,
) -> results.Timing:
    """Runs `step` on every batch, timing the input and the model apart.

    `start` is (steps, examples) already counted by a resumed run; the
    checkpoint is saved when due and once more at the end.
    """
    timing = results.Timing()
    steps_done, examples_before = start
    if autosave:
        autosave.start(examples_before)
    begin = time.perf_counter()
    iterator = iter(batches)
    while True:
        t0 = time.perf_counter()
        try:
            element = next(iterator)
        except StopIteration:
            break
        except tf.errors.InvalidArgumentError as e:  # A failed input check.
            found = re.search(
                r"assertion failed: \[(.*?)\]\s*$", e.message, re.S | re.M
            )
            raise ValueError(found[1] if found else e.message) from e
        t1 = time.perf_counter()
        outputs = step(*element[:3])
        local = strategy.experimental_local_results(outputs)
        if writer:
            predictions.write_step(writer, element, local, strategy)
            local = [part[0] for part in local]
        step_seen = sum(float(x) for x in local)
        t2 = time.perf_counter()
        timing.input_time += t1 - t0
        timing.model_time += t2 - t1
        timing.local_seen += step_seen
        if not timing.first_step_time:
            timing.first_step_time = t2 - t0
            timing.first_step_examples = step_seen
        steps_done += 1
        examples = examples_before + int(round(timing.local_seen))
        show(steps_done, examples)
        if autosave:
            autosave.after_step(steps_done, examples)
    timing.wall_time = time.perf_counter() - begin
    if autosave:
        examples = examples_before + int(round(timing.local_seen))
        autosave.save(steps_done, examples, complete=True)
    return timing
