"""Tests of tf_topk.cli.leaderboard_files: leaderboard.csv and .md."""

import csv
import doctest
import io
import os

import tensorflow as tf
from cli_leaderboard_test import make_metadata, make_result, ok_row

from tf_topk.cli import leaderboard, leaderboard_files

# 504 of 650 top-1 (make_result's): 0.77538...
TOP1 = 504 / 650
# A run that backed off twice, with hand-checkable latency and memory:
# 3 * 2**29 bytes = 1.5 GiB, 300 * 2**20 = 300.0 MiB.
MEASURED = dict(
    batch_size=16,
    oom_backoffs=(64, 32),
    latency_ms_p50=12.5,
    latency_ms_p95=20.25,
    peak_host_bytes=3 * 2**29,
    peak_device_bytes=300 * 2**20,
)


class CsvTest(tf.test.TestCase):
    def test_round_trip_keeps_the_run_order_and_full_precision(self):
        rows = [
            ok_row("run0", 504),
            leaderboard.failed("run1", "vgg16", OSError("disk, full")),
            ok_row("run2", 600),
        ]
        text = leaderboard_files.to_csv(rows)
        reader = csv.DictReader(io.StringIO(text))
        records = list(reader)
        self.assertEqual(tuple(reader.fieldnames), leaderboard.FIELDS)
        self.assertEqual([r["run"] for r in records], ["run0", "run1", "run2"])
        first, second = records[0], records[1]
        self.assertEqual(float(first["top1"]), TOP1)
        self.assertEqual(first["top1"], repr(TOP1))
        self.assertEqual(first["top1_correct"], "504")
        self.assertEqual(first["num_examples"], "650")
        self.assertEqual(first["error"], "")
        self.assertEqual(first["image_size"], "224")
        self.assertEqual(second["status"], "failed")
        self.assertEqual(second["error"], "OSError: disk, full")
        self.assertEqual(second["top1"], "")
        self.assertEqual(second["num_parameters"], "")

    def test_empty_leaderboard_is_the_header(self):
        self.assertEqual(
            leaderboard_files.to_csv([]), ",".join(leaderboard.FIELDS) + "\n"
        )

    def test_batch_latency_and_memory_columns(self):
        rows = [
            leaderboard.row("run0", "m", make_result(**MEASURED)),
            leaderboard.row("run1", "m", make_result(batch_size=64)),
        ]
        records = list(
            csv.DictReader(io.StringIO(leaderboard_files.to_csv(rows)))
        )
        first, second = records
        self.assertEqual(first["batch_size"], "16")
        self.assertEqual(first["oom_backoffs"], "64 32")
        self.assertEqual(first["latency_ms_p50"], "12.5")
        self.assertEqual(first["latency_ms_p95"], "20.25")
        self.assertEqual(first["peak_host_bytes"], "1610612736")
        self.assertEqual(first["peak_device_bytes"], "314572800")
        self.assertEqual(second["batch_size"], "64")
        for name in leaderboard.FIELDS[-5:]:
            self.assertEqual(second[name], "", name)


