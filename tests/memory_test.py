"""Tests of the memory figures of a run (tf_topk.memory)."""

import resource

import numpy as np
import tensorflow as tf

from tf_topk import memory


class MemoryTest(tf.test.TestCase):
    def test_peak_host_bytes_is_the_resident_high_water_mark(self):
        before = memory.peak_host_bytes()
        self.assertEqual(
            before,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        )
        # 256 MiB touched: the high-water mark cannot stay below it.
        block = np.ones(256 * 2**20, np.uint8)
        self.assertGreaterEqual(memory.peak_host_bytes(), block.nbytes)

    def test_device_peak_without_a_gpu_is_none(self):
        memory.reset_device_peaks()
        if tf.config.list_logical_devices("GPU"):
            self.assertGreaterEqual(memory.peak_device_bytes(), 0)
        else:
            self.assertIsNone(memory.peak_device_bytes())


if __name__ == "__main__":
    tf.test.main()
