"""Tests of tf_topk.cli.robustness: ImageNet-C cells and the suite, with an
oracle whose per-cell counts are known.

Images are painted with 5 classes (`testing.class_intensity(c, 5)`) in
folders named after the first 5 ILSVRC synsets (labels 0-4); the oracle
reads a painted class c as label c, so a cell whose labels agree with the
paint on k images scores exactly k.
"""

import json
import os
import shutil
import tempfile
from unittest import mock

import conftest  # noqa: F401 (logical CPUs before TensorFlow starts)
import keras
import numpy as np
import tensorflow as tf
from cli_main_test import load_config_module
from ml_collections import config_dict

from tf_topk import checkpoints, corruptions, imagenet, testing
from tf_topk.cli import robustness, robustness_presets, run
from tf_topk.models import building
from tf_topk.runs import files

NUM_PAINTED = 5
SYNSETS = list(imagenet.synsets()[:NUM_PAINTED])
# (corruption folder, severity): top-1 correct of 5 images.
CELLS = {
    **{("noise/gaussian_noise", s): 5 - s for s in range(1, 6)},
    ("motion_blur", 2): 4,
    ("motion_blur", 4): 2,
}
CELL_IMAGES = 5


def write_cell(directory, num_images, num_correct, seed=0):
    painted = np.arange(num_images) % NUM_PAINTED
    labels = testing.oracle_labels(painted, num_correct, NUM_PAINTED, seed=seed)
    testing.write_class_folders(
        directory,
        painted,
        labels,
        num_classes=NUM_PAINTED,
        class_names=SYNSETS,
    )


def write_tree(root):
    for (path, severity), correct in CELLS.items():
        write_cell(
            os.path.join(root, path, str(severity)), CELL_IMAGES, correct
        )


def use_oracle(config):
    """The config's model as the oracle of the painted images."""
    with config.unlocked():
        config.model.name = "oracle"
        config.model.weights = "tf_topk.testing:oracle_model"
        config.model.kwargs = config_dict.ConfigDict(
            {"num_classes": NUM_PAINTED}
        )
        config.model.preprocess_mode = "none"
        config.model.output = "logits"
        config.model.image_size = 16
    config.data.batch_size = 4
    config.data.num_classes = NUM_PAINTED
    config.eval.progress = "none"
    return config


def expected_mce():
    """mCE by hand: error sums over AlexNet's over the same severities."""
    gaussian = sum(s / 5 for s in range(1, 6)) / sum(
        corruptions.ALEXNET_TOP1_ERROR["gaussian_noise"]
    )
    alexnet_motion = corruptions.ALEXNET_TOP1_ERROR["motion_blur"]
    motion = (1 / 5 + 3 / 5) / (alexnet_motion[1] + alexnet_motion[3])
    return (gaussian + motion) / 2


