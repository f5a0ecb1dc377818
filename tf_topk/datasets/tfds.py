"""The `tfds` source: a prepared tensorflow-datasets dataset.

Read in tfds' own deterministic order (files not shuffled, one file at a
time), images left encoded until `build` decodes them. Labels are tfds'
class indices, except:

- class names that are ImageNet synsets (imagenette, ImageNet-A/R) map to
  the standard 1000 indices when `num_classes` is 1000;
- the `imagenet2012` validation split is labelled by file name from the
  ILSVRC2012 ground truth (tfds labels a partial validation tar by
  position, which is wrong for any subset);
- a `Sequence` of `ClassLabel` (ImageNet-ReaL) gives multi-hot rows.

`prepare` downloads and prepares a dataset once, as `tfds.load` does.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import urllib.parse

import tensorflow as tf
from absl import logging

from tf_topk import imagenet
from tf_topk.datasets import records


class DataUnavailableError(RuntimeError):
    """A tfds dataset could not be downloaded or prepared."""


def prepare(
    name: str,
    *,
    data_dir=None,
    download: bool = True,
    manual_dir=None,
) -> None:
    """Downloads and prepares tfds dataset `name` unless it is prepared.

    Args:
        name: the tfds dataset name, e.g. "imagenet2012" or "imagenet_v2".
        data_dir: tfds data directory (default: tfds' own).
        download: prepare a dataset that is not prepared; with False an
            unprepared dataset is left for `build` to explain.
        manual_dir: folder of manually downloaded archives (ILSVRC2012
            needs ILSVRC2012_img_val.tar there).

    Raises:
        ValueError: `name` is not a tfds dataset.
        FileNotFoundError: `manual_dir` is not a folder.
        DataUnavailableError: downloading or preparing failed.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for a bad name.
        raise ValueError(
            f"Argument `name` must name a tfds dataset. Received: "
            f"name={name!r} ({e})"
        ) from e
    if builder.is_prepared() or not download:
        return
    if manual_dir is not None and not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            "Argument `manual_dir` must be a folder. "
            f"Received: manual_dir={manual_dir!r}"
        )
    if manual_dir is None:
        _check_reachable(name, builder)
    logging.info("Preparing tfds dataset %s in %s.", name, builder.data_dir)
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    except Exception as e:  # Network, checksum and manual-data errors.
        raise DataUnavailableError(
            f"Could not download and prepare tfds dataset {name!r} into "
            f"{builder.data_dir!r}: {e}\nWithout internet, prepare it on a "
            "machine with internet and pass its `data_dir`, or evaluate "
            "local data with source='files', 'folder' or 'tfrecord'. "
            "ILSVRC2012 needs its archive ILSVRC2012_img_val.tar in "
            "`manual_dir`."
        ) from e


# Seconds to wait for each download host before calling the data offline:
# tfds itself retries for minutes before it gives up.
REACHABILITY_TIMEOUT_S = 10.0


def _check_reachable(name: str, builder) -> None:
    """Fails fast when none of the dataset's download hosts answers."""
    hosts = sorted(
        {
            urllib.parse.urlparse(url).hostname
            for url in (getattr(builder, "url_infos", None) or {})
        }
        - {None}
    )
    failures = []
    for host in hosts:
        try:
            socket.create_connection(
                (host, 443), timeout=REACHABILITY_TIMEOUT_S
            ).close()
            return
        except OSError as e:
            failures.append(f"{host}: {e}")
    if failures:
        raise DataUnavailableError(
            f"tfds dataset {name!r} is not prepared in {builder.data_dir!r} "
            f"and cannot be downloaded: no download host answers within "
            f"{REACHABILITY_TIMEOUT_S:.0f} s ({'; '.join(failures)}). "
            "Offline, evaluate local data instead (source='files', 'folder' "
            "or 'tfrecord' with `path`; on the command line "
            "--config.data.source=files|folder|tfrecord and "
            "--config.data.path=...), point `data_dir` "
            "(--config.data.data_dir) at a copy prepared on a machine with "
            "internet, or, for ILSVRC2012, put ILSVRC2012_img_val.tar in "
            "`manual_dir` (--config.data.manual_dir)."
        )


