"""The evaluation loop: one pass of a model over a dataset, exact top-k counts.

`evaluate` is the only loop in tf_topk (the command line, the Python API and
the Keras callback call it). It pads the last batch to a full, static shape
masked with sample weight 0, runs under any `tf.distribute` strategy
(`tf_topk.distribute`), averages multi-crop predictions and checks that it
saw exactly the examples expected. Everything else plugs in as a listener
(`tf_topk.listeners`): the progress display, the input rate, checkpoints
and resume, per-example predictions, the shortfall diagnosis, run metadata.
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from tf_topk import (
    backoff,
    distribute,
    input_stage,
    listeners,
    memory,
    metrics,
    models,
    results,
    steps,
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
    progress: str | progress_display.Progress = "auto",
    listeners: Sequence[listeners.Listener] = (),
) -> results.EvalResult:
    """Evaluates `model` on every example of `dataset`, exactly once.

    >>> from tf_topk import testing
    >>> model = testing.oracle_model(5)
    >>> dataset, _, _ = testing.oracle_dataset(10, 7)
    >>> result = evaluate(model, dataset, ks=(1, 5), progress="none")
    >>> result.correct[1], result.num_examples
    (7, 10)

    Args:
        model: maps an image batch (or a list of image batches, one per
            ensemble member) to [B, C] class scores; with multi-crop
            batches [B, N, H, W, 3] the N outputs are averaged per image.
        dataset: batches of (images, labels) or (images, labels, weights),
            labels as class indices [B] or multi-hot [B, C] (multi-label),
            optionally followed by string example ids. For multi-worker
            runs in which each worker should read and decode only its
            share, a function of a `tf.distribute.InputContext` returning
            the batches of examples i with i % num_input_pipelines ==
            input_pipeline_id, at most
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
            "log" or "none"; or a `tf_topk.progress.Progress` (e.g. to set
            the interval of the log lines).
        listeners: `tf_topk.listeners.Listener`s called at the beginning,
            after every batch and at the end (see that module): e.g.
            `checkpoints.Checkpointer` (save, and resume where a checkpoint
            left off), `predictions.Recorder` (every example's top
            classes), `diagnostics.Diagnosis`, `listeners.Metadata`. The
            input pipeline's own rate is measured unless a
            `input_stage.InputProbe` is given (pass
            `InputProbe(num_batches=0)` to skip it).

    Returns:
        The `EvalResult`, as every listener annotated it; `resumed_from`
        says where a resumed run started.

    Raises:
        ValueError: bad arguments, an empty dataset, an example count that
            differs from `expected_num_examples`, or a checkpoint of another
            run, corrupt or partial.
        checkpoints.Interrupted: SIGTERM / SIGINT arrived while a
            `Checkpointer` listened (state saved).
    """
    setup = _resolve(
        model,
        dataset,
        ks=ks,
        strategy=strategy,
        expected_num_examples=expected_num_examples,
        batch_size=batch_size,
        ties=ties,
    )
    hooks = _listeners(setup, progress, listeners)
    step, topk, per_class = _step_and_metrics(
        model,
        setup,
        jit_compile=jit_compile,
        with_predictions=any(hook.needs_predictions for hook in hooks),
    )
    run = _run_record(model, setup, topk, per_class, hooks)
    with contextlib.ExitStack() as stack:
        for hook in hooks:
            stack.callback(hook.on_exit)
            hook.on_begin(run)
        memory.reset_device_peaks()
        timing = steps.run(
            step,
            _batches(setup, run.start),
            strategy=setup.strategy,
            hooks=hooks,
            start=run.start,
            policy=_policy(hooks),
        )
        timing.batch_size = timing.batch_size or setup.batch_size
        timing.peak_host_bytes = memory.peak_host_bytes()
        timing.peak_device_bytes = memory.peak_device_bytes()
        # Reading the metric variables sums them across replicas and
        # workers (a collective that every worker reaches here, in order).
        result = results.from_counts(
            topk.counts(),
            None if per_class is None else per_class.counts(),
            timing=timing,
            expected_num_examples=setup.expected_num_examples,
            num_classes=setup.num_classes,
            ties_rule=setup.ties,
            resumed_from=run.start.examples,
        )
        for hook in hooks:
            result = hook.on_end(result) or result
    return result


def _listeners(setup, progress, given) -> list[listeners.Listener]:
    """The display, the input probe and the out-of-memory back-off unless
    given, then the caller's."""
    hooks = [progress_display.resolve(progress)]
    given = list(given or ())
    probed = any(isinstance(hook, input_stage.InputProbe) for hook in given)
    if not probed and setup.dataset_fn is None:
        hooks.append(input_stage.InputProbe())
    if not any(isinstance(hook, backoff.OomBackoff) for hook in given):
        hooks.append(backoff.OomBackoff())
    return listeners.check(hooks + given)


def _policy(hooks: Sequence[listeners.Listener]) -> backoff.OomBackoff:
    """The out-of-memory back-off among the listeners (the first one)."""
    return next(hook for hook in hooks if isinstance(hook, backoff.OomBackoff))