class MarkdownTest(tf.test.TestCase):
    def table_rows(self, text):
        lines = text.splitlines()
        return [line for line in lines[4:] if line.startswith("|")]

    def test_sorted_by_top1_failed_last_ties_by_run_name(self):
        rows = [
            leaderboard.failed("run0", "vgg16", "out of memory"),
            ok_row("run1", 400),
            ok_row("run10", 504),
            ok_row("run2", 504),
            leaderboard.row("run3", "m", make_result({5: 618})),
        ]
        text = leaderboard_files.to_markdown(rows)
        self.assertEqual(text.splitlines()[0], "5 runs: 4 ok, 1 failed.")
        order = [line.split(" | ")[0][2:] for line in self.table_rows(text)]
        # Equal top-1: run2 before run10; run3 has no top-1; run0 failed.
        self.assertEqual(order, ["run2", "run10", "run1", "run3", "run0"])

    def test_cells_of_a_run(self):
        text = leaderboard_files.to_markdown([ok_row("run0", 504)])
        self.assertEqual(text.splitlines()[0], "1 run: 1 ok, 0 failed.")
        self.assertEqual(
            self.table_rows(text)[0],
            "| run0 | mobilenet | ok | 77.54 [74.17, 80.58] "
            "| 95.08 [93.13, 96.49] | 504 / 650 | 618 / 650 "
            "| 68.40 (+9.14) | 88.20 (+6.88) | 325.0 |  |  |  |  | 2.60 M "
            "| 224 | resize_then_crop 0.875 bilinear aa 1 crop |  |",
        )

    def test_batch_latency_and_memory_cells(self):
        entry = leaderboard.row("run0", "m", make_result(**MEASURED))
        text = leaderboard_files.to_markdown([entry])
        header = text.splitlines()[2]
        self.assertIn(
            "| images/s | input images/s | batch | latency p50 / p95 ms "
            "| peak host memory | peak device memory | parameters |",
            header,
        )
        self.assertIn(
            "| 325.0 |  | 16 (64, 32 OOM) | 12.50 / 20.25 | 1.5 GiB "
            "| 300.0 MiB | 2.60 M |",
            self.table_rows(text)[0],
        )

    def test_no_device_column_without_a_gpu(self):
        measured = dict(MEASURED, oom_backoffs=(), peak_device_bytes=None)
        entry = leaderboard.row("run0", "m", make_result(**measured))
        text = leaderboard_files.to_markdown([entry])
        self.assertNotIn("peak device memory", text)
        self.assertIn(
            "| 325.0 |  | 16 | 12.50 / 20.25 | 1.5 GiB | 2.60 M |",
            self.table_rows(text)[0],
        )

    def test_header_and_separator_have_one_cell_per_column(self):
        lines = leaderboard_files.to_markdown(
            [ok_row("run0", 504)]
        ).splitlines()
        self.assertEqual(lines[1], "")
        header, separator, body = lines[2], lines[3], lines[4]
        self.assertTrue(header.startswith("| run | model | status |"))
        self.assertEqual(separator.count("---"), 18)
        self.assertEqual(header.count(" | "), body.count(" | "))

    def test_pipe_and_newline_are_escaped(self):
        rows = [
            leaderboard.failed("run0", "a|b", "ValueError: x | y"),
            leaderboard.Row(
                run="run1", model="two\nlines", status="failed", error="e"
            ),
        ]
        lines = self.table_rows(leaderboard_files.to_markdown(rows))
        self.assertLen(lines, 2)
        self.assertIn(r"| run0 | a\|b | failed |", lines[0])
        self.assertTrue(lines[0].endswith(r"| ValueError: x \| y |"))
        self.assertIn("| run1 | two lines | failed |", lines[1])

    def test_negative_difference_and_small_model(self):
        metadata = make_metadata(
            published={"top1": 0.8, "top5": None}, num_parameters=1234
        )
        entry = leaderboard.row("run0", "m", make_result(metadata=metadata))
        line = self.table_rows(leaderboard_files.to_markdown([entry]))[0]
        # 77.54 - 80.00 = -2.46 points.
        self.assertIn("| 80.00 (-2.46) |  |", line)
        self.assertIn("| 1,234 |", line)


class WriteTest(tf.test.TestCase):
    def test_writes_both_files_and_nothing_temporary(self):
        workdir = os.path.join(self.create_tempdir().full_path, "bulk")
        rows = [ok_row("run0", 504), leaderboard.failed("run1", "m", "boom")]
        paths = leaderboard_files.write(rows, workdir)
        self.assertEqual(
            paths,
            {
                "csv": os.path.join(workdir, "leaderboard.csv"),
                "markdown": os.path.join(workdir, "leaderboard.md"),
            },
        )
        self.assertEqual(
            sorted(os.listdir(workdir)), ["leaderboard.csv", "leaderboard.md"]
        )
        with open(paths["csv"]) as f:
            self.assertEqual(f.read(), leaderboard_files.to_csv(rows))
        with open(paths["markdown"]) as f:
            self.assertEqual(f.read(), leaderboard_files.to_markdown(rows))


class ErrorsTest(tf.test.TestCase):
    def test_duplicate_runs(self):
        rows = [leaderboard.failed("run0", "m", "a")] * 2
        workdir = self.create_tempdir().full_path
        with self.assertRaises(ValueError) as raised:
            leaderboard_files.write(rows, workdir)
        self.assertEqual(
            str(raised.exception),
            "Argument `rows` must name each run once: run names are the "
            "runs' folders. Received: run='run0' twice. Give each run its "
            "own name.",
        )
        self.assertEmpty(os.listdir(workdir))

    def test_not_a_row(self):
        with self.assertRaises(TypeError) as raised:
            leaderboard_files.to_csv([{"run": "run0"}])
        self.assertEqual(
            str(raised.exception),
            "Argument `rows` must hold leaderboard.Row values (from "
            "leaderboard.row or leaderboard.failed). Received: rows[0] of "
            "type dict",
        )

    def test_doctest(self):
        failures, attempted = doctest.testmod(leaderboard_files)
        self.assertEqual(failures, 0)
        self.assertGreater(attempted, 0)


if __name__ == "__main__":
    tf.test.main()
