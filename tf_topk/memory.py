"""How much memory a run took: the process's and the accelerators' peaks.

`results.json` `memory.peak_host_bytes` is the process's resident
high-water mark (`getrusage`: it never goes down, so a run in a process
that ran bigger things before reports theirs); `memory.peak_device_bytes`
is the largest peak of the local GPUs since the run began
(`tf.config.experimental.get_memory_info`), None without a GPU.
"""

from __future__ import annotations

import resource
import sys

import tensorflow as tf


def _gpus() -> list[str]:
    return [
        f"GPU:{index}"
        for index, _ in enumerate(tf.config.list_logical_devices("GPU"))
    ]


def reset_device_peaks() -> None:
    """Starts the GPUs' peak counters afresh (nothing without a GPU)."""
    for device in _gpus():
        try:
            tf.config.experimental.reset_memory_stats(device)
        except (ValueError, tf.errors.OpError):
            pass  # A device without memory statistics reports None.


def peak_host_bytes() -> int:
    """The process's resident high-water mark, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def peak_device_bytes() -> int | None:
    """The largest peak of the local GPUs since `reset_device_peaks`, in
    bytes; None without a GPU (or without memory statistics)."""
    peaks = []
    for device in _gpus():
        try:
            peaks.append(
                int(tf.config.experimental.get_memory_info(device)["peak"])
            )
        except (ValueError, tf.errors.OpError):
            continue
    return max(peaks) if peaks else None
