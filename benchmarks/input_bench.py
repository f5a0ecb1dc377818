"""Input pipeline throughput: tf_topk.datasets against Keras' own loader.

Writes generated 500 x 375 JPEGs (the typical ImageNet validation size) in
class folders, then reads them all, in the same run, with
`keras.utils.image_dataset_from_directory` (the baseline: decode + resize to
224 x 224, bilinear without antialias) and with
`tf_topk.datasets.build("folder", ...)`: resize the shorter side to 256 and
take the centre 224 with and without antialias (TensorFlow's antialiased
resize, ScaleAndTranslate, is the costly step), and the fused
decode_and_crop_jpeg path of crop_then_resize. Prints images/s and the ratio
to the baseline.

    python benchmarks/input_bench.py --num_images=512 --repeats=3
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tf_topk import datasets, preprocessing, testing  # noqa: E402

_NUM_IMAGES = flags.DEFINE_integer("num_images", 512, "JPEGs to generate.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 8, "Class folders.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 3, "Timed passes per pipeline; the best one is reported."
)


def images_per_second(dataset, repeats: int) -> float:
    """Best of `repeats` full passes, after one warm-up pass."""
    count = 0
    for images, _ in dataset:
        count += int(images.shape[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for images, _ in dataset:
            images.shape  # noqa: B018 - the batch is materialised.
        best = min(best, time.perf_counter() - start)
    return count / best


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as directory:
        logging.info("Writing %d JPEGs to %s.", _NUM_IMAGES.value, directory)
        testing.write_photo_jpegs(
            directory, _NUM_IMAGES.value, _NUM_CLASSES.value
        )
        pipelines = {
            "keras image_dataset_from_directory": (
                keras.utils.image_dataset_from_directory(
                    directory,
                    batch_size=_BATCH_SIZE.value,
                    image_size=(224, 224),
                    shuffle=False,
                ).prefetch(tf.data.AUTOTUNE)
            ),
            "tf_topk resize_then_crop": datasets.build(
                "folder",
                path=directory,
                batch_size=_BATCH_SIZE.value,
                num_classes=_NUM_CLASSES.value,
                preprocess=preprocessing.Options(),
            )[0],
            "tf_topk resize_then_crop, no antialias": datasets.build(
                "folder",
                path=directory,
                batch_size=_BATCH_SIZE.value,
                num_classes=_NUM_CLASSES.value,
                preprocess=preprocessing.Options(antialias=False),
            )[0],
            "tf_topk crop_then_resize (fused)": datasets.build(
                "folder",
                path=directory,
                batch_size=_BATCH_SIZE.value,
                num_classes=_NUM_CLASSES.value,
                preprocess=preprocessing.Options(crop_mode="crop_then_resize"),
            )[0],
        }
        rates = {
            name: images_per_second(dataset, _REPEATS.value)
            for name, dataset in pipelines.items()
        }
    baseline = next(iter(rates.values()))
    lines = [
        f"{_NUM_IMAGES.value} JPEGs 500x375, batch {_BATCH_SIZE.value}, "
        f"{os.cpu_count()} CPUs, best of {_REPEATS.value}:"
    ]
    for name, rate in rates.items():
        lines.append(
            f"  {name:40s} {rate:8.1f} images/s  {rate / baseline:5.2f}x"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
