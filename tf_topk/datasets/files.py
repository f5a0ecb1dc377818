"""The `files` source: a flat folder of images and a labels file.

Two labels-file layouts (parsed by `tf_topk.imagenet`):

- The ILSVRC2012 validation layout: images named
  `ILSVRC2012_val_00000001.JPEG`, ... and a file with one synset or class
  index per line, line i for image i. Without a labels file, ILSVRC-named
  images are labelled by the ILSVRC2012 validation ground truth that
  tensorflow-datasets ships: the one rule for this default.
- A TSV of `<file>\\t<label>[\\t...]` lines, read in that order.
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging

from tf_topk import imagenet
from tf_topk.datasets import records


def read(
    path, labels_file, *, label_offset: int, num_classes: int
) -> records.Records:
    """The images of folder `path`, labelled by `labels_file`.

    Args:
        path: the image folder.
        labels_file: a line-per-image ILSVRC labels file or a TSV; None for
            the ILSVRC2012 validation labels (ILSVRC-named images only).
        label_offset: subtracted from integer labels.
        num_classes: labels must lie in [0, num_classes).

    Returns:
        The records, in sorted file order (ILSVRC layout) or TSV order.
    """
    path = records.check_dir(path, "path")
    names = sorted(tf.io.gfile.listdir(path))
    if labels_file is None:
        labels_file = _default_labels_file(path, names)
    labels_file = records.check_exists(labels_file, "labels_file")
    if any("\t" in line for line in imagenet.label_lines(labels_file)):
        files, labels = _tsv(
            path,
            names,
            labels_file,
            label_offset=label_offset,
            num_classes=num_classes,
        )
        mapping = "tsv"
    else:
        files, labels = _ilsvrc_lines(
            path,
            names,
            labels_file,
            label_offset=label_offset,
            num_classes=num_classes,
        )
        mapping = "ilsvrc_lines"
    info = records.SourceInfo(
        source="files",
        location=path,
        num_examples=len(files),
        label_mapping=mapping,
    )
    return records.from_files(files, labels, info)


def _default_labels_file(path: str, names: list[str]) -> str:
    """The ILSVRC2012 ground truth, for a folder of ILSVRC-named images."""
    if not any(imagenet.VALIDATION_FILE_PATTERN.match(n) for n in names):
        raise ValueError(
            "Argument `labels_file` is required for source='files' unless "
            "the images are ILSVRC2012 validation images named "
            "ILSVRC2012_val_00000001.JPEG, ... (none are in "
            f"{path!r}). Pass labels_file= a TSV of '<file>\\t<label>' "
            "lines, one per image. Received: labels_file=None"
        )
    labels_file = imagenet.validation_labels_file()
    logging.info("Using the ILSVRC2012 validation labels %s", labels_file)
    return labels_file


def _tsv(
    path: str,
    names: list[str],
    labels_file: str,
    *,
    label_offset: int,
    num_classes: int,
):
    """(files, labels) of a `<file>\\t<label>` TSV, in its order.

    Every image directly in `path` must be listed: one left out would
    silently shrink the evaluation.
    """
    rows = imagenet.read_tsv_labels(
        labels_file,
        label_offset=label_offset,
        num_classes=num_classes,
        directory=path,
    )
    for row in rows:
        if not tf.io.gfile.exists(row.file):
            raise FileNotFoundError(
                f"File {row.file!r} listed at {labels_file}:{row.line} "
                "does not exist."
            )
    listed = {os.path.normpath(row.file) for row in rows}
    unlisted = [
        name
        for name in names
        if records.is_image(name)
        and os.path.normpath(os.path.join(path, name)) not in listed
    ]
    if unlisted:
        raise ValueError(
            f"Argument `labels_file` must label every image in {path!r}; "
            f"{len(unlisted)} are not listed, e.g. {unlisted[:3]}. Received: "
            f"labels_file={labels_file!r}. Add a '<file>\\t<label>' line "
            "for each, or move them out of the folder."
        )
    return [row.file for row in rows], [row.label for row in rows]


def _ilsvrc_lines(
    path: str,
    names: list[str],
    labels_file: str,
    *,
    label_offset: int,
    num_classes: int,
):
    """(files, labels) of ILSVRC-named images, line i labelling image i.

    Only the lines of the images present are read, so a subset of the
    validation set works with the full 50,000-line file.
    """
    lines = imagenet.label_lines(labels_file)
    files, labels = [], []
    for name in names:
        match = imagenet.VALIDATION_FILE_PATTERN.match(name)
        if not match:
            if records.is_image(name):
                raise ValueError(
                    f"File {name!r} in {path!r} is not named like "
                    "ILSVRC2012_val_%08d.JPEG, so a line-per-image "
                    f"labels file ({labels_file!r}) cannot label it. "
                    "Use a TSV labels file of '<file>\\t<label>' lines."
                )
            continue
        number = int(match.group(1))
        file = os.path.join(path, name)
        if not 1 <= number <= len(lines) or not lines[number - 1]:
            raise ValueError(
                f"Argument `labels_file` has no label for image {file!r}: "
                f"line {number} of the file is "
                f"{'blank' if number <= len(lines) else 'missing'} "
                f"({len(lines)} lines). Received: labels_file="
                f"{labels_file!r}. Pass the ground truth of these images "
                "(line i labels ILSVRC2012_val_%08d.JPEG % i), or remove "
                "the unlabelled images."
            )
        token = lines[number - 1]
        where = f"{file!r} ({labels_file}:{number})"
        label = imagenet.parse_label(
            token, label_offset=label_offset, where=where
        )
        imagenet.check_label(
            label, raw=token, num_classes=num_classes, where=where
        )
        files.append(file)
        labels.append(label)
    return files, labels
