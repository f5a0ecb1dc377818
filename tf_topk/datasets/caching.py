"""Decode once: a cache of preprocessed images that later passes read.

Decoding and resizing JPEGs limits an evaluation on an accelerator (about
150 images/s per CPU core with the default antialiased resize). A bulk run
evaluates several models on the same data and the Keras callback evaluates
the same validation set every epoch, so the preprocessed images are kept
after the first pass, with tf.data's own machinery:

- `"memory"`: `Dataset.cache()`: held by the dataset object; every later
  iteration of that object reads memory.
- `"disk"`: `Dataset.cache(filename)`: tensor files under a folder; any
  pipeline built with the same file name reads them.
- `"auto"`: memory when the estimated size fits the budget (by default
  half of the memory available now), else disk when a folder is given,
  else no cache.
- `"none"`.

The cache holds the float32 pixels the model reads, bit for bit, so cached
and uncached runs count the same. Rounding them to uint8 (4x smaller) was
measured to change counts: MobileNet alpha 0.75 on the 650 images of
`val_acuity650` went from 504 / 618 to 504 / 617 correct (top-1 / top-5).

A cache is complete only once a pass reads it to the end; a pass that stops
early leaves nothing behind (tf.data discards the partial cache). A disk
cache left by a killed process holds a lockfile that stops the next writer:
`clear` removes a folder's caches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

import tensorflow as tf
from absl import logging

from tf_topk import preprocessing

MODES = ("auto", "memory", "disk", "none")
# Bytes the cache keeps per example besides its pixels (index, label).
_OVERHEAD_BYTES = 64


def check_mode(mode, argument: str = "cache") -> str:
    """`mode` if it is one of `MODES`, else a ValueError naming `argument`."""
    if mode not in MODES:
        raise ValueError(
            f"Argument `{argument}` must be one of {list(MODES)}. "
            f"Received: {argument}={mode!r}"
        )
    return mode


def example_bytes(options: Sequence[preprocessing.Options]) -> int:
    """Bytes one cached example takes: float32 pixels of every view."""
    pixels = sum(o.num_crops * o.image_size * o.image_size * 3 for o in options)
    return 4 * pixels + _OVERHEAD_BYTES


def available_memory_bytes() -> int:
    """Memory available now (Linux `MemAvailable`, else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 0


def default_budget_bytes() -> int:
    """Half of the memory available now: the default memory budget."""
    return available_memory_bytes() // 2


def resolve(
    mode: str,
    *,
    size_bytes: int,
    directory: str | None,
    budget_bytes: int | None = None,
) -> str:
    """The mode to use: `"memory"`, `"disk"` or `"none"`.

    Args:
        mode: one of `MODES`.
        size_bytes: the estimated size of the cache.
        directory: where a disk cache goes (None: no disk cache).
        budget_bytes: memory a cache may take; None: half the memory
            available now.

    Raises:
        ValueError: an unknown mode, or `"disk"` without a directory.
    """
    check_mode(mode)
    if mode == "disk" and not directory:
        raise ValueError(
            "Argument `cache_dir` must name a folder for cache='disk'. "
            f"Received: cache_dir={directory!r}. Pass a folder with room "
            f"for about {size_bytes / 2**30:.2f} GiB, or cache='memory'."
        )
    if mode != "auto":
        return mode
    if budget_bytes is None:
        budget_bytes = default_budget_bytes()
    if size_bytes <= budget_bytes:
        return "memory"
    chosen = "disk" if directory else "none"
    logging.info(
        "The decoded images (about %.2f GiB) exceed the memory budget "
        "(%.2f GiB): cache=%s.",
        size_bytes / 2**30,
        budget_bytes / 2**30,
        chosen,
    )
    return chosen


def key(**identity) -> str:
    """A short stable name for a cache of the given identity (JSON-able)."""
    text = json.dumps(identity, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apply(
    dataset: tf.data.Dataset, mode: str, filename: str | None = None
) -> tf.data.Dataset:
    """`dataset` cached in memory or in files starting with `filename`."""
    if mode == "memory":
        return dataset.cache()
    if mode == "disk":
        tf.io.gfile.makedirs(os.path.dirname(filename))
        return dataset.cache(filename)
    if mode == "none":
        return dataset
    raise ValueError(
        "Argument `mode` must be 'memory', 'disk' or 'none' (resolve 'auto' "
        f"first with `resolve`). Received: mode={mode!r}"
    )


def clear(directory: str | None) -> None:
    """Removes the disk caches (and stale lockfiles) under `directory`."""
    if directory and tf.io.gfile.exists(directory):
        tf.io.gfile.rmtree(directory)
