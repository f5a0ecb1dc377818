"""Evaluation input pipelines that count every example exactly once.

`build(source, ...)` returns `(dataset, num_examples)` for four sources:

- `"files"`: a flat folder of images plus a labels file, either the ILSVRC2012
  validation layout (`ILSVRC2012_val_00000001.JPEG`, ... and a file with one
  synset or class index per line, line i for image i; when no labels file is
  given the one shipped by tensorflow-datasets is used) or a TSV of
  `<file>\\t<label>[\\t...]` lines, in that order.
- `"folder"`: one subfolder per class. WordNet synset names (`n01440764`)
  map to the standard 1000 ImageNet indices (sorted synsets); other names
  map in sorted order, and the mapping is logged.
- `"tfrecord"`: a glob (or folder) of shards of `tf.train.Example` in the
  standard ImageNet layout (`image/encoded`, `image/class/label`, 1-based).
- `"tfds"`: an already prepared tensorflow-datasets dataset.

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

import dataclasses
import os
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tf_topk import distribute, preprocessing

SOURCES = ("files", "folder", "tfds", "tfrecord")
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
ILSVRC_VAL_PATTERN = re.compile(r"^ILSVRC2012_val_(\d{8})\.[A-Za-z]+$")
SYNSET_PATTERN = re.compile(r"^n\d{8}$")
DEFAULT_TFRECORD_IMAGE_KEY = "image/encoded"
DEFAULT_TFRECORD_LABEL_KEY = "image/class/label"
_DEFAULT_LABEL_OFFSET = {"files": 0, "folder": 0, "tfds": 0, "tfrecord": 1}


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What `build` read, for logs and results files.

    Attributes:
        source: one of `SOURCES`.
        location: the path, glob or `name:split` read.
        num_examples: examples the dataset yields (skipped ones excluded).
        label_mapping: how labels were obtained, e.g. `"imagenet_synsets"`
            (standard 1000-class indices), `"sorted_names"`, `"indices"`.
        class_names: class name of each label index where the source names
            classes (folder names, tfds class names), else empty.
        skipped: corrupt or unreadable files left out (`skip_corrupt=True`).
        multi_label: labels are multi-hot rows (ImageNet-ReaL).
    """

    source: str
    location: str
    num_examples: int
    label_mapping: str
    class_names: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    multi_label: bool = False

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _Records:
    """Encoded images and labels of one source, before decoding."""

    dataset: tf.data.Dataset  # (encoded bytes, label)
    num_examples: int
    name_of: object  # int64 index tensor -> string tensor naming the example
    info: SourceInfo
    # Image paths and labels, for sources read file by file (files,
    # folder): a shard or a skip pass then rebuilds the dataset from the
    # paths it keeps and never reads the others.
    files: tuple[str, ...] | None = None
    labels: tuple[int, ...] | None = None


