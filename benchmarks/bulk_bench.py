"""Decode once: the input time of bulk runs and callback epochs, with and
without the decoded-image cache, measured in the same run.

Writes photo-like 500 x 375 JPEGs in class folders, then:

1. Bulk runs: a bulk command (`tf_topk.cli.run.run` on a config with
   `config.runs`) of three runs of a model so small that the input
   dominates, all at the default 224 preprocessing (resize with antialias,
   centre crop). Prints each run's input time (the loop's wait for the
   input pipeline, results.json `throughput.input_time_s`) and the ratio of
   runs 2 and 3 to run 1, with `config.data.cache=memory` and, as the
   baseline, `none` (and runs 2, 3 cached over uncached). The input time
   is the loop's wait, so it depends on how much decoding overlaps the
   model's steps: the uncached runs' own ratios scatter around 1-3.
2. The Keras callback: `TopKEvaluation` over two epochs of `fit`; prints the
   second epoch's input time over the first's, with `cache="memory"` and
   `"none"`.

    python benchmarks/bulk_bench.py --num_images=256
"""

import importlib.util
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tf_topk import callbacks, datasets, testing  # noqa: E402
from tf_topk.cli import presets, run  # noqa: E402

_NUM_IMAGES = flags.DEFINE_integer("num_images", 256, "JPEGs to generate.")
_NUM_CLASSES = 5
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size.")


def bulk_config(directory: str, cache: str):
    """Three runs of the oracle (cheap: a mean per image) at 224 pixels."""
    config = load_config("smoke").get_config()
    config.data.path = directory
    config.data.batch_size = _BATCH_SIZE.value
    config.data.cache = cache
    config.model.image_size = 224
    config.eval.ks = (1, 5)
    return presets.as_bulk(config, [config.model] * 3)


def load_config(name: str):
    """A config module of configs/ (read by path, as the CLI does)."""
    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "configs",
        f"{name}.py",
    )
    spec = importlib.util.spec_from_file_location(f"config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bulk_input_times(directory: str, cache: str) -> list[float]:
    with tempfile.TemporaryDirectory() as workdir:
        outcome = run.run(bulk_config(directory, cache), workdir)
    return [r.input_time_s for r in outcome.results.values()]


def callback_input_times(directory: str, cache: str) -> list[float]:
    """Input time of the callback's evaluation at epochs 1 and 2."""
    keras.backend.clear_session()
    validation, count = datasets.build(
        "folder",
        path=directory,
        batch_size=_BATCH_SIZE.value,
        num_classes=_NUM_CLASSES,
    )
    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(_NUM_CLASSES)(pooled))
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    evaluator = callbacks.TopKEvaluation(
        validation, expected_num_examples=count, cache=cache
    )
    train = tf.data.Dataset.from_tensors(
        (np.zeros((8, 224, 224, 3), np.float32), np.zeros(8, np.int32))
    )
    model.fit(train, epochs=2, callbacks=[evaluator], verbose=0, shuffle=False)
    return [evaluator.results[epoch].input_time_s for epoch in (1, 2)]


def main_(argv):
    del argv
    logging.set_verbosity(logging.ERROR)
    with tempfile.TemporaryDirectory() as directory:
        testing.write_photo_jpegs(directory, _NUM_IMAGES.value, _NUM_CLASSES)
        bulk = {c: bulk_input_times(directory, c) for c in ("none", "memory")}
        modes = ("none", "memory")
        fit = {c: callback_input_times(directory, c) for c in modes}
    lines = [
        f"{_NUM_IMAGES.value} JPEGs 500x375 -> 224, batch "
        f"{_BATCH_SIZE.value}, {os.cpu_count()} CPUs. Input time (s), "
        "and the ratio to the first run / epoch:"
    ]
    for cache, times in bulk.items():
        first = times[0]
        ratios = ", ".join(f"{t / first:.3f}" for t in times[1:])
        runs = ", ".join(f"{t:.2f}" for t in times)
        lines.append(
            f"  bulk, 3 runs, cache={cache:6s}  runs {runs}  "
            f"runs 2, 3 / run 1: {ratios}"
        )
    later = [c / u for c, u in zip(bulk["memory"][1:], bulk["none"][1:])]
    lines.append(
        "  bulk, runs 2, 3 cached / uncached: "
        + ", ".join(f"{r:.3f}" for r in later)
    )
    for cache, (first, second) in fit.items():
        lines.append(
            f"  callback, cache={cache:6s}     epochs {first:.2f}, "
            f"{second:.2f}  epoch 2 / epoch 1: {second / first:.3f}"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main_)
