"""Helpers shared by the tests of tf_topk.models (models_*_test.py)."""

from __future__ import annotations

from pathlib import Path

import conftest
import keras
import numpy as np
import tensorflow as tf

WEIGHTS = conftest.ASSETS / "weights"
IMAGENET = conftest.ASSETS / "imagenet"


def pixel_model(num_outputs: int, image_size: int, name: str) -> keras.Model:
    """Returns the first `num_outputs` pixel values: hand-made logits."""
    inputs = keras.Input((image_size, image_size, 3))
    flat = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Lambda(lambda x: x[:, :num_outputs])(flat)
    return keras.Model(inputs, outputs, name=name)


def pixels(values: np.ndarray, image_size: int) -> np.ndarray:
    """Writes [B, C] values into [B, S, S, 3] images for `pixel_model`."""
    batch, width = values.shape
    images = np.zeros((batch, image_size * image_size * 3), np.float32)
    images[:, :width] = values
    return images.reshape((batch, image_size, image_size, 3))


def counts(probabilities, labels) -> tuple[int, int]:
    """(top-1, top-5) correct counts, decided by tf.math.in_top_k."""
    probabilities = tf.convert_to_tensor(probabilities, tf.float32)
    labels = tf.convert_to_tensor(labels, tf.int32)
    return tuple(
        int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, probabilities, k),
                                  tf.int32)))
        for k in (1, 5)
    )  # fmt: skip


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def require_assets(test: tf.test.TestCase, *paths: Path) -> None:
    for path in paths:
        if not path.exists():
            test.skipTest(f"Real assets absent: {path} (see ../shared/assets)")


def resize_and_crop(path: Path, size: int = 224) -> tf.Tensor:
    """Shorter side to size / 0.875, centre crop: the assets README way."""
    image = tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3)
    height, width = image.shape[0], image.shape[1]
    scale = round(size / 0.875) / min(height, width)
    new_size = (round(height * scale), round(width * scale))
    image = tf.image.resize(
        tf.cast(image, tf.float32), new_size, method="bilinear", antialias=True
    )
    top = (new_size[0] - size) // 2
    left = (new_size[1] - size) // 2
    return image[top : top + size, left : left + size, :]