def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 synsets in sorted order (index = class index).

    Read offline from the list tensorflow-datasets ships with its
    `imagenet2012` builder.
    """
    return tuple(_read_lines(_tfds_resource("labels.txt")))


def imagenet_validation_labels() -> tuple[str, ...]:
    """The 50,000 ILSVRC2012 validation synsets; line i is image i + 1."""
    return tuple(_read_lines(_tfds_resource("validation_labels.txt")))


def _tfds_resource(name: str) -> str:
    import tensorflow_datasets as tfds

    return os.fspath(tfds.core.tfds_path(f"datasets/imagenet2012/{name}"))


def _read_lines(path: str) -> list[str]:
    with tf.io.gfile.GFile(path) as f:
        return [line.strip() for line in f.read().splitlines()]


def _check_exists(path, argument: str) -> str:
    if path is None:
        raise ValueError(
            f"Argument `{argument}` is required for this source. "
            f"Received: {argument}=None"
        )
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"Argument `{argument}` names a path that does not exist. "
            f"Received: {argument}={path!r}"
        )
    return path


def _check_dir(path, argument: str) -> str:
    path = _check_exists(path, argument)
    if not tf.io.gfile.isdir(path):
        raise ValueError(
            f"Argument `{argument}` must be a directory. "
            f"Received: {argument}={path!r}"
        )
    return path


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _check_label(label: int, num_classes: int, where: str, raw) -> None:
    if not 0 <= label < num_classes:
        raise ValueError(
            f"Label {raw!r} of {where} is outside the class range: after "
            f"the label offset it is {label}, not in [0, {num_classes}). "
            "Check `label_offset` and `num_classes`."
        )


def _path_namer(names: Sequence[str]):
    table = tf.constant(list(names), dtype=tf.string)
    return lambda index: tf.gather(table, index)


def _parse_label(
    token: str, *, synsets: dict, label_offset: int, where: str
) -> int:
    if SYNSET_PATTERN.match(token):
        if token not in synsets:
            raise ValueError(
                f"Label {token!r} of {where} is not one of the 1000 "
                "ILSVRC2012 synsets."
            )
        return synsets[token]
    try:
        return int(token) - label_offset
    except ValueError:
        raise ValueError(
            f"Label {token!r} of {where} is neither a WordNet synset "
            "(n01440764) nor an integer class index."
        ) from None


def _files_records(
    path, labels_file, *, label_offset: int, num_classes: int
) -> _Records:
    path = _check_dir(path, "path")
    names = sorted(tf.io.gfile.listdir(path))
    synsets = {s: i for i, s in enumerate(imagenet_synsets())}
    if labels_file is None:
        ilsvrc = [n for n in names if ILSVRC_VAL_PATTERN.match(n)]
        if not ilsvrc:
            raise ValueError(
                "Argument `labels_file` is required for source='files' "
                "unless the folder holds ILSVRC2012 validation images "
                "(ILSVRC2012_val_00000001.JPEG ...). Received: "
                f"labels_file=None for path={path!r}"
            )
        labels_file = _tfds_resource("validation_labels.txt")
        logging.info("Using the ILSVRC2012 validation labels %s", labels_file)
    labels_file = _check_exists(labels_file, "labels_file")
    lines = _read_lines(labels_file)
    files, labels = [], []
    if any("\t" in line for line in lines):
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            fields = line.split("\t")
            where = f"{labels_file}:{number}"
            if len(fields) < 2:
                raise ValueError(
                    f"Line {where} must be '<file>\\t<label>'. "
                    f"Received: {line!r}"
                )
            file = os.path.join(path, fields[0])
            if not tf.io.gfile.exists(file):
                raise FileNotFoundError(
                    f"File {file!r} listed at {where} does not exist."
                )
            label = _parse_label(
                fields[1].strip(),
                synsets=synsets,
                label_offset=label_offset,
                where=f"{file!r} ({where})",
            )
            _check_label(label, num_classes, f"{file!r} ({where})", fields[1])
            files.append(file)
            labels.append(label)
        mapping = "tsv"
    else:
        for name in names:
            match = ILSVRC_VAL_PATTERN.match(name)
            if not match:
                if _is_image(name):
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
                    f"Image {file!r} is number {number} but labels file "
                    f"{labels_file!r} has no label on line {number} "
                    f"({len(lines)} lines)."
                )
            where = f"{file!r} ({labels_file}:{number})"
            raw = lines[number - 1]
            label = _parse_label(
                raw, synsets=synsets, label_offset=label_offset, where=where
            )
            _check_label(label, num_classes, where, raw)
            files.append(file)
            labels.append(label)
        mapping = "ilsvrc_lines"
    info = SourceInfo(
        source="files",
        location=path,
        num_examples=len(files),
        label_mapping=mapping,
    )
    return _path_records(files, labels, info)


def _path_records(files, labels, info: SourceInfo) -> _Records:
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files, tf.string), tf.constant(labels, tf.int32))
    ).map(
        lambda file, label: (tf.io.read_file(file), label),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return _Records(
        dataset=dataset,
        num_examples=len(files),
        name_of=_path_namer(files),
        info=info,
        files=tuple(files),
        labels=tuple(int(label) for label in labels),
    )


def _folder_records(path, *, num_classes: int) -> _Records:
    path = _check_dir(path, "path")
    classes = sorted(
        name
        for name in tf.io.gfile.listdir(path)
        if tf.io.gfile.isdir(os.path.join(path, name))
    )
    classes = [name.rstrip("/") for name in classes]
    if not classes:
        raise ValueError(
            f"Folder {path!r} has no class subfolders. The `folder` source "
            "needs one subfolder of images per class."
        )
    synsets = {s: i for i, s in enumerate(imagenet_synsets())}
    if all(name in synsets for name in classes):
        index = {name: synsets[name] for name in classes}
        mapping = "imagenet_synsets"
        class_names = imagenet_synsets()
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
        _check_label(index[name], num_classes, f"folder {folder!r}", name)
        for file in sorted(tf.io.gfile.listdir(folder)):
            if _is_image(file):
                files.append(os.path.join(folder, file))
                labels.append(index[name])
    if not files:
        raise ValueError(
            f"Folder {path!r} has class subfolders but no images "
            f"(extensions {list(IMAGE_EXTENSIONS)})."
        )
    info = SourceInfo(
        source="folder",
        location=path,
        num_examples=len(files),
        label_mapping=mapping,
        class_names=class_names,
    )
    logging.info(
        "Folder %s: %d images in %d classes, labels by %s.",
        path,
        len(files),
        len(classes),
        mapping,
    )
    return _path_records(files, labels, info)


def _tfrecord_files(path) -> list[str]:
    if path is None:
        raise ValueError(
            "Argument `path` is required for source='tfrecord' (a glob of "
            "shards or a folder). Received: path=None"
        )
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        files = [
            os.path.join(path, name)
            for name in tf.io.gfile.listdir(path)
            if not name.startswith(".")
            and not tf.io.gfile.isdir(os.path.join(path, name))
        ]
    else:
        files = tf.io.gfile.glob(path)
    if not files:
        raise FileNotFoundError(
            "Argument `path` matches no TFRecord files. "
            f"Received: path={path!r}"
        )
    return sorted(files)


def _tfrecord_records(
    path,
    *,
    image_key: str,
    label_key: str,
    label_offset: int,
    num_classes: int,
) -> _Records:
    files = _tfrecord_files(path)
    label_spec = {label_key: tf.io.FixedLenFeature([], tf.int64)}
    # One pass over labels only, to count exactly and check the label range
    # before any image is decoded.
    counts, all_labels = [], []
    for file in files:
        labels = np.concatenate(
            [np.zeros([0], np.int64)]
            + [
                batch[label_key]
                for batch in tf.data.TFRecordDataset(file)
                .batch(4096)
                .map(lambda records: tf.io.parse_example(records, label_spec))
                .as_numpy_iterator()
            ]
        )
        bad = np.flatnonzero(
            (labels - label_offset < 0) | (labels - label_offset >= num_classes)
        )
        if bad.size:
            record = int(bad[0])
            _check_label(
                int(labels[record]) - label_offset,
                num_classes,
                f"{file!r} record {record}",
                int(labels[record]),
            )
        counts.append(len(labels))
        all_labels.append(labels)
    num_examples = int(sum(counts))
    starts = tf.constant(np.cumsum([0] + counts[:-1]), tf.int64)
    ends = tf.constant(np.cumsum(counts), tf.int64)
    file_table = tf.constant(files, tf.string)

    def name_of(index):
        shard = tf.searchsorted(ends, [index], side="right")[0]
        return tf.strings.join(
            [
                tf.gather(file_table, shard),
                " record ",
                tf.strings.as_string(index - tf.gather(starts, shard)),
            ]
        )

    spec = {
        image_key: tf.io.FixedLenFeature([], tf.string),
        label_key: tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        label = tf.cast(example[label_key] - label_offset, tf.int32)
        return example[image_key], label

    dataset = tf.data.TFRecordDataset(files, buffer_size=8 << 20).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    info = SourceInfo(
        source="tfrecord",
        location=os.fspath(path),
        num_examples=num_examples,
        label_mapping="indices",
    )
    logging.info(
        "TFRecords %s: %d examples in %d shards, label offset %d.",
        path,
        num_examples,
        len(files),
        label_offset,
    )
    return _Records(
        dataset=dataset, num_examples=num_examples, name_of=name_of, info=info
    )


def _tfds_records(
    name: str,
    split: str,
    *,
    data_dir,
    image_key: str | None,
    label_key: str | None,
    labels_file,
    label_offset: int,
    num_classes: int,
) -> _Records:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"tfds dataset {name!r} is not prepared in "
            f"{builder.data_dir!r}. Prepare it once with "
            f"`tfds.builder({name!r}, data_dir=...).download_and_prepare("
            "download_config=tfds.download.DownloadConfig(manual_dir=...))` "
            "(for imagenet2012 the manual dir holds ILSVRC2012_img_val.tar; "
            "downloadable sets such as imagenet_v2 need no manual dir), "
            "or pass `data_dir=` where it is prepared."
        )
    features = builder.info.features
    supervised = builder.info.supervised_keys or ("image", "label")
    image_key = image_key or supervised[0]
    label_key = label_key or supervised[1]
    for argument, key in (("image_key", image_key), ("label_key", label_key)):
        if key not in features:
            raise ValueError(
                f"Argument `{argument}` must be a feature of {name!r}: "
                f"{sorted(features.keys())}. Received: {argument}={key!r}"
            )
    try:
        num_examples = int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError) as e:
        raise ValueError(
            f"Argument `split` must be a split of {name!r}: "
            f"{sorted(builder.info.splits.keys())}. Received: split={split!r}"
        ) from e
    if num_examples == 0:
        raise ValueError(f"tfds split {name}:{split} has no examples.")
    label_feature = features[label_key]
    multi_label = isinstance(label_feature, tfds.features.Sequence)
    class_label = label_feature.feature if multi_label else label_feature
    if not isinstance(class_label, tfds.features.ClassLabel):
        raise ValueError(
            f"Feature {label_key!r} of {name!r} must be a ClassLabel or a "
            f"Sequence of ClassLabel. Received: {label_feature!r}"
        )
    class_names = tuple(class_label.names)
    mapping = "indices"
    to_standard = None
    synsets = imagenet_synsets()
    if (
        num_classes == len(synsets)
        and class_names != synsets
        and class_names
        and all(c in synsets for c in class_names)
    ):
        # e.g. imagenette: 10 synsets that index into the 1000 classes.
        position = {s: i for i, s in enumerate(synsets)}
        to_standard = tf.constant(
            [position[c] + label_offset for c in class_names], tf.int64
        )
        mapping = "imagenet_synsets"
        largest = max(position[c] for c in class_names)
        _check_label(largest, num_classes, f"{name}:{split}", class_names)
    else:
        largest = class_label.num_classes - 1 - label_offset
        _check_label(
            largest,
            num_classes,
            f"{name}:{split} (its {class_label.num_classes} classes)",
            class_label.num_classes - 1,
        )
    by_file = None
    if (
        labels_file is None
        and name == "imagenet2012"
        and split.startswith("validation")
        and label_key == "label"
        and "file_name" in features
    ):
        # tfds' builder labels the validation tar by position (the i-th
        # sorted file gets line i of validation_labels.txt): right for the
        # full 50,000-image tar only. Labels by file name are right for
        # any subset too.
        labels_file = _tfds_resource("validation_labels.txt")
        logging.info(
            "Labelling %s:%s by file name from %s.", name, split, labels_file
        )
    if labels_file is not None:
        if multi_label or "file_name" not in features:
            raise ValueError(
                "Argument `labels_file` works for the tfds source only with "
                "single-label ILSVRC2012 validation data that has a "
                f"'file_name' feature. Received: labels_file={labels_file!r} "
                f"for {name!r}"
            )
        by_file = _label_table(labels_file, label_offset, num_classes)
    read_config = tfds.ReadConfig(
        shuffle_seed=0, interleave_cycle_length=1, add_tfds_id=False
    )
    read_config.options.deterministic = True
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=False,
        read_config=read_config,
        decoders={image_key: tfds.decode.SkipDecoding()},
    )

    def select(example):
        label = tf.cast(example[label_key], tf.int64)
        if to_standard is not None:
            label = tf.gather(to_standard, label)
        if by_file is not None:
            number = tf.strings.to_number(
                tf.strings.regex_replace(
                    example["file_name"], r"^.*_val_(\d+)\.[A-Za-z]+$", r"\1"
                ),
                tf.int64,
            )
            label = tf.gather(by_file, number - 1) + label_offset
        label = label - label_offset
        if multi_label:
            label = tf.minimum(
                tf.reduce_sum(tf.one_hot(label, num_classes), axis=0), 1.0
            )
            label = tf.ensure_shape(label, [num_classes])
        else:
            label = tf.cast(label, tf.int32)
        return example[image_key], label

    dataset = dataset.map(
        select, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    location = f"{name}:{split}"
    info = SourceInfo(
        source="tfds",
        location=location,
        num_examples=num_examples,
        label_mapping="labels_file" if by_file is not None else mapping,
        class_names=class_names,
        multi_label=multi_label,
    )
    logging.info(
        "tfds %s from %s: %d examples.",
        location,
        builder.data_dir,
        num_examples,
    )
    return _Records(
        dataset=dataset,
        num_examples=num_examples,
        name_of=lambda index: tf.strings.join(
            [location, " example ", tf.strings.as_string(index)]
        ),
        info=info,
    )


def _label_table(labels_file, label_offset: int, num_classes: int):
    """ILSVRC line-per-image labels as 0-based int64 indices."""
    labels_file = _check_exists(labels_file, "labels_file")
    synsets = {s: i for i, s in enumerate(imagenet_synsets())}
    labels = []
    for number, raw in enumerate(_read_lines(labels_file), 1):
        where = f"{labels_file}:{number}"
        label = _parse_label(
            raw, synsets=synsets, label_offset=label_offset, where=where
        )
        _check_label(label, num_classes, where, raw)
        labels.append(label)
    return tf.constant(labels, tf.int64)


def _check_options(preprocess, kwargs) -> tuple[tuple, bool]:
    """(tuple of Options, whether images are a tuple)."""
    if preprocess is None:
        return (preprocessing.Options(**kwargs),), False
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


def _scan_corrupt(records: _Records) -> np.ndarray:
    """Indices of examples whose image does not decode."""

    def decodes(index, example):
        encoded, _ = example
        image = preprocessing.decode_image(encoded)
        return index, tf.shape(image)[0]

    decoded = (
        records.dataset.enumerate()
        .map(decodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
        .map(lambda index, _: index)
        .batch(4096)
    )
    ok = np.zeros(records.num_examples, dtype=bool)
    for batch in decoded.as_numpy_iterator():
        ok[batch] = True
    return np.flatnonzero(~ok)


def _without(records: _Records, bad: np.ndarray) -> _Records:
    """The records minus the examples at indices `bad`."""
    keep = np.ones(records.num_examples, dtype=bool)
    keep[bad] = False
    kept = np.flatnonzero(keep)
    skipped = tuple(
        s.decode() for s in records.name_of(tf.constant(bad, tf.int64)).numpy()
    )
    info = dataclasses.replace(
        records.info, num_examples=len(kept), skipped=skipped
    )
    if records.files is not None:
        return _path_records(
            [records.files[i] for i in kept],
            [records.labels[i] for i in kept],
            info,
        )
    keep_table = tf.constant(keep)
    dataset = (
        records.dataset.enumerate()
        .filter(lambda index, _: tf.gather(keep_table, index))
        .map(lambda _, example: example)
    )
    kept_table = tf.constant(kept, tf.int64)
    original = records.name_of
    return dataclasses.replace(
        records,
        dataset=dataset,
        num_examples=len(kept),
        name_of=lambda index: original(tf.gather(kept_table, index)),
        info=info,
    )


def _shard(records: _Records, num_shards: int, index: int) -> _Records:
    """Examples index, index + num_shards, ... of `records` (info unchanged).

    File-by-file sources read only the shard's files; the others read every
    record (cheap) and keep the shard's before any decoding.
    """
    if num_shards == 1:
        return records
    count = distribute.shard_size(records.num_examples, num_shards, index)
    if records.files is not None:
        shard = _path_records(
            records.files[index::num_shards],
            records.labels[index::num_shards],
            records.info,
        )
        return dataclasses.replace(shard, num_examples=count)
    original = records.name_of
    return dataclasses.replace(
        records,
        dataset=records.dataset.shard(num_shards, index),
        num_examples=count,
        name_of=lambda i: original(i * num_shards + index),
        files=None,
        labels=None,
    )


def _batched(
    records: _Records,
    options: tuple,
    as_tuple: bool,
    batch_size: int,
) -> tf.data.Dataset:
    num_examples = records.num_examples

    def decode(index, example):
        encoded, label = example
        images = tuple(
            preprocessing.decode_eval_image(encoded, o) for o in options
        )
        return index, images, label

    dataset = (
        records.dataset.enumerate()
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
    )
    # A failed decode drops its element above; a sentinel after the last
    # example lets the check below see a gap anywhere, the end included, and
    # name the file instead of silently evaluating fewer examples.
    spec = dataset.element_spec
    sentinel = tf.data.Dataset.from_tensors(
        (
            tf.constant(num_examples, tf.int64),
            tuple(tf.zeros(s.shape, s.dtype) for s in spec[1]),
            tf.zeros(spec[2].shape, spec[2].dtype),
        )
    )
    name_of = records.name_of

    def check(expected, element):
        index = element[0]
        message = tf.strings.join(
            [
                "Could not read or decode image ",
                name_of(tf.minimum(expected, num_examples - 1)),
                " (corrupt, truncated or not an image). Fix or remove it, "
                "or pass skip_corrupt=True to leave it out (skipped files "
                "are listed and counted).",
            ]
        )
        with tf.control_dependencies(
            [tf.debugging.Assert(tf.equal(index, expected), [message])]
        ):
            return index + 1, (tf.identity(index), element[1], element[2])

    if num_examples == 0:
        # An empty shard (fewer examples than shards): nothing to check.
        return (
            dataset.take(0)
            .map(
                lambda _, images, label: (
                    images if as_tuple else images[0],
                    label,
                )
            )
            .batch(batch_size)
        )
    dataset = (
        dataset.concatenate(sentinel)
        .scan(tf.constant(0, tf.int64), check)
        .filter(lambda index, images, label: index < num_examples)
        .map(
            lambda index, images, label: (
                images if as_tuple else images[0],
                label,
            )
        )
        .batch(batch_size, drop_remainder=False)
        .prefetch(tf.data.AUTOTUNE)
    )
    options_ = tf.data.Options()
    options_.deterministic = True
    return dataset.with_options(options_)


def build_with_info(
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
    image_size: int = 224,
    crop_fraction: float = 0.875,
    interpolation: str = "bilinear",
    antialias: bool = True,
    crop_mode: str = "resize_then_crop",
    num_crops: int = 1,
    image_key: str | None = None,
    label_key: str | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
) -> tuple[tf.data.Dataset, SourceInfo]:
    """Like `build`, but returns a `SourceInfo` instead of the count.

    The info lists the label mapping and, with `skip_corrupt=True`, the
    skipped files; `info.num_examples` is the whole source's count (what
    `build` returns without sharding).
    """
    if source not in SOURCES:
        raise ValueError(
            f"Argument `source` must be one of {list(SOURCES)}. "
            f"Received: source={source!r}"
        )
    for argument, value in (
        ("batch_size", batch_size),
        ("num_classes", num_classes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"Argument `{argument}` must be a positive integer. "
                f"Received: {argument}={value!r}"
            )
    if label_offset is None:
        label_offset = _DEFAULT_LABEL_OFFSET[source]
    if isinstance(label_offset, bool) or not isinstance(label_offset, int):
        raise TypeError(
            "Argument `label_offset` must be an integer or None. "
            f"Received: label_offset={label_offset!r}"
        )
    if (
        isinstance(num_shards, bool)
        or not isinstance(num_shards, int)
        or num_shards < 1
    ):
        raise ValueError(
            "Argument `num_shards` must be a positive integer. "
            f"Received: num_shards={num_shards!r}"
        )
    if (
        isinstance(shard_index, bool)
        or not isinstance(shard_index, int)
        or not 0 <= shard_index < num_shards
    ):
        raise ValueError(
            f"Argument `shard_index` must be an integer in [0, {num_shards}) "
            f"(num_shards={num_shards}). Received: shard_index={shard_index!r}"
        )
    if not isinstance(skip_corrupt, bool):
        raise TypeError(
            "Argument `skip_corrupt` must be a bool. "
            f"Received: skip_corrupt={skip_corrupt!r}"
        )
    options, as_tuple = _check_options(
        preprocess,
        dict(
            image_size=image_size,
            crop_fraction=crop_fraction,
            interpolation=interpolation,
            antialias=antialias,
            crop_mode=crop_mode,
            num_crops=num_crops,
        ),
    )
    if source == "files":
        records = _files_records(
            path,
            labels_file,
            label_offset=label_offset,
            num_classes=num_classes,
        )
    elif source == "folder":
        if label_offset != 0:
            raise ValueError(
                "Argument `label_offset` does not apply to source='folder' "
                "(labels come from folder names). "
                f"Received: label_offset={label_offset}"
            )
        records = _folder_records(path, num_classes=num_classes)
    elif source == "tfrecord":
        records = _tfrecord_records(
            path,
            image_key=image_key or DEFAULT_TFRECORD_IMAGE_KEY,
            label_key=label_key or DEFAULT_TFRECORD_LABEL_KEY,
            label_offset=label_offset,
            num_classes=num_classes,
        )
    else:
        records = _tfds_records(
            name or "imagenet2012",
            split or "validation",
            data_dir=data_dir,
            image_key=image_key,
            label_key=label_key,
            labels_file=labels_file,
            label_offset=label_offset,
            num_classes=num_classes,
        )
    if records.num_examples == 0:
        raise ValueError(
            f"The {source} source at {records.info.location!r} has no examples."
        )
    if skip_corrupt:
        bad = _scan_corrupt(records)
        if bad.size:
            records = _without(records, bad)
            for skipped in records.info.skipped:
                logging.warning("Skipped corrupt image %s", skipped)
            logging.warning(
                "Skipped %d corrupt images of %d; evaluating %d.",
                len(bad),
                len(bad) + records.num_examples,
                records.num_examples,
            )
        if records.num_examples == 0:
            raise ValueError(
                f"Every image of the {source} source at "
                f"{records.info.location!r} is corrupt."
            )
    shard = _shard(records, num_shards, shard_index)
    dataset = _batched(shard, options, as_tuple, batch_size)
    return dataset, records.info


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
    image_size: int = 224,
    crop_fraction: float = 0.875,
    interpolation: str = "bilinear",
    antialias: bool = True,
    crop_mode: str = "resize_then_crop",
    num_crops: int = 1,
    image_key: str | None = None,
    label_key: str | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
) -> tuple[tf.data.Dataset, int]:
    """Builds a batched evaluation dataset and its exact example count.

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
            decoding pass here, logged and listed by `build_with_info`)
            instead of raising an error naming the file.
        preprocess: one `preprocessing.Options`, or a sequence of them (then
            images are a tuple, one batch per Options). Overrides the flat
            preprocessing arguments below.
        image_size: see `preprocessing.Options`.
        crop_fraction: see `preprocessing.Options`.
        interpolation: see `preprocessing.Options`.
        antialias: see `preprocessing.Options`.
        crop_mode: see `preprocessing.Options`.
        num_crops: see `preprocessing.Options`.
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

    Returns:
        `(dataset, num_examples)`: batches of `(images, labels)` and the
        exact number of examples the dataset yields (this shard's).

    Raises:
        FileNotFoundError: a path does not exist, or tfds data is not
            prepared.
        ValueError: bad arguments, no examples, or a label outside
            [0, num_classes).
    """
    dataset, info = build_with_info(
        source,
        path=path,
        labels_file=labels_file,
        name=name,
        split=split,
        data_dir=data_dir,
        batch_size=batch_size,
        label_offset=label_offset,
        num_classes=num_classes,
        skip_corrupt=skip_corrupt,
        preprocess=preprocess,
        image_size=image_size,
        crop_fraction=crop_fraction,
        interpolation=interpolation,
        antialias=antialias,
        crop_mode=crop_mode,
        num_crops=num_crops,
        image_key=image_key,
        label_key=label_key,
        num_shards=num_shards,
        shard_index=shard_index,
    )
    return dataset, distribute.shard_size(
        info.num_examples, num_shards, shard_index
    )
