"""Tests of tf_topk.cli.bulk: config.runs, the leaderboard, decoding once,
resume.

The smoke config's oracle gets exactly 7/10 top-1 and 10/10 top-5 on the
images `cli_main_test.write_smoke_images` paints, at any input size.
"""

import csv
import json
import os
from unittest import mock

import conftest
import keras
import pytest
import tensorflow as tf
from absl.testing import parameterized
from cli_main_test import load_config_module, run_cli, write_smoke_images

from tf_topk import checkpoints, input_stage
from tf_topk.cli import bulk, leaderboard, presets, run
from tf_topk.runs import files


def damage_images(directory):
    """Overwrites every image: decoding any of them now fails."""
    for root, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"not an image")


def read_csv(path):
    with open(path) as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


class BulkTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.images = self.create_tempdir().full_path
        write_smoke_images(self.images)
        self.workdir = self.create_tempdir().full_path

    def config(self, num_runs=3):
        config = load_config_module("smoke").get_config(str(num_runs))
        config.data.path = self.images
        return config

    def test_each_run_writes_its_files_and_the_leaderboard(self):
        config = self.config()
        config.runs.run1.image_size = 16
        config.runs.run2.weights = "tf_topk.testing:no_such_model"
        outcome = run.run(config, self.workdir)

        self.assertTrue(outcome.failed)
        self.assertEqual(sorted(outcome.results), ["run0", "run1"])
        for name in ("run0", "run1"):
            with open(os.path.join(self.workdir, name, "results.json")) as f:
                record = json.load(f)
            self.assertEqual(record["top1_correct"], 7)
            self.assertEqual(record["top5_correct"], 10)
            self.assertEqual(record["config"]["bulk_run"], name)
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "cache")))
        self.assertFalse(
            os.path.exists(os.path.join(self.workdir, files.BULK_PROGRESS_FILE))
        )

        fields, rows = read_csv(os.path.join(self.workdir, "leaderboard.csv"))
        self.assertEqual(tuple(fields), leaderboard.FIELDS)
        self.assertEqual([r["run"] for r in rows], ["run0", "run1", "run2"])
        self.assertEqual([r["status"] for r in rows], ["ok", "ok", "failed"])
        self.assertEqual([r["top1_correct"] for r in rows], ["7", "7", ""])
        self.assertEqual(rows[0]["num_examples"], "10")
        self.assertEqual(rows[1]["image_size"], "16")
        self.assertIn("image_size=16", rows[1]["model"])
        self.assertIn("weights=tf_topk.testing:no_such_model", rows[2]["model"])
        self.assertStartsWith(
            rows[2]["error"],
            "ValueError: Argument `weights` names no callable "
            "'no_such_model' in module 'tf_topk.testing'.",
        )
        with open(os.path.join(self.workdir, "leaderboard.md")) as f:
            markdown = f.read()
        self.assertStartsWith(markdown, "3 runs: 2 ok, 1 failed.")
        # `tf-topk report` / `compare` name the runs of a bulk workdir.
        with self.assertRaisesRegex(
            FileNotFoundError,
            r"the workdir of a bulk command \(runs \['run0', 'run1'\]\); "
            r"pass one run's folder, e\.g\. '.*/run0'$",
        ):
            files.read_results(self.workdir)
        self.assertEqual(
            files.read_results(os.path.join(self.workdir, "run1"))[
                "top1_correct"
            ],
            7,
        )

    def test_counts_equal_the_single_runs(self):
        single = load_config_module("smoke").get_config()
        single.data.path = self.images
        expected = run.run(single, None)
        outcome = run.run(self.config(2), self.workdir)
        for result in outcome.results.values():
            self.assertEqual(result.correct, expected.correct)
            self.assertEqual(result.ties, expected.ties)
            self.assertEqual(result.num_examples, 10)

    def run_damaging_after_first(self, config):
        """bulk.run, with the images damaged once the first run is done."""
        calls = []
        run_one = run.run_one

        def damaging(request, workdir, **options):
            result = run_one(request, workdir, **options)
            if not calls:
                damage_images(self.images)
            calls.append(request.bulk_run)
            return result

        with mock.patch.object(run, "run_one", side_effect=damaging):
            return bulk.run(config, self.workdir)

    def test_runs_of_one_preprocessing_decode_once(self):
        config = self.config()
        # run1 differs only in preprocess_input: it shares run0's cache.
        config.runs.run1.preprocess_mode = "tf"
        config.runs.run1.kwargs.num_classes = 5
        # run2 resizes to 16: it must decode, and the images are gone.
        config.runs.run2.image_size = 16
        outcome = self.run_damaging_after_first(config)
        statuses = [row.status for row in outcome.rows]
        self.assertEqual(statuses, ["ok", "ok", "failed"])
        self.assertEqual(outcome.results["run0"].correct[1], 7)
        self.assertIn("decode", outcome.rows[2].error)
        self.assertEqual(
            outcome.results["run1"].metadata["data"]["cache"], "memory"
        )

    @parameterized.named_parameters(("none", "none"), ("disk", "disk"))
    def test_cache_modes(self, mode):
        config = self.config(2)
        config.data.cache = mode
        outcome = self.run_damaging_after_first(config)
        second = "failed" if mode == "none" else "ok"
        self.assertEqual([r.status for r in outcome.rows], ["ok", second])
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "cache")))

    def test_interrupted_command_resumes_where_it_stopped(self):
        config = self.config()
        calls = []
        run_one = run.run_one

        def interrupt_run1(request, workdir, **options):
            calls.append(request.bulk_run)
            if request.bulk_run == "run1" and calls.count("run1") == 1:
                raise checkpoints.Interrupted("SIGTERM", 4, 10, workdir)
            return run_one(request, workdir, **options)

        patch = mock.patch.object(run, "run_one", side_effect=interrupt_run1)
        self.enter_context(patch)
        stale = os.path.join(self.workdir, "leaderboard.md")
        with open(stale, "w") as f:
            f.write("an earlier command's table")
        with self.assertRaises(checkpoints.Interrupted):
            bulk.run(config, self.workdir)
        self.assertFalse(os.path.exists(stale))
        marker = os.path.join(self.workdir, files.BULK_PROGRESS_FILE)
        self.assertTrue(os.path.exists(marker))
        self.assertFalse(
            os.path.exists(os.path.join(self.workdir, "leaderboard.csv"))
        )
        outcome = bulk.run(config, self.workdir)
        # run0 is read from its results.json, not evaluated again.
        self.assertEqual(calls, ["run0", "run1", "run1", "run2"])
        self.assertEqual([r.top1_correct for r in outcome.rows], [7, 7, 7])
        self.assertFalse(os.path.exists(marker))
        # A finished command leaves nothing to resume: all run again.
        bulk.run(config, self.workdir)
        self.assertEqual(calls[4:], ["run0", "run1", "run2"])

    def test_a_changed_config_does_not_resume(self):
        config = self.config(1)
        marker = os.path.join(self.workdir, files.BULK_PROGRESS_FILE)
        with open(marker, "w") as f:
            json.dump({"complete": False, "config": {"other": 1}}, f)
        calls = []
        run_one = run.run_one

        def counting(request, workdir, **options):
            calls.append(request.bulk_run)
            return run_one(request, workdir, **options)

        with mock.patch.object(run, "run_one", side_effect=counting):
            bulk.run(config, self.workdir)
            bulk.run(config, self.workdir)
        self.assertEqual(calls, ["run0", "run0"])

    def test_input_limited_run_warns_with_the_remedies(self):
        slow = input_stage.InputRate(
            images_per_s=0.5, num_images=4, seconds=8.0, num_batches=1
        )
        single = load_config_module("smoke").get_config()
        single.data.path = self.images
        with (
            mock.patch.object(input_stage, "measure", return_value=slow),
            self.assertLogs(level="WARNING") as logs,
        ):
            result = run.run(single, self.workdir)
        self.assertTrue(result.input_limited)
        self.assertEqual(result.input_images_per_s, 0.5)
        text = "\n".join(logs.output)
        self.assertIn("--config.preprocess.antialias=False", text)
        self.assertIn("--config.data.cache=memory", text)
        with open(os.path.join(self.workdir, "results.json")) as f:
            throughput = json.load(f)["throughput"]
        self.assertEqual(throughput["input_images_per_s"], 0.5)
        self.assertTrue(throughput["input_limited"])

    def test_measured_input_rate_is_recorded(self):
        result = run.run(self.config(1), None).results["run0"]
        self.assertGreater(result.input_images_per_s, 0)
        self.assertIsNotNone(result.input_limited)
        self.assertGreater(result.metadata["num_parameters"], -1)

    def test_ensemble_weights_belong_to_a_run(self):
        config = self.config(2)
        config.ensemble_weights = "2,1"
        with self.assertRaisesRegex(
            ValueError,
            r"^`config\.ensemble_weights` does not apply to a bulk config: "
            r"set it per ensemble run, e\.g\. "
            r"--config\.runs\.run1\.ensemble_weights=2,1\. Received: '2,1'$",
        ):
            run.run(config, self.workdir)

    def test_errors_name_the_run_path(self):
        config = self.config(2)
        config.runs.run1.class_subset = ","
        outcome = run.run(config, None)
        self.assertIn("`config.runs.run1.class_subset`", outcome.rows[1].error)

    def test_cli_prints_the_leaderboard_and_fails_when_a_run_failed(self):
        process = run_cli(
            "--config=configs/smoke.py:2",
            f"--config.data.path={self.images}",
            "--config.runs.run1.weights=tf_topk.testing:no_such_model",
            f"--workdir={self.workdir}",
        )
        self.assertEqual(process.returncode, 1, process.stderr)
        self.assertIn("2 runs: 1 ok, 1 failed.", process.stdout)
        self.assertIn("Failed runs: ['run1']", process.stderr)
        _, rows = read_csv(os.path.join(self.workdir, "leaderboard.csv"))
        self.assertEqual([r["status"] for r in rows], ["ok", "failed"])