@dataclasses.dataclass(frozen=True)
class _LabelSpace:
    """How a tfds label feature maps onto the evaluated label space."""

    class_names: tuple[str, ...]
    multi_label: bool
    mapping: str
    # tfds index -> standard ImageNet index + label_offset, or None.
    to_standard: tf.Tensor | None


def read(
    name: str,
    split: str,
    *,
    data_dir,
    image_key: str | None,
    label_key: str | None,
    labels_file,
    label_offset: int,
    num_classes: int,
) -> records.Records:
    """The examples of split `split` of prepared tfds dataset `name`.

    Args:
        name: the tfds dataset name.
        split: the split, slicing allowed ("validation[:1000]").
        data_dir: tfds data directory (None: tfds' own).
        image_key: the encoded image feature (None: the supervised key).
        label_key: the label feature (None: the supervised key).
        labels_file: an ILSVRC line-per-image file that relabels examples
            by their `file_name` (None: the ILSVRC2012 ground truth for
            imagenet2012 validation, else tfds' labels).
        label_offset: subtracted from labels.
        num_classes: labels must lie in [0, num_classes); the width of
            multi-hot rows.

    Returns:
        The records, in tfds' deterministic order.
    """
    builder = _prepared_builder(name, data_dir)
    features = builder.info.features
    image_key, label_key = _keys(builder, name, image_key, label_key)
    num_examples = _num_examples(builder, name, split)
    space = _label_space(
        name,
        split,
        features,
        label_key,
        label_offset=label_offset,
        num_classes=num_classes,
    )
    by_file = _labels_by_file(
        name,
        split,
        features,
        label_key,
        labels_file=labels_file,
        multi_label=space.multi_label,
        label_offset=label_offset,
        num_classes=num_classes,
    )
    location = f"{name}:{split}"
    logging.info(
        "tfds %s from %s: %d examples.",
        location,
        builder.data_dir,
        num_examples,
    )
    return records.Records(
        dataset=_examples(
            builder,
            split,
            image_key,
            label_key,
            space=space,
            by_file=by_file,
            label_offset=label_offset,
            num_classes=num_classes,
        ),
        num_examples=num_examples,
        name_of=_namer(builder, split, location, num_examples),
        info=records.SourceInfo(
            source="tfds",
            location=location,
            num_examples=num_examples,
            label_mapping="labels_file"
            if by_file is not None
            else space.mapping,
            class_names=space.class_names,
            multi_label=space.multi_label,
        ),
    )


def _namer(builder, split: str, location: str, num_examples: int):
    """Example index -> tfds' own id, `<shard file>__<record>` (the
    `tfds_id` of `ReadConfig(add_tfds_id=True)`), from the split's file
    instructions; `<name>:<split> example <i>` where they do not add up."""
    try:
        instructions = builder.info.splits[split].file_instructions
        ids = [
            f"{os.path.basename(os.fspath(i.filename))}__{i.skip + row}"
            for i in instructions
            for row in range(i.take)
        ]
    except (AttributeError, KeyError, TypeError, ValueError):
        ids = []
    if len(ids) == num_examples:
        table = tf.constant(ids, tf.string)
        return lambda index: tf.gather(table, index)
    return lambda index: tf.strings.join(
        [location, " example ", tf.strings.as_string(index)]
    )


def _prepared_builder(name: str, data_dir):
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
    return builder


def _keys(builder, name: str, image_key, label_key) -> tuple[str, str]:
    """The image and label features, by default the supervised keys."""
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
    return image_key, label_key


def _num_examples(builder, name: str, split: str) -> int:
    """The exact example count of `split` (slices included)."""
    try:
        num_examples = int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError) as e:
        raise ValueError(
            f"Argument `split` must be a split of {name!r}: "
            f"{sorted(builder.info.splits.keys())}. Received: split={split!r}"
        ) from e
    if num_examples == 0:
        raise ValueError(f"tfds split {name}:{split} has no examples.")
    return num_examples


