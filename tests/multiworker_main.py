"""One worker of a multi-worker evaluation, run as a process by the tests.

    TF_CONFIG='{"cluster": {"worker": [...]}, "task": {...}}' \\
        python tests/multiworker_main.py multi_worker OUT_DIR RESULTS_DIR \\
        [sharded]

Builds the strategy first (MultiWorkerMirroredStrategy must exist before
any other op), evaluates the oracle on `oracle_dataset()` (each worker
reading only its share through `oracle_shards` with "sharded") and writes this
worker's counts to OUT_DIR/<task>_<index>.json. Only the chief writes
RESULTS_DIR/results.json, as the command line does. Not collected by pytest
(the name does not end in _test.py).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_topk import testing  # noqa: E402

NUM_EXAMPLES = 1001
BATCH_SIZE = 64
NUM_CLASSES = 10
# Labels (hand-made, shuffled): 737 equal the painted class, 150 are a
# neighbouring class (always among the 5 nearest intensities, never the
# nearest) and 114 are 5 classes away (never in the top 5).
TOP1_CORRECT = 737
TOP5_CORRECT = 737 + 150


def oracle_shards(context: tf.distribute.InputContext) -> tf.data.Dataset:
    """A dataset function: examples w, w + W, ... of `oracle_dataset`.

    In batches of ceil(BATCH_SIZE / W), as `tf_topk.evaluate` expects; the
    whole dataset for one pipeline.
    """
    pipelines = context.num_input_pipelines
    if pipelines == 1:
        return oracle_dataset()
    return (
        oracle_dataset()
        .unbatch()
        .shard(pipelines, context.input_pipeline_id)
        .batch(-(-BATCH_SIZE // pipelines))
    )


def oracle_dataset(batch_size: int = BATCH_SIZE) -> tf.data.Dataset:
    """1,001 constant images of 10 classes, batched, with a partial batch."""
    painted = np.arange(NUM_EXAMPLES) % NUM_CLASSES
    labels = painted.copy()
    neighbour = np.where(painted > 0, painted - 1, painted + 1)
    far = (painted + 5) % NUM_CLASSES
    labels[TOP1_CORRECT:TOP5_CORRECT] = neighbour[TOP1_CORRECT:TOP5_CORRECT]
    labels[TOP5_CORRECT:] = far[TOP5_CORRECT:]
    order = np.random.default_rng(0).permutation(NUM_EXAMPLES)
    images = np.stack(
        [
            testing.constant_image(c, NUM_CLASSES, height=8, width=8)
            for c in painted[order]
        ]
    )
    return tf.data.Dataset.from_tensor_slices(
        (images, labels[order].astype(np.int32))
    ).batch(batch_size)


def main(argv: list[str]) -> None:
    name, out_dir, results_dir = argv[1:4]
    sharded = argv[4:] == ["sharded"]
    from tf_topk import distribute

    strategy = distribute.get_strategy(name)
    from tf_topk import evaluation
    from tf_topk.runs import files

    with strategy.scope():
        model = testing.oracle_model(NUM_CLASSES)
    result = evaluation.evaluate(
        model,
        oracle_shards if sharded else oracle_dataset(),
        ks=(1, 5),
        strategy=strategy,
        expected_num_examples=NUM_EXAMPLES,
        batch_size=BATCH_SIZE,
        progress="none",
    )
    task_type, task_id = distribute.task(strategy)
    record = {
        "task": [task_type, task_id],
        "is_chief": distribute.is_chief(strategy),
        "num_replicas": strategy.num_replicas_in_sync,
        "num_examples": result.num_examples,
        "correct": {str(k): v for k, v in result.correct.items()},
        "per_class_count": list(result.per_class_count),
        "per_class_correct": list(result.per_class_correct),
    }
    if distribute.is_chief(strategy):
        files.write_results(result, results_dir)
    with open(os.path.join(out_dir, f"{task_type}_{task_id}.json"), "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main(sys.argv)