@pytest.mark.slow
class RealImagesBulkTest(tf.test.TestCase):
    """MobileNet alpha 0.75 and 0.25 on the 650 real images of
    val_acuity650: the counts of the single runs (../shared/assets/README.md:
    504 / 618 and 438 / 569), and a run with missing weights marked failed.
    """

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        if not (conftest.ASSETS / "MANIFEST.tsv").is_file():
            self.skipTest(
                f"Real assets absent at {conftest.ASSETS}: this test needs "
                "weights/ and imagenet/val_acuity650 from ../shared/assets."
            )

    def test_leaderboard_counts_equal_the_single_runs(self):
        weights = conftest.ASSETS / "weights"
        images = conftest.ASSETS / "imagenet" / "val_acuity650"
        config = presets.imagenet("mobilenet,mobilenet,mobilenet")
        for name, alpha in (("run0", 0.75), ("run1", 0.25), ("run2", 0.5)):
            config.runs[name].alpha = alpha
            config.runs[name].weights = str(
                weights / f"mobilenet_{alpha}_224.weights.h5"
            )
        config.data.source = "files"
        config.data.path = str(images)
        config.data.labels_file = str(images / "labels.tsv")
        config.data.batch_size = 50
        config.eval.progress = "none"
        workdir = self.create_tempdir().full_path
        outcome = run.run(config, workdir)
        counts = [(r.top1_correct, r.top5_correct) for r in outcome.rows]
        self.assertEqual(counts, [(504, 618), (438, 569), (None, None)])
        self.assertEqual([r.status for r in outcome.rows][2], "failed")
        self.assertStartsWith(
            outcome.rows[2].error,
            "FileNotFoundError: Argument `weights` names a path that does "
            "not exist.",
        )
        self.assertEqual(
            outcome.rows[1].model,
            (
                f"mobilenet alpha=0.25 weights={weights}/"
                "mobilenet_0.25_224.weights.h5"
            ),
        )
        cache = outcome.results["run1"].metadata["data"]["cache"]
        self.assertEqual(cache, "memory")
        with open(os.path.join(workdir, "leaderboard.md")) as f:
            table = f.read().splitlines()
        self.assertEqual(table[0], "3 runs: 2 ok, 1 failed.")
        # Sorted by top-1: alpha 0.75 first, the failed run last.
        self.assertStartsWith(table[4], "| run0 | mobilenet alpha=0.75")
        self.assertStartsWith(table[-1], "| run2 |")


class SharedPreprocessingTest(tf.test.TestCase):
    def test_only_preprocessings_of_several_runs_are_cached(self):
        config = presets.imagenet("mobilenet,mobilenet,resnet50,inception_v3")
        config.runs.run1.image_size = 128
        # ResNet50 differs from MobileNet only in preprocess_input (inside
        # the model): the same input. Inception V3 reads 299 pixels.
        with self.assertLogs(level="INFO") as logs:
            shared = bulk.shared_preprocessing(bulk.run_requests(config))
        self.assertLen(shared, 1)
        (views,) = shared
        self.assertEqual([v.image_size for v in views], [224])
        self.assertIn(
            "Runs run0, run2 share one preprocessing", "\n".join(logs.output)
        )
        # A model outside the registry: its input is known once built.
        smoke = load_config_module("smoke").get_config("2")
        smoke.data.path = self.create_tempdir().full_path
        self.assertIsNone(bulk.shared_preprocessing(bulk.run_requests(smoke)))