def _label_space(
    name: str,
    split: str,
    features,
    label_key: str,
    *,
    label_offset: int,
    num_classes: int,
) -> _LabelSpace:
    """Checks a label feature's classes against the label space."""
    import tensorflow_datasets as tfds

    location = f"{name}:{split}"
    label_feature = features[label_key]
    multi_label = isinstance(label_feature, tfds.features.Sequence)
    class_label = label_feature.feature if multi_label else label_feature
    if not isinstance(class_label, tfds.features.ClassLabel):
        raise ValueError(
            f"Feature {label_key!r} of {name!r} must be a ClassLabel or a "
            f"Sequence of ClassLabel. Received: {label_feature!r}"
        )
    class_names = tuple(class_label.names)
    synsets = imagenet.synsets()
    if (
        num_classes == len(synsets)
        and class_names != synsets
        and class_names
        and all(c in synsets for c in class_names)
    ):
        # e.g. imagenette: 10 synsets that index into the 1000 classes.
        position = imagenet.synset_index()
        to_standard = tf.constant(
            [position[c] + label_offset for c in class_names], tf.int64
        )
        largest = max(position[c] for c in class_names)
        imagenet.check_label(
            largest, raw=class_names, num_classes=num_classes, where=location
        )
        return _LabelSpace(
            class_names, multi_label, "imagenet_synsets", to_standard
        )
    imagenet.check_label(
        class_label.num_classes - 1 - label_offset,
        raw=class_label.num_classes - 1,
        num_classes=num_classes,
        where=f"{location} (its {class_label.num_classes} classes)",
    )
    return _LabelSpace(class_names, multi_label, "indices", None)


def _labels_by_file(
    name: str,
    split: str,
    features,
    label_key: str,
    *,
    labels_file,
    multi_label: bool,
    label_offset: int,
    num_classes: int,
) -> tf.Tensor | None:
    """0-based labels of ILSVRC image i + 1 (int64), or None.

    tfds' builder labels the imagenet2012 validation tar by position (the
    i-th sorted file gets line i of validation_labels.txt): right for the
    full 50,000-image tar only. Labels by file name are right for any
    subset too, so they are the default there.
    """
    if (
        labels_file is None
        and name == "imagenet2012"
        and split.startswith("validation")
        and label_key == "label"
        and "file_name" in features
    ):
        labels_file = imagenet.validation_labels_file()
        logging.info(
            "Labelling %s:%s by file name from %s.", name, split, labels_file
        )
    if labels_file is None:
        return None
    if multi_label or "file_name" not in features:
        raise ValueError(
            "Argument `labels_file` works for the tfds source only with "
            "single-label ILSVRC2012 validation data that has a "
            f"'file_name' feature. Received: labels_file={labels_file!r} "
            f"for {name!r}"
        )
    labels_file = records.check_exists(labels_file, "labels_file")
    labels = imagenet.read_line_labels(
        labels_file, label_offset=label_offset, num_classes=num_classes
    )
    return tf.constant(labels, tf.int64)


def _examples(
    builder,
    split: str,
    image_key: str,
    label_key: str,
    *,
    space: _LabelSpace,
    by_file: tf.Tensor | None,
    label_offset: int,
    num_classes: int,
) -> tf.data.Dataset:
    """(encoded image, label) pairs in tfds' deterministic order."""
    import tensorflow_datasets as tfds

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
        if space.to_standard is not None:
            label = tf.gather(space.to_standard, label)
        if by_file is not None:
            number = tf.strings.to_number(
                tf.strings.regex_replace(
                    example["file_name"], r"^.*_val_(\d+)\.[A-Za-z]+$", r"\1"
                ),
                tf.int64,
            )
            label = tf.gather(by_file, number - 1) + label_offset
        label = label - label_offset
        if space.multi_label:
            label = tf.minimum(
                tf.reduce_sum(tf.one_hot(label, num_classes), axis=0), 1.0
            )
            label = tf.ensure_shape(label, [num_classes])
        else:
            label = tf.cast(label, tf.int32)
        return example[image_key], label

    return dataset.map(
        select, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
