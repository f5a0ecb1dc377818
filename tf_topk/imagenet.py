"""ImageNet (ILSVRC2012) facts: the one copy of the class list and its names.

Index i of the 1000-class label space is the i-th WordNet synset in sorted
order (`n01440764` is class 0): the order of Keras Applications, tfds and
every published figure. The synsets and the 50,000 validation labels are
read offline from the files tensorflow-datasets ships with its
`imagenet2012` builder; the human-readable names from tfds' own list in the
same order.

>>> synsets()[281], class_names()[281]
('n02123045', 'tabby, tabby cat')
"""

from __future__ import annotations

import functools
import os
import re

import tensorflow as tf

NUM_CLASSES = 1000
SYNSET_PATTERN = re.compile(r"^n\d{8}$")
# ILSVRC2012 validation images: ILSVRC2012_val_00000001.JPEG is image 1.
VALIDATION_FILE_PATTERN = re.compile(r"^ILSVRC2012_val_(\d{8})\.[A-Za-z]+$")


def _tfds_resource(name: str) -> str:
    import tensorflow_datasets as tfds

    return os.fspath(tfds.core.tfds_path(f"datasets/imagenet2012/{name}"))


def _read_lines(path: str) -> list[str]:
    with tf.io.gfile.GFile(path) as f:
        return [line.strip() for line in f.read().splitlines() if line.strip()]


@functools.cache
def synsets() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 synsets in sorted order (index = class index)."""
    path = _tfds_resource("labels.txt")
    names = tuple(_read_lines(path))
    if len(names) != NUM_CLASSES or list(names) != sorted(names):
        raise ValueError(
            f"Expected {NUM_CLASSES} sorted synsets in {path}. Received: "
            f"{len(names)} lines; reinstall tensorflow-datasets."
        )
    return names


@functools.cache
def synset_index() -> dict[str, int]:
    """{synset: class index} for the 1000 classes."""
    return {synset: i for i, synset in enumerate(synsets())}


@functools.cache
def class_names() -> tuple[str, ...]:
    """Human-readable names in class order, e.g. 'tabby, tabby cat' (281)."""
    from tensorflow_datasets.datasets.siscore import labels

    names = tuple(labels.IMAGENET_LABELS_LIST)
    if len(names) != NUM_CLASSES:
        raise ValueError(
            f"Expected {NUM_CLASSES} ImageNet class names from "
            f"tensorflow-datasets. Received: {len(names)}"
        )
    return names


@functools.cache
def validation_labels() -> tuple[str, ...]:
    """The 50,000 ILSVRC2012 validation synsets; entry i is image i + 1."""
    return tuple(_read_lines(_tfds_resource("validation_labels.txt")))
