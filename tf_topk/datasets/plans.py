"""`datasets.build` in two steps: `plan` checks the arguments and reads the
source (no decoding); `finish` decodes, caches and batches it.

Apart, so that `datasets.InputCache` can size a cache (`Plan.size_bytes`)
before it chooses where the cache goes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from absl import logging

from tf_topk import preprocessing
from tf_topk.datasets import (
    batching,
    caching,
    files,
    folder,
    records,
    tfds,
    tfrecord,
)

SOURCES = ("files", "folder", "tfds", "tfrecord")
# ImageNet TFRecords store 1-based labels; the other sources 0-based ones.
_DEFAULT_LABEL_OFFSET = {"files": 0, "folder": 0, "tfds": 0, "tfrecord": 1}
# The arguments of `build` that say where and how to read the source.
_READ_ARGUMENTS = (
    "path",
    "labels_file",
    "name",
    "split",
    "data_dir",
    "num_classes",
    "image_key",
    "label_key",
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked source, read but not decoded: what `finish` batches."""

    examples: records.Records  # The whole source (skipped files out).
    shard: records.Records  # This shard's examples.
    options: tuple[preprocessing.Options, ...]
    as_tuple: bool
    batch_size: int
    with_ids: bool
    with_info: bool
    start: int
    # What names a disk cache: the data, its labels, the views, the shard.
    identity: dict

    @property
    def size_bytes(self) -> int:
        """The estimated size of this input's decoded-image cache."""
        remaining = max(self.shard.num_examples - self.start, 0)
        return caching.example_bytes(self.options) * remaining


def plan(source: str, **kwargs) -> Plan:
    """Checks `build`'s arguments and reads the source (no decoding)."""
    _check_arguments(source, **kwargs)
    label_offset = kwargs["label_offset"]
    if label_offset is None:
        label_offset = _DEFAULT_LABEL_OFFSET[source]
    options, as_tuple = _check_preprocess(kwargs["preprocess"])
    examples = _read(
        source,
        label_offset=label_offset,
        **{key: kwargs[key] for key in _READ_ARGUMENTS},
    )
    if examples.num_examples == 0:
        argument = "split" if source == "tfds" else "path"
        raise ValueError(
            f"The {source} source at {examples.info.location!r} has no "
            f"examples. Received: {argument}={kwargs[argument]!r}. Pass a "
            f"`{argument}` holding at least one example."
        )
    if kwargs["classes"] is not None:
        examples = records.restricted(examples, kwargs["classes"])
    if kwargs["skip_corrupt"]:
        examples = _skip_corrupt(examples)
    shards = (kwargs["num_shards"], kwargs["shard_index"])
    return Plan(
        examples=examples,
        shard=records.shard(examples, *shards),
        options=options,
        as_tuple=as_tuple,
        batch_size=kwargs["batch_size"],
        with_ids=kwargs["with_ids"],
        with_info=kwargs["with_info"],
        start=kwargs["start"],
        identity=dict(
            location=examples.info.location,
            num_examples=examples.num_examples,
            labels_file=kwargs["labels_file"],
            label_offset=label_offset,
            keys=(kwargs["image_key"], kwargs["label_key"]),
            num_classes=kwargs["num_classes"],
            skip_corrupt=kwargs["skip_corrupt"],
            classes=kwargs["classes"],
            options=[o.to_dict() for o in options],
            shard=shards,
            start=kwargs["start"],
        ),
    )


def finish(plan: Plan, cache: str, cache_dir: str | None):
    """Decodes and batches a plan: `build`'s return value."""
    cache_file = None
    if cache == "disk":
        cache_file = os.path.join(cache_dir, caching.key(**plan.identity))
    dataset = batching.batch(
        plan.shard,
        plan.options,
        as_tuple=plan.as_tuple,
        batch_size=plan.batch_size,
        with_ids=plan.with_ids,
        start=plan.start,
        cache=cache,
        cache_file=cache_file,
    )
    if plan.with_info:
        return dataset, dataclasses.replace(plan.examples.info, cache=cache)
    return dataset, plan.shard.num_examples


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
    with_ids,
    start,
    **_,
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
    if not _is_int(start) or start < 0:
        raise ValueError(
            "Argument `start` must be a non-negative integer. "
            f"Received: start={start!r}"
        )
    for argument, value in (
        ("skip_corrupt", skip_corrupt),
        ("with_info", with_info),
        ("with_ids", with_ids),
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
