"""Update time of `TopKAccuracies` against Keras' built-in top-k metrics.

Two baselines, both measured in the same run:

1. Keras. For each set of ks, one `tf_topk.metrics.TopKAccuracies(ks)`
   (default settings) is timed against the equivalent set of
   `keras.metrics.SparseTopKCategoricalAccuracy(k)` (one object per k), both
   updated inside a `tf.function` on the same tensors, in interleaved
   repetitions (the order alternates each round). Printed: the medians and
   keras_ms / ours_ms (targets: >= 0.5 on random logits, >= 0.8 on
   trained-like logits, for ks=(1, 5)). Both call `tf.math.in_top_k` once per
   k; ours also checks the labels and counts the non-finite rows (a row sum,
   one full read of the batch), so it cannot be faster than Keras.
2. A forward pass. `keras.applications.MobileNet(alpha=0.75, weights=None)`
   on a batch of 224 x 224 images, against one metric update on that
   batch's [batch, 1000] outputs (target: the update costs <= 1% of the
   forward pass).

Keras' cost, and so ours, depends on the data (on CPU, `tf.math.in_top_k`
stops reading a row once more than k scores beat the true one):

* `random`: normal logits, the true class is in the top 5 for ~0.5% of rows.
* `trained`: logits of a trained-model-like classifier: the true class is
  first for ~76% of rows and in the top 5 for ~90%.

Run: python benchmarks/metrics_bench.py [--num_examples=65536
--num_classes=1000 --repeats=21 --forward_batch=64 --count_ties]
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import statistics  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tf_topk import metrics  # noqa: E402

_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", 65536, "Rows of logits per update."
)
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 1000, "Classes per row.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 21, "Timed updates per metric (interleaved); medians reported."
)
_WARMUP = flags.DEFINE_integer(
    "warmup", 2, "Untimed updates per metric after tracing."
)
_FORWARD_BATCH = flags.DEFINE_integer(
    "forward_batch", 64, "Images per MobileNet forward pass (0: skip it)."
)
_COUNT_TIES = flags.DEFINE_bool(
    "count_ties", False, "Time TopKAccuracies(count_ties=True) instead."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the generated data.")

KS_SETS = ((1, 5), (1, 2, 3, 4, 5, 10))


def random_logits(num_examples, num_classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((num_examples, num_classes), np.float32)
    labels = rng.integers(0, num_classes, num_examples).astype(np.int32)
    return labels, logits


def trained_logits(num_examples, num_classes, seed):
    """Random logits with the true class moved to a chosen rank.

    Rank 0 for 76% of rows, ranks 1-4 for 14%, left random for 10% (a
    ResNet-50-like top-1 76% / top-5 ~90%). Scores are swapped, not
    changed, so rows stay tie-free.
    """
    labels, logits = random_logits(num_examples, num_classes, seed)
    rng = np.random.default_rng(seed + 1)
    draw = rng.random(num_examples)
    rank = np.where(draw < 0.76, 0, rng.integers(1, 5, num_examples))
    keep = draw >= 0.90
    rows = np.arange(num_examples)
    order = np.argsort(-logits, axis=1)
    other = order[rows, rank]
    rows, other, label = rows[~keep], other[~keep], labels[~keep]
    swapped = logits[rows, label].copy()
    logits[rows, label] = logits[rows, other]
    logits[rows, other] = swapped
    return labels, logits


def top_k_fractions(labels, logits, ks):
    target = logits[np.arange(len(labels)), labels]
    rank = (logits > target[:, None]).sum(axis=1)
    return {k: float((rank < k).mean()) for k in ks}


def interleaved(functions, args, repeats, warmup):
    """Median ms per call of each function (fetching its output), with
    the calls interleaved and their order alternating each round."""
    for function in functions.values():
        for _ in range(1 + warmup):
            function(*args).numpy()
    times = {name: [] for name in functions}
    for repeat in range(repeats):
        names = list(functions) if repeat % 2 == 0 else list(functions)[::-1]
        for name in names:
            start = time.perf_counter()
            functions[name](*args).numpy()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(t) for name, t in times.items()}, times


def updates(ks):
    """tf.functions updating ours and Keras' set; each returns a state
    variable read after the updates, so fetching it waits for them."""
    ours = metrics.TopKAccuracies(ks=ks, count_ties=_COUNT_TIES.value)
    builtin = [keras.metrics.SparseTopKCategoricalAccuracy(k=k) for k in ks]

    @tf.function
    def update_ours(y, x):
        ours.update_state(y, x)
        return tf.identity(ours.variables[0])

    @tf.function
    def update_keras(y, x):
        for metric in builtin:
            metric.update_state(y, x)
        return tf.add_n([tf.identity(m.variables[0]) for m in builtin])

    return ours, builtin, {"ours": update_ours, "keras": update_keras}


def compare(labels, logits, ks, repeats, warmup):
    """Median update ms of ours and Keras' set, plus their results."""
    ours, builtin, functions = updates(ks)
    medians, times = interleaved(functions, (labels, logits), repeats, warmup)
    logging.info(
        "ks=%s ours ms=%s keras ms=%s",
        ks,
        [round(t, 1) for t in times["ours"]],
        [round(t, 1) for t in times["keras"]],
    )
    ours_result = {int(k[3:]): float(v) for k, v in ours.result().items()}
    keras_result = {k: float(m.result()) for k, m in zip(ks, builtin)}
    return medians, ours_result, keras_result


