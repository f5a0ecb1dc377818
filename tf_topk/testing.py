"""Test helpers users can reuse: an oracle model and tiny generated data.

The oracle reads a class from an image's mean intensity. `class_intensity(c,
num_classes)` is the constant pixel value of an image the oracle predicts as
class `c`; resizing, cropping, flipping and JPEG coding keep a constant image
constant, so an evaluation whose labels agree with the painted classes on
exactly n images must report exactly n correct, whatever the preprocessing.
"""

from __future__ import annotations

import keras
import numpy as np


def class_intensity(class_index: int, num_classes: int) -> int:
    """The 0..255 pixel value the oracle reads as `class_index`."""
    if not 0 <= class_index < num_classes:
        raise ValueError(
            f"Argument `class_index` must be in [0, {num_classes}). "
            f"Received: class_index={class_index}"
        )
    return int(round(255.0 * (class_index + 0.5) / num_classes))


def constant_image(
    class_index: int, num_classes: int, *, height: int = 32, width: int = 40
) -> np.ndarray:
    """A uint8 [height, width, 3] image the oracle predicts as `class_index`."""
    value = class_intensity(class_index, num_classes)
    return np.full((height, width, 3), value, dtype=np.uint8)


@keras.saving.register_keras_serializable(package="tf_topk")
class OracleLogits(keras.layers.Layer):
    """Logits `-(mean(x) * scale + shift - intensity_c) ** 2` per class c.

    `scale` and `shift` undo a linear input normalisation (for inputs in
    [-1, 1], scale=127.5 and shift=127.5), so the oracle also reads images
    that went through a `preprocess_input`.
    """

    def __init__(self, num_classes, scale=1.0, shift=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.shift = float(shift)

    def call(self, images):
        images = keras.ops.cast(images, "float32")
        mean = keras.ops.mean(images, axis=(1, 2, 3)) * self.scale + self.shift
        centers = keras.ops.convert_to_tensor(
            [
                class_intensity(c, self.num_classes)
                for c in range(self.num_classes)
            ],
            dtype="float32",
        )
        return -keras.ops.square(mean[:, None] - centers[None, :])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, scale=self.scale, shift=self.shift
        )
        return config


def oracle_model(
    num_classes: int,
    *,
    image_size: int | None = None,
    scale: float = 1.0,
    shift: float = 0.0,
    softmax: bool = False,
) -> keras.Model:
    """A Keras model whose prediction is the class painted into the image.

    Args:
        num_classes: number of output classes.
        image_size: static square input size, or None for any size.
        scale: multiplies the mean input before matching (see OracleLogits).
        shift: added to the scaled mean input before matching.
        softmax: end in a softmax (probabilities) instead of logits.

    Returns:
        A `keras.Model` mapping [B, H, W, 3] images to [B, num_classes].
    """
    inputs = keras.Input(shape=(image_size, image_size, 3))
    outputs = OracleLogits(num_classes, scale=scale, shift=shift)(inputs)
    if softmax:
        outputs = keras.layers.Softmax()(outputs)
    return keras.Model(inputs, outputs, name="oracle")


def oracle_labels(
    predicted: np.ndarray, num_correct: int, num_classes: int, *, seed: int = 0
) -> np.ndarray:
    """Labels that agree with `predicted` on exactly the first `num_correct`.

    The other labels are a different class chosen at random (seeded).
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    if not 0 <= num_correct <= len(predicted):
        raise ValueError(
            f"Argument `num_correct` must be in [0, {len(predicted)}]. "
            f"Received: num_correct={num_correct}"
        )
    rng = np.random.default_rng(seed)
    labels = predicted.copy()
    for i in range(num_correct, len(predicted)):
        offset = rng.integers(1, num_classes)
        labels[i] = (predicted[i] + offset) % num_classes
    return labels