def _run_record(model, setup, topk, per_class, hooks) -> listeners.Run:
    """What the listeners are told when the loop begins."""
    start = next(
        (hook.start for hook in hooks if hook.start), listeners.Position()
    )
    state = {"topk": list(topk.variables)}
    if per_class is not None:
        state["per_class"] = list(per_class.variables)
    pipelines = 1
    if setup.dataset_fn:
        pipelines = distribute.num_input_pipelines(setup.strategy)
    return listeners.Run(
        model=model,
        dataset=setup.dataset,
        ks=setup.ks,
        num_classes=setup.num_classes,
        batch_size=setup.batch_size,
        expected_num_examples=setup.expected_num_examples,
        ties=setup.ties,
        strategy=setup.strategy,
        num_input_pipelines=pipelines,
        num_steps=_num_steps(setup, pipelines),
        start=start,
        state=state,
        local_counts=lambda: topk.local_counts(setup.strategy),
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


# The steps traced for each model, kept while the model lives: a command
# that evaluates one model on many inputs (ImageNet-C's cells, the
# callback's evaluations during fit) traces and compiles its step once.
# The steps hold the model weakly, so the entry goes with the model.
_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _step_and_metrics(model, setup: _Setup, *, jit_compile, with_predictions):
    """(the step, its top-k metric, its per-class metric), the metrics'
    counts at zero.

    Without a distribution strategy, the step and metrics of an earlier
    evaluation of the same model with the same settings are reused (their
    counts reset); under a strategy each evaluation builds its own (the
    strategy may differ from one call to the next).
    """
    key = (
        setup.ks,
        setup.ties,
        setup.num_classes,
        setup.multi_label,
        bool(jit_compile),
        bool(with_predictions),
    )
    cache = None
    if not setup.distributed:
        try:
            cache = _STEPS.setdefault(model, {})
        except TypeError:  # A model that cannot be weakly referenced.
            cache = None
    if cache is not None and key in cache:
        step, topk, per_class = cache[key]
        topk.reset_state()
        if per_class is not None:
            per_class.reset_state()
        return step, topk, per_class
    topk, per_class = _build_metrics(setup)
    step = _build_step(
        model,
        setup,
        topk,
        per_class,
        jit_compile=jit_compile,
        with_predictions=with_predictions,
    )
    if cache is not None:
        cache[key] = (step, topk, per_class)
    return step, topk, per_class


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


def _batches(setup: _Setup, start: listeners.Position):
    """Full, static batches (padding weighted 0), split across replicas.

    A resumed run's counted batches are left out: by the input itself
    (`start.input_resumed`), else read and skipped here.
    """
    dataset = setup.dataset
    if start.steps and not start.input_resumed:
        dataset = dataset.skip(start.steps)
    if not setup.distributed:
        return distribute.pad_to_batch(dataset, setup.batch_size)
    return distribute.distribute_dataset(
        dataset,
        setup.strategy,
        batch_size=setup.batch_size,
        dataset_fn=setup.dataset_fn,
        num_examples=setup.expected_num_examples,
    )


def _num_steps(setup: _Setup, num_pipelines: int) -> int | None:
    """The steps of the whole run (per worker), if the count is known."""
    if setup.expected_num_examples is None:
        return None
    return distribute.num_steps(
        setup.expected_num_examples,
        setup.batch_size,
        num_pipelines=num_pipelines,
    )


def _build_step(
    model,
    setup: _Setup,
    topk,
    per_class,
    *,
    jit_compile: bool,
    with_predictions: bool,
) -> Callable:
    """The step: updates the metrics, returns each replica's rows counted.

    With `with_predictions`, also each replica's decisions (correct per
    k, [B, len(ks)]), top classes and scores, for the listeners.
    """
    # Under a strategy, XLA compiles only the model: a compiled step reads
    # every replica's metric variables from one device, which XLA refuses.
    model_fn = (
        tf.function(models.predict, jit_compile=True)
        if jit_compile and setup.distributed
        else models.predict
    )
    # Only what a step reads, and the model weakly: a step kept in
    # `_STEPS` keeps neither the model nor the first run's dataset alive.
    model_ref = weakref.ref(model)
    num_classes = setup.num_classes
    ks = setup.ks
    ties = setup.ties
    multi_label = setup.multi_label
    strategy = setup.strategy

    def replica_step(images, labels, weights):
        outputs = model_fn(model_ref(), images, num_classes)
        return replica_count(labels, outputs, weights)

    def replica_count(labels, outputs, weights):
        # No count before the forward pass is done: the examples per class
        # need no output, and a step that runs out of memory must leave
        # every count as it was (`tf_topk.backoff` runs it again).
        with tf.control_dependencies([outputs]):
            topk.update_state(labels, outputs, weights)
            if per_class is not None:
                per_class.update_state(labels, outputs, weights)
        # Rows, not weight sums: padding has weight 0, and a fractional
        # sample weight still counts its example once.
        rows = tf.math.count_nonzero(weights > 0, dtype=tf.int64)
        if not with_predictions:
            return rows
        decisions = metrics.decide(
            labels, outputs, ks, ties=ties, multi_label=multi_label
        )
        top_classes, top_scores = predictions.top(outputs, num_classes)
        correct = tf.transpose(decisions.correct)
        return rows, correct, top_classes, top_scores

    # No collective per step: each worker counts its own rows; the global
    # count is the metric variables summed across replicas when read.
    @tf.function(jit_compile=jit_compile and not setup.distributed)
    def step(images, labels, weights):
        return strategy.run(replica_step, args=(images, labels, weights))

    if strategy.num_replicas_in_sync == 1:
        return step
    return _forward_then_count(model_fn, model, setup, replica_count)


def _forward_then_count(model_fn, model, setup: _Setup, replica_count):
    """The step of several replicas as two calls: every replica's forward
    pass, then, only when all of them succeeded, every replica's count. A
    replica that runs out of memory then leaves no count of the batch on
    the others, and the batch can be run again in parts
    (`tf_topk.backoff`)."""

    @tf.function
    def forward(images):
        return setup.strategy.run(
            lambda x: model_fn(model, x, setup.num_classes), args=(images,)
        )

    @tf.function
    def count(labels, outputs, weights):
        return setup.strategy.run(
            replica_count, args=(labels, outputs, weights)
        )

    def step(images, labels, weights):
        return count(labels, forward(images), weights)

    return step
