"""Tests of tf_topk.runs.summary: the table a run prints."""

import doctest

import tensorflow as tf
from absl.testing import parameterized

from tf_topk import testing
from tf_topk.runs import summary


class FormatTableTest(tf.test.TestCase):
    def test_table_lines(self):
        table = summary.format_table(
            testing.eval_result(), title="tf_topk: oracle", published={1: 0.75}
        )
        lines = table.splitlines()
        self.assertEqual(lines[0], "tf_topk: oracle")
        self.assertIn("70.00%", lines[2])
        self.assertIn("7 / 10", lines[2])
        self.assertIn("75.00%", lines[2])
        self.assertIn("90.00%", lines[3])
        self.assertIn("1 non-finite predictions", table)
        self.assertIn("tie-decided (inclusive): top1: 1", table)
        self.assertNotIn("input pipeline alone", table)
        self.assertNotIn("most top-1 errors", table)  # No class names.
        # A result without latency or memory (an older results.json).
        self.assertIn("\nstep latency n/a; peak memory n/a\n", table + "\n")
        self.assertNotIn("out of memory", table)

    def test_latency_memory_and_back_offs(self):
        table = summary.format_table(
            testing.eval_result(
                batch_size=16,
                oom_backoffs=(64, 32),
                latency_ms_p50=12.5,
                latency_ms_p95=20.25,
                peak_host_bytes=3 * 2**29,
                peak_device_bytes=300 * 2**20,
            )
        )
        lines = table.splitlines()
        self.assertEqual(
            lines[-2],
            "step latency p50 12.50 ms, p95 20.25 ms; "
            "peak memory host 1.5 GiB, device 300.0 MiB",
        )
        self.assertEqual(
            lines[-1], "out of memory at batch 64, 32: finished at batch 16"
        )

    def test_device_memory_only_when_known(self):
        table = summary.format_table(
            testing.eval_result(
                latency_ms_p50=0.5, latency_ms_p95=0.75, peak_host_bytes=2**20
            )
        )
        self.assertEqual(
            table.splitlines()[-1],
            "step latency p50 0.50 ms, p95 0.75 ms; peak memory host 1.0 MiB",
        )

    def test_table_gives_the_input_rate_and_whether_it_limits(self):
        for limited, suffix in ((False, ""), (True, " (it limits this run)")):
            table = summary.format_table(
                testing.eval_result(
                    input_images_per_s=12.34, input_limited=limited
                ),
                title="t",
            )
            self.assertIn(
                f"input pipeline alone: 12.3 images/s{suffix}\n", table + "\n"
            )

    def test_classes_with_the_most_errors(self):
        # Correct / count per class: 2/2, 1/2, 0/0, 2/3, 2/3: one error
        # each in b, d, e; b has the lowest top-1; a and c none.
        table = summary.format_table(
            testing.eval_result(), class_names=list("abcde"), num_worst=2
        )
        self.assertEqual(
            table.splitlines()[-1], "most top-1 errors: b 1/2; d 2/3"
        )


class PhrasesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("zero", 0, "0 B"),
        ("bytes", 1023, "1023 B"),
        ("kib", 1024, "1.0 KiB"),
        ("mib", 300 * 2**20, "300.0 MiB"),
        ("rounds_up_to_the_next_unit", 2**30 - 1, "1.0 GiB"),
        ("gib", 3 * 2**29, "1.5 GiB"),
        ("tib_and_above", 2048 * 2**40, "2048.0 TiB"),
    )
    def test_format_bytes(self, num_bytes, expected):
        self.assertEqual(summary.format_bytes(num_bytes), expected)

    def test_back_offs(self):
        self.assertEqual(summary.describe_backoffs((), 64), "")
        self.assertEqual(
            summary.describe_backoffs([8], None), "out of memory at batch 8"
        )

    def test_latency_and_memory_partly_known(self):
        self.assertEqual(summary.describe_latency(3.0, None), "p50 3.00 ms")
        self.assertEqual(summary.describe_memory(None, 2**30), "device 1.0 GiB")
        self.assertEqual(summary.describe_memory(None, None), "n/a")

    def test_doctest(self):
        failures, attempted = doctest.testmod(summary)
        self.assertEqual(failures, 0)
        self.assertGreater(attempted, 0)


if __name__ == "__main__":
    tf.test.main()
