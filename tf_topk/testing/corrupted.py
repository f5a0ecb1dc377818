"""An ImageNet-C-like tree from real images, with simple TF corruptions.

`write_tree` takes labelled images (e.g. ../shared/assets), crops each as
ImageNet-C was made (shorter side resized to 256, centre 224 x 224 crop),
corrupts it at each severity and writes the JPEGs as the release lays them
out: `ROOT/<corruption>/<severity>/<synset>/<image>.JPEG`. The corruptions
are TF stand-ins for two of the paper's (Gaussian noise of the paper's
standard deviations, brightness shifts in HSV value), for the real-asset
check and the benchmark: not the released images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow as tf

# The paper's parameters per severity 1..5 (Hendrycks & Dietterich 2019,
# make_imagenet_c.py): noise standard deviation, brightness shift.
_GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
CORRUPTIONS = ("gaussian_noise", "brightness")


def centre_crop(encoded: bytes) -> tf.Tensor:
    """float32 [224, 224, 3] in [0, 1]: shorter side 256, centre crop."""
    image = tf.image.decode_jpeg(encoded, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.cast(tf.round(shape * 256.0 / tf.reduce_min(shape)), tf.int32)
    image = tf.image.resize(image, size, antialias=True)
    return tf.image.resize_with_crop_or_pad(image, 224, 224)


def corrupt(
    image: tf.Tensor, corruption: str, severity: int, *, seed: int
) -> tf.Tensor:
    """`image` ([H, W, 3] in [0, 1]) under `corruption` at `severity`."""
    if corruption == "gaussian_noise":
        noise = tf.random.stateless_normal(
            tf.shape(image),
            seed=[seed, severity],
            stddev=_GAUSSIAN_NOISE[severity - 1],
        )
        return tf.clip_by_value(image + noise, 0.0, 1.0)
    if corruption == "brightness":
        hsv = tf.image.rgb_to_hsv(image)
        value = tf.clip_by_value(hsv[..., 2] + _BRIGHTNESS[severity - 1], 0, 1)
        hsv = tf.stack([hsv[..., 0], hsv[..., 1], value], axis=-1)
        return tf.clip_by_value(tf.image.hsv_to_rgb(hsv), 0.0, 1.0)
    raise ValueError(
        f"Argument `corruption` must be one of {list(CORRUPTIONS)}. "
        f"Received: corruption={corruption!r}"
    )


def write_tree(
    root: str,
    images: Sequence[tuple[str, str]],
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
) -> list[str]:
    """Writes every (corruption, severity) cell of `images`.

    Args:
        root: the tree's folder.
        images: (image path, synset) pairs.
        corruptions: names from `CORRUPTIONS`.
        severities: from 1 to 5.

    Returns:
        The paths written, in writing order.
    """
    written = []
    for index, (path, synset) in enumerate(images):
        with open(path, "rb") as f:
            image = centre_crop(f.read())
        name = os.path.splitext(os.path.basename(path))[0] + ".JPEG"
        for corruption in corruptions:
            for severity in severities:
                folder = os.path.join(root, corruption, str(severity), synset)
                os.makedirs(folder, exist_ok=True)
                pixels = corrupt(image, corruption, severity, seed=index)
                encoded = tf.io.encode_jpeg(
                    tf.image.convert_image_dtype(pixels, tf.uint8, True),
                    quality=85,
                )
                target = os.path.join(folder, name)
                tf.io.write_file(target, encoded)
                written.append(target)
    return written
