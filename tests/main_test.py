"""Tests of the command line, the config files and the results files."""

import csv
import glob
import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import main, models, testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")
NUM_CLASSES = 5


def load_config_module(name):
    spec = importlib.util.spec_from_file_location(
        f"config_{name}", os.path.join(CONFIGS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_smoke_images(directory, num_examples=10, num_correct=7):
    predicted = np.arange(num_examples) % NUM_CLASSES
    labels = testing.oracle_labels(predicted, num_correct, NUM_CLASSES)
    testing.write_class_folders(
        directory, predicted, labels, num_classes=NUM_CLASSES
    )
    return labels


def run_cli(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "tf_topk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


class RunTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.images = self.create_tempdir().full_path
        self.labels = write_smoke_images(self.images)
        self.config = load_config_module("smoke").get_config()
        self.config.data.path = self.images

    def test_smoke_run_exact_accuracy_and_files_agree(self):
        workdir = self.create_tempdir().full_path
        result = main.run(self.config, workdir)
        self.assertEqual(result.num_examples, 10)
        self.assertEqual(result.correct, {1: 7, 3: result.correct[3], 5: 10})

        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["num_examples"], 10)
        self.assertEqual(record["top1_correct"], 7)
        self.assertAlmostEqual(record["top1"], 0.7)
        self.assertEqual(record["top5_correct"], 10)
        self.assertEqual(record["top3_correct"], result.correct[3])
        self.assertEqual(record["data"]["num_examples"], 10)
        self.assertEqual(record["data"]["source"], "folder")
        self.assertEqual(record["model"]["name"], "oracle")
        self.assertEqual(record["preprocessing"][0]["image_size"], 32)
        self.assertEqual(record["versions"]["tensorflow"], tf.__version__)
        self.assertEqual(record["config"]["data"]["batch_size"], 4)

        with open(os.path.join(workdir, "per_class.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertLen(rows, NUM_CLASSES)
        counts = [int(row["count"]) for row in rows]
        self.assertEqual(counts, np.bincount(self.labels).tolist())
        self.assertEqual(sum(int(row["correct"]) for row in rows), 7)
        self.assertNotEmpty(
            glob.glob(os.path.join(workdir, "tensorboard", "events.*"))
        )
        self.assertEmpty(glob.glob(os.path.join(workdir, "*.tmp-*")))

    def test_multi_crop_from_config(self):
        self.config.data.num_crops = 10
        result = main.run(self.config, None)
        self.assertEqual(result.num_examples, 10)
        self.assertEqual(result.correct[1], 7)
        self.assertEqual(result.metadata["preprocessing"][0]["num_crops"], 10)

    @parameterized.named_parameters(
        (
            "source",
            "data.source",
            "tfrecords",
            r"`config.data.source` must be one of \['files', 'folder', "
            r"'tfds', 'tfrecord'\]\. Received: 'tfrecords'",
        ),
        (
            "distribution",
            "distribution",
            "gpus",
            r"`config.distribution` must be one of \['mirrored', "
            r"'multi_worker', 'none', 'tpu'\]\. Received: 'gpus'",
        ),
        (
            "path",
            "data.path",
            None,
            r"`config.data.path` must be set for config.data.source="
            r"'folder'\. Received: None",
        ),
    )
    def test_bad_config_values(self, field, value, message):
        section, _, key = field.rpartition(".")
        target = self.config[section] if section else self.config
        target[key] = value
        with self.assertRaisesRegex(ValueError, message):
            main.run(self.config, None)

    def test_missing_data_path(self):
        self.config.data.path = os.path.join(self.images, "missing")
        with self.assertRaisesRegex(FileNotFoundError, "missing"):
            main.run(self.config, None)


class ConfigFilesTest(parameterized.TestCase):
    @parameterized.parameters("imagenet_v2", "imagenet_real", "imagenet")
    def test_every_preset_loads(self, name):
        module = load_config_module(name)
        for preset in models.names():
            config = module.get_config(preset)
            self.assertEqual(config.model.name, preset)
            self.assertIsNotNone(config.data.source)

    @parameterized.parameters("imagenet_a", "imagenet_r")
    def test_subset_configs(self, name):
        config = load_config_module(name).get_config("resnet50")
        self.assertEqual(config.model.class_subset, "labels_in_data")
        self.assertEqual(config.data.split, "test")

    def test_ensemble_preset(self):
        config = load_config_module("imagenet").get_config(
            "mobilenet+mobilenet_v2"
        )
        self.assertEqual(config.members.member0.name, "mobilenet")
        self.assertEqual(config.members.member1.name, "mobilenet_v2")

    def test_unknown_preset_lists_valid_ones(self):
        module = load_config_module("imagenet")
        with self.assertRaisesRegex(
            ValueError, r"Unknown preset 'resnet5'.*'resnet50'"
        ):
            module.get_config("resnet5")

    def test_smoke_config_loads(self):
        config = load_config_module("smoke").get_config()
        self.assertEqual(config.data.num_classes, NUM_CLASSES)

    def test_every_config_file_loads(self):
        for path in glob.glob(os.path.join(CONFIGS, "*.py")):
            name = os.path.basename(path)[:-3]
            if name.startswith("_"):
                continue
            module = load_config_module(name)
            config = module.get_config(None if name == "smoke" else "mobilenet")
            self.assertTrue(config.is_locked, name)


class CommandLineTest(tf.test.TestCase):
    """The real `python -m tf_topk` through absl flags."""

    def test_flagfile_with_override(self):
        images = self.create_tempdir().full_path
        write_smoke_images(images)
        workdir = self.create_tempdir().full_path
        flagfile = os.path.join(self.create_tempdir().full_path, "x.flags")
        with open(flagfile, "w") as f:
            f.write(
                f"--config={CONFIGS}/smoke.py\n"
                f"--config.data.path={images}\n"
                "--config.data.batch_size=3\n"
                f"--workdir={workdir}\n"
            )
        completed = run_cli(f"--flagfile={flagfile}")
        self.assertEqual(completed.returncode, 0, completed.stderr[-3000:])
        self.assertIn("70.00%", completed.stdout)
        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["top1_correct"], 7)
        self.assertEqual(record["config"]["data"]["batch_size"], 3)

        # Bad input: an unknown field and an extra argument.
        completed = run_cli(
            f"--flagfile={flagfile}", "--config.data.bogus_field=1"
        )
        self.assertNotEqual(completed.returncode, 0)
        self.assertIn("bogus_field", completed.stderr)
        completed = run_cli(f"--flagfile={flagfile}", "extra")
        self.assertNotEqual(completed.returncode, 0)
        self.assertIn("Unexpected arguments: ['extra']", completed.stderr)


if __name__ == "__main__":
    tf.test.main()
