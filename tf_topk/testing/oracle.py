"""The oracle: a model that reads a class from an image's mean intensity.

`class_intensity(c, num_classes)` is the constant pixel value of an image the
oracle predicts as class `c`; resizing, cropping, flipping and JPEG coding
keep a constant image constant, so an evaluation whose labels agree with the
painted classes on exactly n images must report exactly n correct, whatever
the preprocessing. Also here: labels that agree on exactly n images, a
ready batched dataset of such images, and a hand-checkable `EvalResult`.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def painted_dataset(
    painted: Sequence[int],
    labels: Sequence[int],
    *,
    num_classes: int,
    batch_size: int = 4,
    ids: Sequence[str] | None = None,
):
    """Batches of images painted as the classes `painted`, labelled `labels`.

    Image i is `constant_image(painted[i], num_classes)`, so the oracle
    predicts `painted[i]` for it whatever `labels[i]` says: labels shifted
    from the paint make, say, 1-based labels with an exact effect.

    Args:
        painted: the class painted into each image.
        labels: each image's label (any integers; stored as int64).
        num_classes: the oracle's number of classes.
        batch_size: the batch size (the last batch may be partial).
        ids: string ids to add after the labels, or None.

    Returns:
        A dataset of (images float32 [B, 32, 40, 3], labels int64 [B][,
        ids]) batches.
    """
    import tensorflow as tf

    images = np.stack(
        [constant_image(int(c), num_classes) for c in painted]
    ).astype(np.float32)
    parts = (images, np.asarray(labels, np.int64))
    if ids is not None:
        parts += (list(ids),)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)


def oracle_dataset(
    num_examples: int = 10,
    num_correct: int = 7,
    *,
    num_classes: int = 5,
    batch_size: int = 4,
    seed: int = 0,
    with_ids: bool = False,
):
    """Painted images the oracle gets exactly `num_correct` top-1 right.

    Image i is painted as class i % num_classes (`constant_image`); the
    first `num_correct` labels agree with the paint, the others are another
    class (`oracle_labels`). With the defaults, 10 examples in batches of
    4, 4 and 2 (a partial last batch) and 7 / 10 top-1 correct for
    `oracle_model(5)`.

    Args:
        num_examples: examples in the dataset.
        num_correct: examples whose label is the painted class.
        num_classes: the oracle's number of classes.
        batch_size: the batch size (the last batch may be partial).
        seed: seeds the wrong labels.
        with_ids: add string ids "img-<i>" after the labels.

    Returns:
        (dataset of (images float32, labels int64[, ids]) batches,
        painted classes [N], labels [N]).
    """
    painted = np.arange(num_examples) % num_classes
    labels = oracle_labels(painted, num_correct, num_classes, seed=seed)
    ids = None
    if with_ids:
        ids = [f"img-{i:02d}" for i in range(num_examples)]
    dataset = painted_dataset(
        painted,
        labels,
        num_classes=num_classes,
        batch_size=batch_size,
        ids=ids,
    )
    return dataset, painted, labels


def eval_result(**overrides):
    """A hand-checkable `EvalResult` for tests of what reads one.

    10 examples, top-1 7 and top-5 9 correct, one tie at top-1, one
    non-finite row, five classes (one with no example), 2 s of wall time
    (0.5 s input, 1.5 s model, 5 images/s); any field can be overridden.
    """
    from tf_topk import results

    fields = dict(
        ks=(1, 5),
        num_examples=10,
        num_scored=10,
        correct={1: 7, 5: 9},
        ties={1: 1, 5: 0},
        nonfinite=1,
        unlabeled=0,
        per_class_correct=(2, 1, 0, 2, 2),
        per_class_count=(2, 2, 0, 3, 3),
        wall_time_s=2.0,
        images_per_s=5.0,
        input_time_s=0.5,
        model_time_s=1.5,
        ties_rule="inclusive",
        metadata={"model": {"name": "oracle"}},
    )
    fields.update(overrides)
    return results.EvalResult(**fields)
