"""Evaluation input pipelines that count every example exactly once.

`build(source, ...)` returns `(dataset, num_examples)` for four sources,
one module each:

- `"files"` (`files.py`): a flat folder of images plus a labels file,
  either the ILSVRC2012 validation layout (`ILSVRC2012_val_00000001.JPEG`,
  ... and a file with one synset or class index per line, line i for image
  i; when no labels file is given the one shipped by tensorflow-datasets is
  used) or a TSV of `<file>\\t<label>[\\t...]` lines, in that order.
- `"folder"` (`folder.py`): one subfolder per class. WordNet synset names
  (`n01440764`) map to the standard 1000 ImageNet indices (sorted
  synsets); other names map in sorted order, and the mapping is logged.
- `"tfrecord"` (`tfrecord.py`): a glob (or folder) of shards of
  `tf.train.Example` in the standard ImageNet layout (`image/encoded`,
  `image/class/label`, 1-based).
- `"tfds"` (`tfds.py`): an already prepared tensorflow-datasets dataset
  (`prepare_tfds` prepares one).

Each source yields `records.Records` (encoded images and labels); the
shared steps (corrupt-image scan, per-worker shard) live in `records.py`,
decoding and batching in `batching.py`.

Elements are `(images, labels)`: images float32 [B, S, S, 3] in 0..255 (or
[B, N, S, S, 3] for N crops; a tuple of such batches when `preprocess` is a
sequence of `preprocessing.Options`), labels int32 [B], 0-based, or float32
multi-hot [B, num_classes] for multi-label sets (ImageNet-ReaL). The order is
deterministic, the last batch is partial, nothing repeats.

Labels outside [0, num_classes), missing paths and empty sets raise before any
image is decoded. A corrupt image raises an error naming the file when the
dataset reaches it, or, with `skip_corrupt=True`, is found by a decoding pass
in `build` and left out: listed in the log and in `SourceInfo.skipped`, and
not counted in `num_examples`.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from absl import logging

from tf_topk import distribute, preprocessing
from tf_topk.datasets import batching, files, folder, records, tfds, tfrecord
from tf_topk.datasets.records import IMAGE_EXTENSIONS, SourceInfo
from tf_topk.datasets.tfds import DataUnavailableError
from tf_topk.datasets.tfds import prepare as prepare_tfds

SOURCES = ("files", "folder", "tfds", "tfrecord")
DEFAULT_TFRECORD_IMAGE_KEY = tfrecord.DEFAULT_IMAGE_KEY
DEFAULT_TFRECORD_LABEL_KEY = tfrecord.DEFAULT_LABEL_KEY
# ImageNet TFRecords store 1-based labels; the other sources 0-based ones.
_DEFAULT_LABEL_OFFSET = {"files": 0, "folder": 0, "tfds": 0, "tfrecord": 1}

__all__ = [
    "DEFAULT_TFRECORD_IMAGE_KEY",
    "DEFAULT_TFRECORD_LABEL_KEY",
    "IMAGE_EXTENSIONS",
    "SOURCES",
    "DataUnavailableError",
    "SourceInfo",
    "build",
    "prepare_tfds",
]


def build(
    source: str,
    *,
    path=None,
    labels_file=None,
    name: str | None = None,
    split: str | None = None,
    data_dir=None,
    batch_size: int = 64,
    label_offset: int | None = None,
    num_classes: int = 1000,
    skip_corrupt: bool = False,
    preprocess=None,
    image_key: str | None = None,
    label_key: str | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    with_info: bool = False,
    with_ids: bool = False,
    start: int = 0,
) -> tuple[tf.data.Dataset, int | SourceInfo]:
    """Builds a batched evaluation dataset and its exact example count.

    >>> from tf_topk import preprocessing
    >>> dataset, num_examples = build(  # doctest: +SKIP
    ...     "folder",
    ...     path="/data/imagenet/val",
    ...     preprocess=preprocessing.Options(image_size=160),
    ... )

    Args:
        source: `"files"`, `"folder"`, `"tfds"` or `"tfrecord"`.
        path: image folder (files, folder), or glob / folder of TFRecord
            shards (tfrecord).
        labels_file: for `files`, a line-per-image ILSVRC labels file or a
            `<file>\\t<label>` TSV (default: the ILSVRC2012 validation
            labels, for ILSVRC-named images). For `tfds`, an ILSVRC
            line-per-image file that overrides the labels by `file_name`
            (default for `imagenet2012` validation: the ILSVRC2012 ground
            truth, because tfds labels a partial validation tar by
            position, which is wrong for any subset).
        name: tfds dataset name (default `"imagenet2012"`).
        split: tfds split (default `"validation"`), slicing allowed.
        data_dir: tfds data directory (default: tfds' own).
        batch_size: examples per batch; the last batch is partial.
        label_offset: subtracted from numeric labels: default 1 for
            `tfrecord` (ImageNet TFRecords are 1-based), else 0.
        num_classes: labels must lie in [0, num_classes) after the offset;
            the width of multi-hot labels.
        skip_corrupt: leave out images that do not decode (found by a
            decoding pass here, logged and listed in `SourceInfo.skipped`)
            instead of raising an error naming the file.
        preprocess: how images are resized and cropped: one
            `preprocessing.Options`, or a non-empty sequence of them (then
            images are a tuple, one batch per Options). None means
            `preprocessing.Options()`; `preprocessing.resolve` gives the
            options of a model spec.
        image_key: the encoded image feature (tfrecord default
            `image/encoded`, tfds default its supervised image key).
        label_key: the label feature (tfrecord default `image/class/label`,
            tfds default its supervised label key, e.g. `real_label` for
            `imagenet2012_real`).
        num_shards: split the examples into this many shards (one per
            worker of a multi-worker run; see `tf_topk.evaluate`)...
        shard_index: ...and yield only shard `shard_index`: examples
            shard_index, shard_index + num_shards, ... in source order,
            read and decoded by this shard alone.
        with_info: return the `SourceInfo` instead of the count (as
            `tfds.load(..., with_info=True)` does).
        with_ids: yield `(images, labels, ids)`: each example's id, a
            string stable across runs over the same data (`example_id`).
        start: begin at this example of the (shard's) order, leaving the
            earlier ones out before any decoding: how a resumed evaluation
            skips what its checkpoint counted. The returned count stays
            the whole (shard's) count.

    Returns:
        `(dataset, num_examples)`: batches of `(images, labels)` and the
        exact number of examples the dataset yields (this shard's). With
        `with_info=True`, `(dataset, info)`: `info` lists the label mapping
        and the skipped files, and `info.num_examples` is the whole
        source's count (skipped files excluded), not the shard's.

    Raises:
        FileNotFoundError: a path does not exist, or tfds data is not
            prepared.
        TypeError: an argument of the wrong type (`preprocess`,
            `label_offset`, `skip_corrupt`, `with_info`).
        ValueError: bad arguments, no examples, or a label outside
            [0, num_classes).
    """
    _check_arguments(
        source,
        batch_size=batch_size,
        num_classes=num_classes,
        label_offset=label_offset,
        num_shards=num_shards,
        shard_index=shard_index,
        skip_corrupt=skip_corrupt,
        with_info=with_info,
    )
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(
            "Argument `start` must be a non-negative integer. "
            f"Received: start={start!r}"
        )
    if not isinstance(with_ids, bool):
        raise TypeError(
            "Argument `with_ids` must be a bool. "
            f"Received: with_ids={with_ids!r}"
        )
    if label_offset is None:
        label_offset = _DEFAULT_LABEL_OFFSET[source]
    options, as_tuple = _check_preprocess(preprocess)
    examples = _read(
        source,
        path=path,
        labels_file=labels_file,
        name=name,
        split=split,
        data_dir=data_dir,
        label_offset=label_offset,
        num_classes=num_classes,
        image_key=image_key,
        label_key=label_key,
    )
    if examples.num_examples == 0:
        argument, value = (
            ("split", split) if source == "tfds" else ("path", path)
        )
        raise ValueError(
            f"The {source} source at {examples.info.location!r} has no "
            f"examples. Received: {argument}={value!r}. Pass a `{argument}` "
            "holding at least one example."
        )
    if skip_corrupt:
        examples = _skip_corrupt(examples)
    dataset = batching.batch(
        records.shard(examples, num_shards, shard_index),
        options,
        as_tuple=as_tuple,
        batch_size=batch_size,
        with_ids=with_ids,
        start=start,
    )
    if with_info:
        return dataset, examples.info
    return dataset, distribute.shard_size(
        examples.num_examples, num_shards, shard_index
    )


def _check_arguments(
    source: str,
    *,
    batch_size,
    num_classes,
    label_offset,
    num_shards,
    shard_index,
    skip_corrupt,
    with_info,
) -> None:
    """Checks `build`'s plain arguments before any file is read."""
    if source not in SOURCES:
        raise ValueError(
            f"Argument `source` must be one of {list(SOURCES)}. "
            f"Received: source={source!r}"
        )
    for argument, value in (
        ("batch_size", batch_size),
        ("num_classes", num_classes),
        ("num_shards", num_shards),
    ):
        if not _is_int(value) or value < 1:
            raise ValueError(
                f"Argument `{argument}` must be a positive integer. "
                f"Received: {argument}={value!r}"
            )
    if label_offset is not None and not _is_int(label_offset):
        raise TypeError(
            "Argument `label_offset` must be an integer or None. "
            f"Received: label_offset={label_offset!r}"
        )
    if not _is_int(shard_index) or not 0 <= shard_index < num_shards:
        raise ValueError(
            f"Argument `shard_index` must be an integer in [0, {num_shards}) "
            f"(num_shards={num_shards}). Received: shard_index={shard_index!r}"
        )
    for argument, value in (
        ("skip_corrupt", skip_corrupt),
        ("with_info", with_info),
    ):
        if not isinstance(value, bool):
            raise TypeError(
                f"Argument `{argument}` must be a bool. "
                f"Received: {argument}={value!r}"
            )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_preprocess(
    preprocess,
) -> tuple[tuple[preprocessing.Options, ...], bool]:
    """(the Options, one per image view; whether images are a tuple)."""
    if preprocess is None:
        return (preprocessing.Options(),), False
    if isinstance(preprocess, preprocessing.Options):
        return (preprocess,), False
    if isinstance(preprocess, Sequence) and not isinstance(preprocess, str):
        options = tuple(preprocess)
        if options and all(
            isinstance(o, preprocessing.Options) for o in options
        ):
            return options, True
    raise TypeError(
        "Argument `preprocess` must be a `preprocessing.Options` or a "
        "non-empty sequence of them. "
        f"Received: preprocess={preprocess!r}"
    )


def _read(
    source: str,
    *,
    path,
    labels_file,
    name,
    split,
    data_dir,
    label_offset: int,
    num_classes: int,
    image_key,
    label_key,
) -> records.Records:
    """The encoded examples of `source`."""
    if source == "files":
        return files.read(
            path,
            labels_file,
            label_offset=label_offset,
            num_classes=num_classes,
        )
    if source == "folder":
        if label_offset != 0:
            raise ValueError(
                "Argument `label_offset` does not apply to source='folder' "
                "(labels come from folder names). "
                f"Received: label_offset={label_offset}"
            )
        return folder.read(path, num_classes=num_classes)
    if source == "tfrecord":
        return tfrecord.read(
            path,
            image_key=image_key or tfrecord.DEFAULT_IMAGE_KEY,
            label_key=label_key or tfrecord.DEFAULT_LABEL_KEY,
            label_offset=label_offset,
            num_classes=num_classes,
        )
    return tfds.read(
        name or "imagenet2012",
        split or "validation",
        data_dir=data_dir,
        image_key=image_key,
        label_key=label_key,
        labels_file=labels_file,
        label_offset=label_offset,
        num_classes=num_classes,
    )


def _skip_corrupt(examples: records.Records) -> records.Records:
    """`examples` without the images that do not decode, logged."""
    bad = records.scan_corrupt(examples)
    if bad.size:
        examples = records.without(examples, bad)
        for skipped in examples.info.skipped:
            logging.warning("Skipped corrupt image %s", skipped)
        logging.warning(
            "Skipped %d corrupt images of %d; evaluating %d.",
            len(bad),
            len(bad) + examples.num_examples,
            examples.num_examples,
        )
    if examples.num_examples == 0:
        raise ValueError(
            f"Every image of the {examples.info.source} source at "
            f"{examples.info.location!r} is corrupt. Received: "
            f"skip_corrupt=True and {examples.info.num_skipped} images, none "
            "of which decodes. Check that the files are images (JPEG, PNG, "
            "GIF, BMP) and were copied completely."
        )
    return examples
