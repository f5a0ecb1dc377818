"""Shared test set-up.

The CPU is split into three logical devices before TensorFlow initialises
its runtime, so tests can run `tf.distribute.MirroredStrategy` over 1, 2 or
3 replicas on a machine without accelerators. Single-device code is
unaffected: it places everything on the first logical CPU.
"""

import os
import pathlib
import socket
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

# absltest helpers (`create_tempdir`) read absl flags, which only
# `absltest.main()` parses; under pytest their defaults apply.
if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()

NUM_LOGICAL_CPUS = 3

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS,
    )
except RuntimeError:  # The runtime was initialised before this file ran.
    pass

ASSETS = pathlib.Path(
    os.environ.get(
        "TF_TOPK_ASSETS",
        pathlib.Path(__file__).resolve().parents[1].parent
        / "shared"
        / "assets",
    )
)


@pytest.fixture(scope="session")
def assets() -> pathlib.Path:
    """The real weights and images beside the repository, or a skip."""
    if not (ASSETS / "MANIFEST.tsv").is_file():
        pytest.skip(
            f"Real assets not found at {ASSETS} (set TF_TOPK_ASSETS to the "
            "folder holding weights/ and imagenet/ to run this test)."
        )
    return ASSETS


def logical_cpus(n: int) -> list[str]:
    """Names of the first `n` logical CPU devices, or a skip."""
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < n:
        pytest.skip(f"Needs {n} logical CPU devices, found {len(devices)}.")
    return [d.name for d in devices[:n]]


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (for local workers)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def communicate_all(processes, timeout_s: float) -> list[str]:
    """The output of every process, all within `timeout_s`.

    Processes still running at the deadline (or when one wait fails) are
    killed, so no worker outlives its test.
    """
    deadline = time.monotonic() + timeout_s
    logs = []
    try:
        for process in processes:
            remaining = max(1.0, deadline - time.monotonic())
            logs.append(process.communicate(timeout=remaining)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return logs


def pytest_collection_modifyitems(config, items):
    # tf.test.TestCase.test_session is a context manager, not a test.
    del config
    items[:] = [item for item in items if item.name != "test_session"]