class ImageNetCTest(tf.test.TestCase):
    """One command over the whole tree, shared by the tests (2 s a cell)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="imagenet_c_")
        write_tree(cls.root)
        cls.workdir = tempfile.mkdtemp(prefix="imagenet_c_run_")
        cls.clean = tempfile.mkdtemp(prefix="clean_run_")
        files.write_json(
            os.path.join(cls.clean, files.RESULTS_FILE), {"top1": 0.9}
        )
        config = use_oracle(robustness_presets.imagenet_c("mobilenet"))
        config.data.path = cls.root
        config.robustness.clean_results = cls.clean
        keras.backend.clear_session()
        build = building.build
        with mock.patch.object(building, "build", side_effect=build) as builds:
            cls.outcome = run.run(config, cls.workdir)
        cls.num_builds = builds.call_count

    @classmethod
    def tearDownClass(cls):
        for folder in (cls.root, cls.workdir, cls.clean):
            shutil.rmtree(folder)
        super().tearDownClass()

    def test_one_model_for_every_cell(self):
        self.assertEqual(self.num_builds, 1)
        self.assertFalse(self.outcome.failed)

    def test_cell_counts_and_mce(self):
        with open(os.path.join(self.workdir, files.ROBUSTNESS_JSON)) as f:
            record = json.load(f)
        counted = {
            f"{c['corruption']}/{c['severity']}": c["top1_correct"]
            for c in record["cells"]
        }
        self.assertEqual(
            counted,
            {
                f"{path.split('/')[-1]}/{s}": correct
                for (path, s), correct in CELLS.items()
            },
        )
        self.assertTrue(
            all(c["num_examples"] == CELL_IMAGES for c in record["cells"])
        )
        self.assertAlmostEqual(record["mce"], expected_mce(), places=12)
        self.assertEqual(
            record["missing_severities"], {"motion_blur": [1, 3, 5]}
        )
        self.assertIn("fog", record["missing_corruptions"])
        self.assertEqual(record["failed_runs"], {})
        with open(os.path.join(self.workdir, files.ROBUSTNESS_MARKDOWN)) as f:
            table = f.read()
        self.assertIn(f"{100 * expected_mce():.2f}%", table)
        with open(os.path.join(self.workdir, files.REPORT_FILE)) as f:
            page = f.read()
        self.assertIn('alt="ImageNet-C heatmap" src="data:image/png', page)
        self.assertIn(f"mCE {100 * expected_mce():.2f}", page)

    def test_relative_mce_from_a_clean_run(self):
        alexnet = corruptions.ALEXNET_TOP1_ERROR
        clean_alexnet = corruptions.ALEXNET_CLEAN_TOP1_ERROR
        gaussian = (3.0 - 5 * 0.1) / (
            sum(alexnet["gaussian_noise"]) - 5 * clean_alexnet
        )
        motion = (0.8 - 2 * 0.1) / (
            alexnet["motion_blur"][1]
            + alexnet["motion_blur"][3]
            - 2 * clean_alexnet
        )
        self.assertAlmostEqual(
            self.outcome.record["relative_mce"], (gaussian + motion) / 2
        )
        self.assertEqual(self.outcome.record["clean_top1"], 0.9)

    def test_results_record_the_input_protocol(self):
        results = files.read_results(
            os.path.join(self.workdir, "gaussian_noise", "3")
        )
        (options,) = results["preprocessing"]
        self.assertEqual(
            options["protocol"], robustness_presets.IMAGENET_C_PROTOCOL
        )
        self.assertEqual(options["crop_fraction"], 1.0)
        self.assertEqual(options["crop_mode"], "crop_then_resize")
        # The input probe decodes again: the first cell's only.
        rates = [
            files.read_results(os.path.join(self.workdir, *cell))["throughput"][
                "input_images_per_s"
            ]
            for cell in (("gaussian_noise", "1"), ("gaussian_noise", "2"))
        ]
        self.assertIsNotNone(rates[0])
        self.assertIsNone(rates[1])


class ConfigsTest(tf.test.TestCase):
    def test_config_files_and_one_model_per_command(self):
        imagenet_c = load_config_module("imagenet_c").get_config("resnet50")
        self.assertEqual(imagenet_c.robustness.kind, "imagenet_c")
        self.assertEqual(imagenet_c.data.source, "folder")
        suite = load_config_module("robustness").get_config("resnet50")
        self.assertEqual(
            list(robustness_presets.SUITE_DATASETS),
            ["clean", "v2", "real", "sketch", "a", "r"],
        )
        self.assertEqual(
            suite.robustness.datasets.a.class_subset, "labels_in_data"
        )
        self.assertIsNone(suite.robustness.datasets.v2.class_subset)
        for builder in (
            robustness_presets.imagenet_c,
            robustness_presets.robustness,
        ):
            with self.assertRaisesRegex(
                ValueError, "evaluates one model per command"
            ):
                builder("mobilenet,resnet50")
        with self.assertRaisesRegex(
            ValueError,
            r"`config.data.path` must be set for config.data.source='folder'",
        ):
            run.run(imagenet_c, None)
        imagenet_c.data.path = self.create_tempdir().full_path
        imagenet_c.robustness.clean_results = self.create_tempdir().full_path
        with self.assertRaisesRegex(
            FileNotFoundError, "must hold a finished run's results.json"
        ):
            run.run(imagenet_c, None)


class ImageNetCResumeTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.workdir = self.create_tempdir().full_path

    def test_interrupted_command_resumes_where_it_stopped(self):
        root = self.create_tempdir().full_path
        write_cell(os.path.join(root, "noise", "shot_noise", "1"), 4, 3)
        write_cell(os.path.join(root, "noise", "shot_noise", "5"), 4, 1)
        config = use_oracle(robustness_presets.imagenet_c("mobilenet"))
        config.data.path = root
        calls = []
        run_one = run.run_one

        def interrupt_second(request, workdir, **options):
            calls.append(os.path.relpath(workdir, self.workdir))
            if len(calls) == 2:
                raise checkpoints.Interrupted("SIGTERM", 1, 4, workdir)
            return run_one(request, workdir, **options)

        self.enter_context(
            mock.patch.object(run, "run_one", side_effect=interrupt_second)
        )
        with self.assertRaises(checkpoints.Interrupted):
            run.run(config, self.workdir)
        marker = os.path.join(self.workdir, files.BULK_PROGRESS_FILE)
        self.assertTrue(os.path.exists(marker))
        self.assertFalse(
            os.path.exists(os.path.join(self.workdir, files.ROBUSTNESS_JSON))
        )
        outcome = run.run(config, self.workdir)
        # The finished cell is read back, not evaluated again.
        self.assertEqual(
            calls, ["shot_noise/1", "shot_noise/5", "shot_noise/5"]
        )
        self.assertEqual([r.top1_correct for r in outcome.bulk.rows], [3, 1])
        alexnet = corruptions.ALEXNET_TOP1_ERROR["shot_noise"]
        self.assertAlmostEqual(
            outcome.record["mce"], (0.25 + 0.75) / (alexnet[0] + alexnet[4])
        )
        self.assertFalse(os.path.exists(marker))


class ImageNetCFailureTest(tf.test.TestCase):
    def test_a_failed_cell_is_recorded_and_left_out(self):
        root = self.create_tempdir().full_path
        write_cell(os.path.join(root, "fog", "1"), 4, 3)
        write_cell(os.path.join(root, "fog", "2"), 4, 1)
        for name in os.listdir(os.path.join(root, "fog", "2", SYNSETS[0])):
            path = os.path.join(root, "fog", "2", SYNSETS[0], name)
            with open(path, "wb") as f:
                f.write(b"not an image")
        config = use_oracle(robustness_presets.imagenet_c("mobilenet"))
        config.data.path = root
        outcome = run.run(config, self.create_tempdir().full_path)
        self.assertTrue(outcome.failed)
        self.assertEqual(list(outcome.record["failed_runs"]), ["fog/2"])
        self.assertEqual(
            outcome.record["missing_severities"]["fog"], [2, 3, 4, 5]
        )
        self.assertAlmostEqual(
            outcome.record["mce"],
            0.25 / corruptions.ALEXNET_TOP1_ERROR["fog"][0],
        )


class SuiteTest(tf.test.TestCase):
    def test_suite_offline_from_local_copies_with_clean200(self):
        data = self.create_tempdir().full_path
        clean = os.path.join(data, "clean")
        # 10 clean images, 2 of each class; 8 correct (the first 8).
        write_cell(clean, 10, 8)
        # ImageNet-A: classes 1 and 3 only, 4 images, 1 correct.
        a_dir = os.path.join(data, "a")
        painted = np.array([1, 3, 1, 3])
        testing.write_class_folders(
            a_dir,
            painted,
            np.array([1, 1, 3, 3]),
            num_classes=NUM_PAINTED,
            class_names=SYNSETS,
        )
        for empty in (0, 2, 4):
            os.rmdir(os.path.join(a_dir, SYNSETS[empty]))
        config = use_oracle(robustness_presets.robustness("mobilenet"))
        datasets = config.robustness.datasets
        datasets.clean.path = clean
        datasets.a.path = a_dir
        for name in ("v2", "real", "sketch", "r"):
            datasets[name].enabled = False
        # ImageNet-C in the same command: its model built once, before the
        # datasets' runs (each of which clears the Keras session).
        imagenet_c = os.path.join(data, "imagenet_c")
        write_cell(os.path.join(imagenet_c, "fog", "1"), 4, 3)
        config.robustness.imagenet_c = imagenet_c
        workdir = self.create_tempdir().full_path
        outcome = run.run(config, workdir)

        self.assertFalse(outcome.failed)
        table = {e["dataset"]: e for e in outcome.record["datasets"]}
        self.assertEqual(list(table), ["clean", "a", "a_clean200"])
        self.assertEqual(table["clean"]["top1_correct"], 8)
        self.assertEqual(table["a"]["num_examples"], 4)
        # Painted 1 / 3 labelled 1, 1, 3, 3: the first and last agree.
        self.assertEqual(table["a"]["top1_correct"], 2)
        # The clean images labelled 1 or 3, scored on those two classes.
        clean200 = table["a_clean200"]
        labels = testing.oracle_labels(np.arange(10) % 5, 8, 5)
        kept = [i for i in range(10) if labels[i] in (1, 3)]
        self.assertEqual(clean200["num_examples"], len(kept))
        self.assertEqual(
            clean200["top1_correct"],
            sum(labels[i] == i % 5 for i in kept),
        )
        self.assertAlmostEqual(
            table["a"]["top1_drop_from_clean200"],
            clean200["top1"] - 0.5,
        )
        self.assertAlmostEqual(table["a"]["top1_drop_from_clean"], 0.8 - 0.5)
        # The relative mCE takes this command's clean top-1.
        self.assertEqual(outcome.record["clean_top1"], 0.8)
        fog = corruptions.ALEXNET_TOP1_ERROR["fog"][0]
        clean_alexnet = corruptions.ALEXNET_CLEAN_TOP1_ERROR
        self.assertAlmostEqual(
            outcome.record["relative_mce"],
            (0.25 - 0.2) / (fog - clean_alexnet),
        )
        cell = files.read_results(os.path.join(workdir, "fog", "1"))
        self.assertEqual(
            cell["preprocessing"][0]["protocol"],
            robustness_presets.IMAGENET_C_PROTOCOL,
        )
        results = files.read_results(os.path.join(workdir, "a_clean200"))
        self.assertEqual(results["model"]["class_subset_size"], 2)
        self.assertTrue(
            os.path.exists(os.path.join(workdir, files.ROBUSTNESS_MARKDOWN))
        )

    def test_offline_without_a_local_copy_fails_before_any_run(self):
        config = use_oracle(robustness_presets.robustness("mobilenet"))
        config.robustness.datasets.clean.data_dir = (
            self.create_tempdir().full_path
        )
        config.data.download = True
        with (
            mock.patch.object(
                robustness.datasets,
                "prepare_tfds",
                side_effect=robustness.datasets.DataUnavailableError("offline"),
            ),
            mock.patch.object(run, "run_one") as run_one,
        ):
            with self.assertRaisesRegex(
                robustness.datasets.DataUnavailableError, "offline"
            ):
                run.run(config, None)
        run_one.assert_not_called()
