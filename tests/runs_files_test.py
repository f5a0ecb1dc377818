"""Tests of tf_topk.runs.files: results.json, per_class.csv, their readers."""

import csv
import io
import json
import os

import tensorflow as tf

from tf_topk import results, testing
from tf_topk.runs import files


def make_result(**overrides):
    """`testing.eval_result` with a NaN beside the counts (written null)."""
    fields = dict(metadata={"model": {"name": "oracle"}, "score": float("nan")})
    fields.update(overrides)
    return testing.eval_result(**fields)


class ResultsJsonTest(tf.test.TestCase):
    def test_keys_and_hand_checked_values(self):
        record = json.loads(files.results_json(make_result()))
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
        self.assertEqual(files.results_json(make_result()).count("NaN"), 0)

    def test_to_dict_uses_the_results_json_keys(self):
        result = make_result(metadata={})
        self.assertEqual(
            list(json.loads(files.results_json(result))),
            list(result.to_dict()),
        )

    def test_results_json_reads_back_into_an_eval_result(self):
        result = make_result(
            resumed_from=2, input_images_per_s=3.0, input_limited=True
        )
        back = results.from_record(json.loads(files.results_json(result)))
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

    def test_per_class_csv_of_a_multi_label_result_has_only_a_header(self):
        text = files.per_class_csv(
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


class WriteResultsTest(tf.test.TestCase):
    def test_files_agree_and_nothing_temporary_is_left(self):
        workdir = os.path.join(self.create_tempdir().full_path, "run")
        paths = files.write_results(
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
        files.write_results(make_result(), workdir)
        files.write_results(make_result(correct={1: 8, 5: 9}), workdir)
        with open(os.path.join(workdir, "results.json")) as f:
            self.assertEqual(json.load(f)["top1_correct"], 8)
        self.assertEmpty([n for n in os.listdir(workdir) if ".tmp-" in n])

    def test_failed_extras_only_warn_and_results_json_is_written(self):
        workdir = self.create_tempdir().full_path
        # A file where the TensorBoard folder and per_class.csv must go.
        with open(os.path.join(workdir, files.TENSORBOARD_DIR), "w") as f:
            f.write("in the way")
        os.makedirs(os.path.join(workdir, files.PER_CLASS_FILE))
        with self.assertLogs(level="WARNING") as logs:
            paths = files.write_results(make_result(), workdir)
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
            files.write_results(make_result(), "")


class WriteJsonTest(tf.test.TestCase):
    def test_strict_json_and_no_temporary_file(self):
        directory = self.create_tempdir().full_path
        path = os.path.join(directory, "record.json")
        files.write_json(path, {"a": [1.5, float("nan")], "b": {"c": None}})
        with open(path) as f:
            text = f.read()
        self.assertNotIn("NaN", text)
        self.assertEqual(json.loads(text), {"a": [1.5, None], "b": {"c": None}})
        self.assertEqual(os.listdir(directory), ["record.json"])


class ReadResultsTest(tf.test.TestCase):
    def test_reads_what_write_results_wrote(self):
        workdir = self.create_tempdir().full_path
        files.write_results(make_result(), workdir)
        record = files.read_results(workdir)
        self.assertEqual(record["top1_correct"], 7)
        self.assertIsNone(record["score"])

    def test_missing_results_names_the_workdir(self):
        workdir = self.create_tempdir().full_path
        with self.assertRaisesRegex(
            FileNotFoundError,
            r"^Argument `workdir` must hold a finished run's results\.json\. "
            rf"Received: workdir='{workdir}' \({workdir}/results\.json does "
            r"not exist\); run `tf-topk --workdir=\.\.\.` first",
        ):
            files.read_results(workdir)

    def test_bulk_workdir_names_its_runs(self):
        workdir = self.create_tempdir().full_path
        for run in ("run1", "run0"):
            files.write_results(make_result(), os.path.join(workdir, run))
        with self.assertRaisesRegex(
            FileNotFoundError,
            r"the workdir of a bulk command \(runs \['run0', 'run1'\]\); "
            r"pass one run's folder, e\.g\. '.*/run0'$",
        ):
            files.read_results(workdir)

    def test_not_json_names_the_file(self):
        workdir = self.create_tempdir().full_path
        with open(os.path.join(workdir, "results.json"), "w") as f:
            f.write("{")
        with self.assertRaisesRegex(
            ValueError, rf"^{workdir}/results\.json is not valid JSON: "
        ):
            files.read_results(workdir)


class ReadPerClassTest(tf.test.TestCase):
    def test_rows_of_what_write_results_wrote(self):
        workdir = self.create_tempdir().full_path
        files.write_results(make_result(), workdir, class_names=list("abcde"))
        rows = files.read_per_class(workdir)
        self.assertEqual(
            rows[:3],
            [
                files.ClassRow(0, "a", 2, 2, 1.0),
                files.ClassRow(1, "b", 1, 2, 0.5),
                files.ClassRow(2, "c", 0, 0, None),
            ],
        )
        self.assertLen(rows, 5)
        self.assertEqual([row.errors for row in rows], [0, 1, 0, 1, 1])
        # Wilson 95% of 1/2, by hand: (0.0945, 0.9055).
        self.assertAllClose(rows[1].interval95, [0.09453, 0.90547], atol=1e-4)

    def test_absent_file_gives_no_rows(self):
        self.assertEqual(
            files.read_per_class(self.create_tempdir().full_path), []
        )

    def test_malformed_row_names_file_and_row(self):
        workdir = self.create_tempdir().full_path
        path = os.path.join(workdir, "per_class.csv")
        with open(path, "w") as f:
            f.write("class_index,class_name,correct,count,top1\n")
            f.write("0,cat,1,1,1.0\n1,dog,x,1,\n")
        with self.assertRaisesRegex(
            ValueError,
            rf"^{path}:3: expected the columns \['class_index', 'class_name', "
            r"'correct', 'count', 'top1'\]\. Received: ",
        ):
            files.read_per_class(workdir)


if __name__ == "__main__":
    tf.test.main()