def forward_pass_share(batch_size, repeats):
    """Median ms of a MobileNet forward pass and of one metric update on
    its outputs (ours and Keras' set, ks=(1, 5)), interleaved."""
    model = keras.applications.MobileNet(alpha=0.75, weights=None)
    rng = np.random.default_rng(_SEED.value)
    images = tf.constant(rng.random((batch_size, 224, 224, 3), np.float32))
    forward = tf.function(lambda x: model(x, training=False))
    outputs = forward(images)
    labels = tf.constant(rng.integers(0, 1000, batch_size).astype(np.int32))
    _, _, functions = updates((1, 5))
    functions["forward"] = lambda y, x: forward(images)
    medians, _ = interleaved(functions, (labels, outputs), repeats, 2)
    return medians


def main(argv):
    del argv
    num_examples, num_classes = _NUM_EXAMPLES.value, _NUM_CLASSES.value
    repeats, warmup = _REPEATS.value, _WARMUP.value
    scenarios = {"random": random_logits, "trained": trained_logits}
    rows = []
    for scenario, make in scenarios.items():
        labels_np, logits_np = make(num_examples, num_classes, _SEED.value)
        labels = tf.constant(labels_np)
        logits = tf.constant(logits_np)
        for ks in KS_SETS:
            reference = top_k_fractions(labels_np, logits_np, ks)
            medians, ours, builtin = compare(
                labels, logits, ks, repeats, warmup
            )
            for k in ks:
                # Same counts as Keras and NumPy, or the timing is moot.
                np.testing.assert_allclose(ours[k], reference[k], atol=1e-6)
                np.testing.assert_allclose(builtin[k], reference[k], atol=1e-6)
            rows.append(
                (
                    scenario,
                    ks,
                    reference[max(ks)],
                    medians["ours"],
                    medians["keras"],
                )
            )
    settings = "count_ties=True" if _COUNT_TIES.value else "default settings"
    print(
        f"Update time, {num_examples} x {num_classes} float32 logits, "
        f"median of {repeats} interleaved repetitions, inside tf.function, "
        f"TopKAccuracies with {settings} "
        f"(TF {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs):"
    )
    print(
        f"{'scenario':<9} {'ks':<20} {'in top max(k)':>13} {'ours ms':>9} "
        f"{'keras ms':>9} {'keras/ours':>10}"
    )
    for scenario, ks, in_top, ours_ms, keras_ms in rows:
        print(
            f"{scenario:<9} {str(ks):<20} {in_top:>13.1%} {ours_ms:>9.1f} "
            f"{keras_ms:>9.1f} {keras_ms / ours_ms:>10.2f}"
        )
    batch_size = _FORWARD_BATCH.value
    if batch_size:
        medians = forward_pass_share(batch_size, repeats)
        print(
            f"MobileNet alpha 0.75 forward pass, {batch_size} x 224 x 224: "
            f"{medians['forward']:.1f} ms; one update on its [{batch_size}, "
            f"1000] outputs, ks=(1, 5): ours {medians['ours']:.2f} ms "
            f"({medians['ours'] / medians['forward']:.2%} of the pass), "
            f"Keras {medians['keras']:.2f} ms "
            f"({medians['keras'] / medians['forward']:.2%})"
        )


if __name__ == "__main__":
    app.run(main)
