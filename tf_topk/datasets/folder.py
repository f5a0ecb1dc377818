"""The `folder` source: one subfolder of images per class.

WordNet synset folder names (`n01440764`) map to the standard 1000 ImageNet
indices (sorted synsets); other names map in sorted order, and the mapping
is logged. Images are read class by class, files sorted.
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging

from tf_topk import imagenet
from tf_topk.datasets import records


def read(path, *, num_classes: int) -> records.Records:
    """The images of the class subfolders of `path`.

    Args:
        path: the folder of class folders.
        num_classes: labels must lie in [0, num_classes).

    Returns:
        The records, class folder by class folder, files sorted.
    """
    path = records.check_dir(path, "path")
    classes = sorted(
        name
        for name in tf.io.gfile.listdir(path)
        if tf.io.gfile.isdir(os.path.join(path, name))
    )
    classes = [name.rstrip("/") for name in classes]
    if not classes:
        raise ValueError(
            "Argument `path` must be a folder of class subfolders (one "
            f"subfolder of images per class). Received: path={path!r}, "
            "which has no subfolders. Point it at the folder above the "
            "class folders, or use source='files' for a flat folder."
        )
    synsets = imagenet.synset_index()
    if all(name in synsets for name in classes):
        index = {name: synsets[name] for name in classes}
        mapping = "imagenet_synsets"
        class_names = imagenet.synsets()
    else:
        index = {name: i for i, name in enumerate(classes)}
        mapping = "sorted_names"
        class_names = tuple(classes)
        logging.info(
            "Folder classes are not ILSVRC2012 synsets; labels follow the "
            "sorted folder names: %s",
            ", ".join(f"{i}={name}" for name, i in index.items()),
        )
    files, labels = [], []
    for name in classes:
        folder = os.path.join(path, name)
        imagenet.check_label(
            index[name],
            raw=name,
            num_classes=num_classes,
            where=f"folder {folder!r}",
        )
        for file in sorted(tf.io.gfile.listdir(folder)):
            if records.is_image(file):
                files.append(os.path.join(folder, file))
                labels.append(index[name])
    if not files:
        raise ValueError(
            "Argument `path` must hold images (extensions "
            f"{list(records.IMAGE_EXTENSIONS)}) in its class subfolders. "
            f"Received: path={path!r}, whose {len(classes)} subfolders hold "
            "no image files. Point it at the folder of class folders of "
            "images."
        )
    logging.info(
        "Folder %s: %d images in %d classes, labels by %s.",
        path,
        len(files),
        len(classes),
        mapping,
    )
    info = records.SourceInfo(
        source="folder",
        location=path,
        num_examples=len(files),
        label_mapping=mapping,
        class_names=class_names,
    )
    return records.from_files(files, labels, info)
