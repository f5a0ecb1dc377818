"""Update time of `TopKAccuracies` against Keras' built-in top-k metrics.

For each set of ks, one `tf_topk.metrics.TopKAccuracies(ks)` is timed against
the equivalent set of `keras.metrics.SparseTopKCategoricalAccuracy(k)` (one
object per k), both updated inside a `tf.function`, on the same tensors, in
interleaved repetitions (the order alternates each round); the medians are
printed with the ratio keras_ms / ours_ms (>= 0.95 is the target: no slower
than Keras while also checking labels, non-finite rows and ties).

Two scenarios, because Keras' cost depends on the data (`tf.math.in_top_k`
stops reading a row once k scores beat the true one) while ours does not
(one fused pass reads every score, as the exact non-finite count needs):

* `random`: normal logits, the true class is in the top 5 for ~0.5% of rows.
* `trained`: logits of a trained-model-like classifier: the true class is
  first for ~76% of rows and in the top 5 for ~90%.

Run: python benchmarks/metrics_bench.py [--num_examples=65536
--num_classes=1000 --repeats=21]
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
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the generated logits.")

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


def compare(labels, logits, ks, repeats, warmup):
    """Median update ms of ours and Keras' set, interleaved, plus results."""
    ours = metrics.TopKAccuracies(ks=ks)
    builtin = [keras.metrics.SparseTopKCategoricalAccuracy(k=k) for k in ks]

    # Each returns a state variable read after the updates, so fetching it
    # waits for all of them.
    @tf.function
    def update_ours(y, x):
        ours.update_state(y, x)
        return tf.identity(ours.variables[0])

    @tf.function
    def update_keras(y, x):
        for metric in builtin:
            metric.update_state(y, x)
        return tf.add_n([tf.identity(m.variables[0]) for m in builtin])

    functions = {"ours": update_ours, "keras": update_keras}
    for function in functions.values():
        for _ in range(1 + warmup):
            function(labels, logits).numpy()
    ours.reset_state()
    for metric in builtin:
        metric.reset_state()

    times = {name: [] for name in functions}
    for repeat in range(repeats):
        names = list(functions) if repeat % 2 == 0 else list(functions)[::-1]
        for name in names:
            start = time.perf_counter()
            functions[name](labels, logits).numpy()
            times[name].append((time.perf_counter() - start) * 1000.0)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ours_result = {int(k[3:]): float(v) for k, v in ours.result().items()}
    keras_result = {k: float(m.result()) for k, m in zip(ks, builtin)}
    return medians, times, ours_result, keras_result


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
            medians, times, ours, builtin = compare(
                labels, logits, ks, repeats, warmup
            )
            for k in ks:
                # Same counts as Keras and NumPy, or the timing is moot.
                np.testing.assert_allclose(ours[k], reference[k], atol=1e-6)
                np.testing.assert_allclose(builtin[k], reference[k], atol=1e-6)
            logging.info(
                "%s ks=%s ours ms=%s keras ms=%s",
                scenario,
                ks,
                [round(t, 1) for t in times["ours"]],
                [round(t, 1) for t in times["keras"]],
            )
            rows.append(
                (
                    scenario,
                    ks,
                    reference[max(ks)],
                    medians["ours"],
                    medians["keras"],
                )
            )
    print(
        f"Update time, {num_examples} x {num_classes} float32 logits, "
        f"median of {repeats} interleaved repetitions, inside tf.function "
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


if __name__ == "__main__":
    app.run(main)
