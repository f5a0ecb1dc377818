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

import dataclasses
import inspect
from typing import Any

import tensorflow as tf
from absl import logging

from tf_topk import distribute, preprocessing
from tf_topk.datasets import caching, plans, tfrecord
from tf_topk.datasets.records import IMAGE_EXTENSIONS, SourceInfo
from tf_topk.datasets.tfds import DataUnavailableError
from tf_topk.datasets.tfds import prepare as prepare_tfds

SOURCES = plans.SOURCES
CACHE_MODES = caching.MODES
DEFAULT_TFRECORD_IMAGE_KEY = tfrecord.DEFAULT_IMAGE_KEY
DEFAULT_TFRECORD_LABEL_KEY = tfrecord.DEFAULT_LABEL_KEY
__all__ = [
    "DEFAULT_TFRECORD_IMAGE_KEY",
    "DEFAULT_TFRECORD_LABEL_KEY",
    "IMAGE_EXTENSIONS",
    "SOURCES",
    "CACHE_MODES",
    "DataUnavailableError",
    "InputCache",
    "SourceInfo",
    "build",
    "prepare_tfds",
    "worker_shards",
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
    classes=None,
    preprocess=None,
    image_key: str | None = None,
    label_key: str | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    with_info: bool = False,
    with_ids: bool = False,
    start: int = 0,
    cache: str = "none",
    cache_dir: str | None = None,
    cache_budget_bytes: int | None = None,
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
        classes: evaluate only the examples labelled with one of these
            class indices (after the offset), e.g. the 200 classes of
            ImageNet-A for its clean baseline; None: all.
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
        cache: keep the preprocessed images after the first full pass, so
            later iterations of the returned dataset read them instead of
            decoding again: `"memory"`, `"disk"` (under `cache_dir`),
            `"auto"` (memory when the estimate fits `cache_budget_bytes`,
            else disk when `cache_dir` is set, else none) or `"none"`.
            The cache holds the float32 pixels the model reads, so the
            counts are the same with and without it (see
            `tf_topk.datasets.caching`).
        cache_dir: the folder of disk caches; a cache's files are named
            after the data, the preprocessing, the shard and `start`.
        cache_budget_bytes: memory an `"auto"` cache may take; None: half
            of the memory available now.

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
    plan = plans.plan(
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
        classes=classes,
        preprocess=preprocess,
        image_key=image_key,
        label_key=label_key,
        num_shards=num_shards,
        shard_index=shard_index,
        with_info=with_info,
        with_ids=with_ids,
        start=start,
    )
    mode = caching.resolve(
        cache,
        size_bytes=plan.size_bytes,
        directory=cache_dir,
        budget_bytes=cache_budget_bytes,
    )
    return plans.finish(plan, mode, cache_dir)


def worker_shards(
    whole: tf.data.Dataset, num_examples: int, build_kwargs: dict[str, Any]
):
    """A dataset function: each worker of a run reads only its share.

    `build_kwargs` are the arguments `whole` was built with (`build`).

    With one input pipeline (one process) it is the whole dataset; with W
    workers, worker w builds examples w, w + W, ... in batches of
    `distribute.per_worker_batch_size`, so each decodes 1/W of the images
    (see `tf_topk.evaluate`).
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        pipelines = context.num_input_pipelines
        if pipelines == 1:
            return whole
        index = context.input_pipeline_id
        batch_size = distribute.per_worker_batch_size(
            build_kwargs["batch_size"], pipelines
        )
        dataset, count = build(
            **{**build_kwargs, "batch_size": batch_size},
            num_shards=pipelines,
            shard_index=index,
        )
        logging.info(
            "Input pipeline %d of %d reads %d of the %d examples.",
            index,
            pipelines,
            count,
            num_examples,
        )
        return dataset

    return dataset_fn


@dataclasses.dataclass
class _Entry:
    """One input `InputCache` built."""

    plan: plans.Plan
    built: tuple  # What `build` returned: (dataset, count or info).
    mode: str  # Its cache: "memory", "disk" or "none".
    uses: int = 1  # Times handed out.

    @property
    def held_bytes(self) -> int:
        """Estimated bytes of its memory cache (0: none)."""
        return self.plan.size_bytes if self.mode == "memory" else 0


# `build`'s keyword arguments and their defaults, for `InputCache.build`.
_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(build).parameters.items()
    if parameter.kind == inspect.Parameter.KEYWORD_ONLY
    and not name.startswith("cache")
}


class InputCache:
    """Builds each distinct input once, so the runs that read it share its
    decoded-image cache (`build(..., cache=...)`).

    A bulk run asks for its input once per model; models whose resolved
    preprocessing (input size, crop, interpolation, antialias, number of
    crops) is the same get the same dataset object, whose cache the first
    run fills and the later ones read. `preprocess_input` (scaling, mean /
    std) runs inside the model wrapper, so it does not split the cache.

    Memory caches share one budget: when a new input does not fit, the
    oldest inputs are let go (their memory freed) before falling back to
    disk (under `directory`) or to no cache.

    >>> inputs = InputCache("memory")  # doctest: +SKIP
    >>> dataset, info = inputs.build("folder", path="/data/val",
    ...                              with_info=True)  # doctest: +SKIP

    Args:
        mode: one of `CACHE_MODES`.
        directory: the folder of disk caches (cleared by `close`).
        budget_bytes: memory all memory caches may take; None: half of
            the memory available when the first input is built.
        shared: when given, only inputs whose `preprocess` (an Options or
            a sequence of them) is in it are cached: the others are read
            by one run, and a cache would only cost memory or disk.
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        directory: str | None = None,
        budget_bytes: int | None = None,
        shared=None,
    ):
        self.mode = caching.check_mode(mode, "config.data.cache")
        self.directory = directory
        self.budget_bytes = budget_bytes
        self.shared = None if shared is None else {_views(p) for p in shared}
        self._built: dict[str, _Entry] = {}

    def build(self, source: str, **kwargs):
        """`build(source, **kwargs)` with this cache, once per input."""
        key = caching.key(source=source, **kwargs)
        if key in self._built:
            entry = self._built.pop(key)
            self._built[key] = entry  # Most recently used last.
            entry.uses += 1
            return entry.built
        if self.budget_bytes is None:
            self.budget_bytes = caching.default_budget_bytes()
        plan = plans.plan(source, **{**_DEFAULTS, **kwargs})
        mode = self.mode
        # A resumed run's input (start > 0) is its own: no other run
        # reads the same examples.
        if kwargs.get("start") or (
            self.shared is not None
            and _views(kwargs.get("preprocess")) not in self.shared
        ):
            mode = "none"
        if mode in ("auto", "memory"):
            self._make_room(plan.size_bytes)
        mode = caching.resolve(
            mode,
            size_bytes=plan.size_bytes,
            directory=self.directory,
            budget_bytes=self.budget_bytes - self.memory_bytes,
        )
        built = plans.finish(plan, mode, self.directory)
        self._built[key] = _Entry(plan, built, mode)
        return built

    def reused(self, source: str, **kwargs) -> bool:
        """Whether `build(source, **kwargs)` was handed out before: its
        cache is filled once a run read it to the end."""
        entry = self._built.get(caching.key(source=source, **kwargs))
        return bool(entry and entry.uses > 1)

    def for_probe(self, source: str, **kwargs) -> tf.data.Dataset:
        """The dataset to time the input of `build(source, **kwargs)` on.

        The cached dataset once a run filled its cache; before, the same
        input uncached, from the plan already read (a partial pass over a
        cache being filled would only discard it).
        """
        entry = self._built[caching.key(source=source, **kwargs)]
        if entry.mode == "none" or entry.uses > 1:
            return entry.built[0]
        return plans.finish(entry.plan, "none", None)[0]

    @property
    def memory_bytes(self) -> int:
        """The estimated bytes of the memory caches held."""
        return sum(entry.held_bytes for entry in self._built.values())

    def close(self) -> None:
        """Lets every input go and removes the disk caches."""
        self._built.clear()
        caching.clear(self.directory)

    def _make_room(self, size: int) -> None:
        while self._built and self.memory_bytes + size > self.budget_bytes:
            oldest = next(iter(self._built))
            del self._built[oldest]


def _views(preprocess) -> tuple:
    """A `preprocess` argument as a hashable tuple of Options."""
    if preprocess is None or isinstance(preprocess, preprocessing.Options):
        return (preprocess,)
    return tuple(preprocess)
