"""Tests of the results files: results.json, per_class.csv, the table."""

import csv
import io
import json
import os

import tensorflow as tf

from tf_topk import report, results


def make_result(**overrides):
    fields = dict(
        ks=(1, 5),
        num_examples=10,
        num_scored=10,
        correct={1: 7, 5: 9},
        ties={1: 1, 5: 0},
        nonfinite=1,
        unlabeled=0,
        per_class_correct=(2, 1, 0, 2, 2),
        per_class_count=(2, 2, 0, 3, 3),
        wall_time_s=2.0,
        images_per_s=5.0,
        input_time_s=0.5,
        model_time_s=1.5,
        ties_rule="inclusive",
        metadata={"model": {"name": "oracle"}, "score": float("nan")},
    )
    fields.update(overrides)
    return results.EvalResult(**fields)


class ResultsJsonTest(tf.test.TestCase):
    def test_keys_and_hand_checked_values(self):
        record = json.loads(report.results_json(make_result()))
        self.assertEqual(record["num_examples"], 10)
        self.assertEqual(record["top1_correct"], 7)
        self.assertAlmostEqual(record["top1"], 0.7)
        self.assertAlmostEqual(record["top5"], 0.9)
        self.assertAlmostEqual(record["top1_error"], 0.3)
        # Wilson 95% interval of 7/10, by hand: (0.3968, 0.8922).
        self.assertAllClose(
            record["top1_interval95"], [0.39677, 0.89222], atol=1e-4
        )
        self.assertEqual(record["ties"], {"top1": 1, "top5": 0})
        self.assertEqual(record["nonfinite"], 1)
        self.assertEqual(record["model"], {"name": "oracle"})
        # NaN is not JSON: it is written as null.
        self.assertIsNone(record["score"])
        self.assertEqual(report.results_json(make_result()).count("NaN"), 0)

    def test_to_dict_uses_the_results_json_keys(self):
        result = make_result(metadata={})
        self.assertEqual(
            list(json.loads(report.results_json(result))),
            list(result.to_dict()),
        )


class WriteTest(tf.test.TestCase):
    def test_files_agree_and_nothing_temporary_is_left(self):
        workdir = os.path.join(self.create_tempdir().full_path, "run")
        paths = report.write(
            make_result(), workdir, class_names=list("abcde"), step=3
        )
        self.assertEqual(
            sorted(os.listdir(workdir)),
            ["per_class.csv", "results.json", "tensorboard"],
        )
        with open(paths["results"]) as f:
            record = json.load(f)
        with open(paths["per_class"]) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["class_name"] for r in rows], list("abcde"))
        self.assertEqual(sum(int(r["count"]) for r in rows), 10)
        self.assertEqual(
            sum(int(r["correct"]) for r in rows), record["top1_correct"]
        )
        self.assertEqual(rows[0]["top1"], "1.000000")
        self.assertEqual(rows[2]["top1"], "")  # No examples of class 2.
        events = tf.io.gfile.glob(
            os.path.join(paths["tensorboard"], "events.*")
        )
        self.assertLen(events, 1)
        scalars = {}
        for event in tf.compat.v1.train.summary_iterator(events[0]):
            for value in event.summary.value:
                scalars[value.tag] = (
                    event.step,
                    float(tf.make_ndarray(value.tensor)),
                )
        self.assertEqual(scalars["top1"][0], 3)
        self.assertAlmostEqual(scalars["top1"][1], 0.7, places=6)
        self.assertAlmostEqual(scalars["top5_error"][1], 0.1, places=6)

    def test_rewrite_replaces_atomically(self):
        workdir = self.create_tempdir().full_path
        report.write(make_result(), workdir)
        report.write(make_result(correct={1: 8, 5: 9}), workdir)
        with open(os.path.join(workdir, "results.json")) as f:
            self.assertEqual(json.load(f)["top1_correct"], 8)
        self.assertEmpty([n for n in os.listdir(workdir) if ".tmp-" in n])

    def test_failed_extras_only_warn_and_results_json_is_written(self):
        workdir = self.create_tempdir().full_path
        # A file where the TensorBoard folder and per_class.csv must go.
        with open(os.path.join(workdir, report.TENSORBOARD_DIR), "w") as f:
            f.write("in the way")
        os.makedirs(os.path.join(workdir, report.PER_CLASS_FILE))
        with self.assertLogs(level="WARNING") as logs:
            paths = report.write(make_result(), workdir)
        self.assertLen(logs.records, 2)
        self.assertIn("Could not write", logs.output[0])
        with open(paths["results"]) as f:
            self.assertEqual(json.load(f)["top1_correct"], 7)

    def test_empty_workdir_is_an_error(self):
        with self.assertRaisesRegex(
            ValueError,
            r"Argument `workdir` must name an output folder\. "
            r"Received: workdir=''",
        ):
            report.write(make_result(), "")


class TableTest(tf.test.TestCase):
    def test_table_lines(self):
        table = report.format_table(
            make_result(), title="tf_topk: oracle", published={1: 0.75}
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

    def test_results_json_reads_back_into_an_eval_result(self):
        result = make_result(
            resumed_from=2, input_images_per_s=3.0, input_limited=True
        )
        back = results.from_record(json.loads(report.results_json(result)))
        self.assertEqual(back.ks, (1, 5))
        self.assertEqual(back.correct, {1: 7, 5: 9})
        self.assertEqual(back.ties, {1: 1, 5: 0})
        self.assertEqual(
            (back.num_examples, back.num_scored, back.nonfinite), (10, 10, 1)
        )
        self.assertEqual(back.interval(1), result.interval(1))
        self.assertEqual(back.resumed_from, 2)
        self.assertEqual(back.input_images_per_s, 3.0)
        self.assertTrue(back.input_limited)
        self.assertEqual(back.model_time_s, 1.5)
        # What the caller wrote beside the counts; NaN became null.
        self.assertEqual(
            back.metadata, {"model": {"name": "oracle"}, "score": None}
        )
        self.assertIsNone(back.per_class_count)
        with self.assertRaisesRegex(ValueError, "no top"):
            results.from_record({"num_examples": 1})

    def test_table_gives_the_input_rate_and_whether_it_limits(self):
        for limited, suffix in ((False, ""), (True, " (it limits this run)")):
            table = report.format_table(
                make_result(input_images_per_s=12.34, input_limited=limited),
                title="t",
            )
            self.assertIn(
                f"input pipeline alone: 12.3 images/s{suffix}\n", table + "\n"
            )

    def test_per_class_csv_of_a_multi_label_result_has_only_a_header(self):
        text = report.per_class_csv(
            make_result(per_class_correct=None, per_class_count=None)
        )
        self.assertEqual(
            list(csv.reader(io.StringIO(text))),
            [
                [
                    "class_index",
                    "class_name",
                    "correct",
                    "count",
                    "top1",
                    "synset",
                ]
            ],
        )


if __name__ == "__main__":
    tf.test.main()
