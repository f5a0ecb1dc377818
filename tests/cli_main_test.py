"""Tests of tf_topk.cli.main and tf_topk.cli.run: the command line, one run
from its config to its results files."""

import csv
import glob
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from unittest import mock

import conftest
import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import diagnostics, imagenet, testing
from tf_topk.cli import run

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


def expected_correct(images_dir, k):
    """Top-k correct of the oracle on a class-folder tree, by numpy alone.

    The oracle's logit for class c is -(mean pixel - intensity_c)^2 and
    resizing or cropping keeps a constant image's mean, so this needs
    neither tf_topk's pipeline nor its metrics. The smoke model's logits
    go through a float32 softmax (the inference wrapper), where every class
    but the painted one underflows to 0: those ties count as correct
    (tf.math.in_top_k's inclusive rule) wherever they straddle the k-th
    place.
    """
    centers = np.array(
        [testing.class_intensity(c, NUM_CLASSES) for c in range(NUM_CLASSES)],
        np.float64,
    )
    correct = 0
    for label, folder in enumerate(sorted(os.listdir(images_dir))):
        for name in os.listdir(os.path.join(images_dir, folder)):
            encoded = tf.io.read_file(os.path.join(images_dir, folder, name))
            mean = tf.io.decode_image(encoded).numpy().astype(float).mean()
            logits = (-((mean - centers) ** 2)).astype(np.float32)
            scores = np.exp(logits - logits.max())
            scores /= scores.sum()
            correct += int(np.sum(scores > scores[label]) < k)
    return correct


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
        result = run.run(self.config, workdir)
        self.assertEqual(result.num_examples, 10)
        top3 = expected_correct(self.images, 3)
        self.assertEqual(top3, 10)  # The 3 wrong ones tie at 0 below.
        self.assertEqual(result.correct, {1: 7, 3: top3, 5: 10})
        # Those are decided by ties: wrong under the exclusive rule.
        self.assertEqual(result.ties[3], 3)

        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["num_examples"], 10)
        self.assertEqual(record["top1_correct"], 7)
        self.assertAlmostEqual(record["top1"], 0.7)
        self.assertEqual(record["top5_correct"], 10)
        self.assertEqual(record["top3_correct"], top3)
        self.assertEqual(record["data"]["num_examples"], 10)
        self.assertEqual(record["data"]["source"], "folder")
        self.assertEqual(record["data"]["skipped"], [])
        self.assertEqual(record["model"]["name"], "oracle")
        self.assertEqual(record["preprocessing"][0]["image_size"], 32)
        self.assertEqual(record["versions"]["tensorflow"], tf.__version__)
        self.assertEqual(record["config"]["data"]["batch_size"], 4)

        with open(os.path.join(workdir, "per_class.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertLen(rows, NUM_CLASSES)
        counts = [int(row["count"]) for row in rows]
        # Folder names (sorted) name the classes.
        self.assertEqual(
            [row["class_name"] for row in rows],
            sorted(os.listdir(self.images)),
        )
        self.assertEqual(counts, np.bincount(self.labels).tolist())
        self.assertEqual(sum(int(row["correct"]) for row in rows), 7)
        self.assertNotEmpty(
            glob.glob(os.path.join(workdir, "tensorboard", "events.*"))
        )
        self.assertEmpty(glob.glob(os.path.join(workdir, "*.tmp-*")))

    def test_corrupt_file_is_skipped_and_listed_on_request(self):
        corrupt = os.path.join(
            self.images, sorted(os.listdir(self.images))[0], "corrupt.jpg"
        )
        with open(corrupt, "wb") as f:
            f.write(b"not an image")
        self.config.data.skip_corrupt = True
        workdir = self.create_tempdir().full_path
        result = run.run(self.config, workdir)
        self.assertEqual(result.num_examples, 10)
        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["data"]["num_skipped"], 1)
        self.assertIn("corrupt.jpg", record["data"]["skipped"][0])

    def test_multi_crop_from_config(self):
        self.config.data.num_crops = 10
        result = run.run(self.config, None)
        self.assertEqual(result.num_examples, 10)
        self.assertEqual(result.correct[1], 7)
        self.assertEqual(result.metadata["preprocessing"][0]["num_crops"], 10)

    def test_ensemble_from_config(self):
        # Two oracle members (one ending in softmax): their averaged
        # probabilities still put the painted class first.
        with self.config.unlocked():
            member0 = self.config.model.copy_and_resolve_references()
            member1 = self.config.model.copy_and_resolve_references()
            member1.output = "softmax"
            member1.kwargs.softmax = True
            self.config.members = {"member0": member0, "member1": member1}
            self.config.ensemble_weights = "2,1"
        result = run.run(self.config, None)
        self.assertEqual(result.correct[1], 7)
        self.assertLen(result.metadata["members"], 2)

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
        (
            "ties",
            "eval.ties",
            "strict",
            r"`config.eval.ties` must be one of \['exclusive', 'inclusive'\]"
            r"\. Received: 'strict'",
        ),
        (
            "ensemble_weights_of_one_model",
            "ensemble_weights",
            "2,1",
            r"`config.ensemble_weights` applies to ensembles only \(a preset "
            r"such as 'mobilenet\+resnet50'\)\. Received: '2,1' for one model",
        ),
    )
    def test_bad_config_values(self, field, value, message):
        section, _, key = field.rpartition(".")
        target = self.config[section] if section else self.config
        target[key] = value
        with self.assertRaisesRegex(ValueError, message):
            run.run(self.config, None)

    def test_shortfall_diagnosed_only_beyond_the_interval(self):
        # 7/10 has the 95% interval [0.397, 0.892]: a published 0.8 lies
        # inside it (noise), a published 1.0 does not.
        self.config.eval.published_top1 = 0.8
        result = run.run(self.config, None)
        # Figures from the config come without their conditions.
        self.assertEqual(
            result.metadata["published"],
            {"top1": 0.8, "top5": None, "source": "config", "conditions": None},
        )
        self.assertEqual(result.metadata["diagnostics"], [])

        self.config.eval.published_top1 = 1.0
        result = run.run(self.config, None)
        causes = result.metadata["diagnostics"]
        self.assertIn("30.0% below the published figure", causes[-1])
        self.assertFalse([c for c in causes if c.startswith("CHECKED")])

    def test_a_failing_diagnosis_only_warns_and_results_are_written(self):
        self.config.eval.published_top1 = 1.0
        workdir = self.create_tempdir().full_path
        with mock.patch.object(
            diagnostics, "shortfall_causes", side_effect=RuntimeError("boom")
        ):
            with self.assertLogs(level="WARNING") as logs:
                result = run.run(self.config, workdir)
        self.assertIn("The shortfall diagnosis failed (boom)", logs.output[0])
        self.assertEqual(result.correct[1], 7)
        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["top1_correct"], 7)
        self.assertIn("30.0% below", record["diagnostics"][-1])

    def test_files_source_defaults_to_the_ilsvrc_ground_truth(self):
        # One rule, in datasets: ILSVRC-named files without a labels file
        # are labelled by the ILSVRC2012 validation ground truth.
        numbers = [1, 2, 3, 4]
        synsets = imagenet.synsets()
        truth = [
            synsets.index(imagenet.validation_labels()[n - 1]) for n in numbers
        ]
        directory = self.create_tempdir().full_path
        testing.write_ilsvrc_files(
            directory,
            truth,
            truth,
            num_classes=1000,
            numbers=numbers,
            fmt="png",
        )
        with self.config.unlocked():
            self.config.model.kwargs.num_classes = 1000
        self.config.data.source = "files"
        self.config.data.path = os.path.join(directory, "images")
        self.config.data.num_classes = 1000
        result = run.run(self.config, None)
        self.assertEqual(result.num_examples, 4)
        # Painted as their true class, so every label was read right.
        self.assertEqual(result.correct[1], 4)
        self.assertIsNone(result.metadata["data"]["labels_file"])

    def test_ensemble_preset_refuses_a_model_level_override(self):
        config = load_config_module("imagenet").get_config(
            "mobilenet+mobilenet_v2"
        )
        with self.assertRaisesRegex(AttributeError, "alpha"):
            config.model.alpha = 0.5
        config.members.member0.alpha = 0.5  # The per-member field.

    def test_missing_data_path(self):
        self.config.data.path = os.path.join(self.images, "missing")
        with self.assertRaisesRegex(FileNotFoundError, "missing"):
            run.run(self.config, None)


class DistributedRunTest(tf.test.TestCase):
    def test_mirrored_over_three_logical_cpus(self):
        conftest.logical_cpus(3)
        images = self.create_tempdir().full_path
        write_smoke_images(images)
        config = load_config_module("smoke").get_config()
        config.data.path = images
        config.distribution = "mirrored"
        result = run.run(config, None)
        self.assertEqual(result.num_examples, 10)
        self.assertEqual(result.correct[1], 7)
        self.assertLen(result.metadata["devices"], 3)

    def test_mirrored_run_short_of_the_published_figure_writes_results(self):
        # Used to crash in the shortfall diagnosis (it got the per-worker
        # dataset function) and write nothing.
        conftest.logical_cpus(2)
        images = self.create_tempdir().full_path
        write_smoke_images(images)
        config = load_config_module("smoke").get_config()
        config.data.path = images
        config.distribution = "mirrored"
        config.eval.published_top1 = 1.0
        workdir = self.create_tempdir().full_path
        result = run.run(config, workdir)
        self.assertEqual(result.correct[1], 7)
        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["top1_correct"], 7)
        self.assertIn(
            "30.0% below the published figure", record["diagnostics"][-1]
        )

    @pytest.mark.slow
    def test_two_worker_command_line_counts_once_and_chief_writes(self):
        images = self.create_tempdir().full_path
        write_smoke_images(images)
        ports = conftest.free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        workdirs = [self.create_tempdir().full_path for _ in ports]
        processes = []
        for index, workdir in enumerate(workdirs):
            tf_config = {
                "cluster": cluster,
                "task": {"type": "worker", "index": index},
            }
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tf_topk",
                        f"--config={CONFIGS}/smoke.py",
                        f"--config.data.path={images}",
                        "--config.distribution=multi_worker",
                        f"--workdir={workdir}",
                    ],
                    cwd=REPO,
                    env={
                        **os.environ,
                        "TF_CPP_MIN_LOG_LEVEL": "3",
                        "TF_CONFIG": json.dumps(tf_config),
                    },
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        logs = conftest.communicate_all(processes, 300)
        for process, log in zip(processes, logs):
            self.assertEqual(process.returncode, 0, log[-3000:])
        self.assertEqual(os.listdir(workdirs[1]), [])  # Not the chief.
        with open(os.path.join(workdirs[0], "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["num_examples"], 10)
        self.assertEqual(record["top1_correct"], 7)
        self.assertEqual(record["distribution"], "multi_worker")
        # Both workers print the same global table, and each read and
        # decoded only its half of the images.
        for index, log in enumerate(logs):
            self.assertIn("7 / 10", log)
            self.assertIn(
                f"Input pipeline {index} of 2 reads 5 of the 10 examples.", log
            )


class ReadmeTest(tf.test.TestCase):
    """The README's two set-up commands stay runnable."""

    def test_first_lines_are_the_main_job_and_the_tests(self):
        with open(os.path.join(REPO, "README.md")) as f:
            text = f.read()
        block = text.split("```bash\n", 1)[1].split("```", 1)[0]
        main_job, tests = block.strip().splitlines()
        self.assertIn("pip install", main_job)
        config = re.search(r"--config=(\S+?):(\S+)", main_job)
        self.assertIsNotNone(config, main_job)
        module = load_config_module(os.path.basename(config[1])[:-3])
        self.assertEqual(module.get_config(config[2]).model.name, config[2])
        self.assertEqual(
            tests, 'pip install -e ".[test]" && python -m pytest -q tests'
        )


class CommandLineTest(tf.test.TestCase):
    """The real `python -m tf_topk` through absl flags."""

    @pytest.mark.slow
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
        self.assertIn(
            "config.data has no field 'bogus_field'. Valid fields of "
            "config.data: ['batch_size', ",
            completed.stderr,
        )
        completed = run_cli(
            f"--config={CONFIGS}/imagenet.py:mobilenet+mobilenet_v2",
            "--config.model.alpha=0.5",
        )
        self.assertNotEqual(completed.returncode, 0)
        self.assertIn(
            "config.model has no field 'alpha'. Valid fields of config.model: "
            "['name']",
            completed.stderr,
        )
        completed = run_cli(f"--flagfile={flagfile}", "extra")
        self.assertNotEqual(completed.returncode, 0)
        self.assertIn("Unexpected arguments: ['extra']", completed.stderr)


@pytest.mark.slow
class RealDataTest(tf.test.TestCase):
    """Acceptance: the real command line on real ImageNet images.

    ../shared/assets/README.md measured MobileNet alpha 0.75 on val_pjpeg100
    at 65 / 83 (top-1 / top-5 correct of 100) with resize 256, centre crop
    224, bilinear with antialias: the MobileNet spec's preprocessing.
    """

    EXPECTED = {"top1_correct": 65, "top5_correct": 83}

    def setUp(self):
        super().setUp()
        if not (conftest.ASSETS / "MANIFEST.tsv").is_file():
            self.skipTest(
                f"Real assets absent at {conftest.ASSETS}: the acceptance "
                "run needs weights/ and imagenet/ from ../shared/assets."
            )
        self.imagenet = conftest.ASSETS / "imagenet"
        self.weights = conftest.ASSETS / "weights"

    def run_mobilenet(self, weights, env=None, data_flags=None):
        workdir = self.create_tempdir().full_path
        data_flags = data_flags or (
            "--config.data.source=files",
            f"--config.data.path={self.imagenet / 'val_pjpeg100'}",
            f"--config.data.labels_file="
            f"{self.imagenet / 'validation_labels.txt'}",
        )
        completed = run_cli(
            f"--config={CONFIGS}/imagenet.py:mobilenet",
            "--config.model.alpha=0.75",
            f"--config.model.weights={weights}",
            *data_flags,
            "--config.data.batch_size=50",
            f"--workdir={workdir}",
            env=env,
        )
        self.assertEqual(completed.returncode, 0, completed.stderr[-3000:])
        with open(os.path.join(workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["num_examples"], 100)
        for key, expected in self.EXPECTED.items():
            self.assertAllClose(record[key], expected, atol=1, msg=key)
        return record, completed.stdout

    def test_local_weights_file(self):
        weights = self.weights / "mobilenet_0.75_224.weights.h5"
        record, stdout = self.run_mobilenet(weights)
        self.assertEqual(record["preprocessing"][0]["image_size"], 224)
        self.assertEqual(
            record["preprocessing"][0]["interpolation"], "bilinear"
        )
        self.assertEqual(record["published"]["top1"], 0.684)
        self.assertStartsWith(record["published"]["source"], "TF-slim")
        self.assertEqual(
            record["published"]["conditions"],
            {
                "image_size": 224,
                "crop_fraction": 0.875,
                "num_crops": 1,
                "weights": "TF-slim mobilenet_v1_0.75_224",
            },
        )
        self.assertIn("tf_topk: mobilenet", stdout)

    def test_imagenet_weights_from_a_seeded_keras_cache(self):
        keras_home = self.create_tempdir().full_path
        os.makedirs(os.path.join(keras_home, "models"))
        # The name keras.applications.MobileNet(alpha=0.75) downloads.
        os.symlink(
            self.weights / "mobilenet_0.75_224_legacy.h5",
            os.path.join(keras_home, "models", "mobilenet_7_5_224_tf.h5"),
        )
        record, _ = self.run_mobilenet(
            "imagenet", env={"KERAS_HOME": keras_home}
        )
        # The file Keras read, and its hash, are on record.
        self.assertEqual(
            record["model"]["weights_file"],
            os.path.join(keras_home, "models", "mobilenet_7_5_224_tf.h5"),
        )
        digest = hashlib.sha256(
            (self.weights / "mobilenet_0.75_224_legacy.h5").read_bytes()
        ).hexdigest()
        self.assertEqual(record["model"]["weights_sha256"], digest)

    def test_tfds_imagenet2012_prepared_from_a_manual_dir(self):
        # tfds' real imagenet2012 builder, prepared offline from a manual
        # dir holding only the validation archive (here: 100 images).
        manual_dir = self.create_tempdir().full_path
        with tarfile.open(
            os.path.join(manual_dir, "ILSVRC2012_img_val.tar"), "w"
        ) as tar:
            for path in sorted((self.imagenet / "val_pjpeg100").glob("*.JPEG")):
                tar.add(path, arcname=path.name)
        data_dir = self.create_tempdir().full_path
        record, _ = self.run_mobilenet(
            self.weights / "mobilenet_0.75_224.weights.h5",
            data_flags=(
                "--config.data.source=tfds",
                "--config.data.name=imagenet2012",
                "--config.data.split=validation",
                f"--config.data.data_dir={data_dir}",
                f"--config.data.manual_dir={manual_dir}",
            ),
        )
        self.assertEqual(record["data"]["source"], "tfds")
        self.assertEqual(record["data"]["name"], "imagenet2012")


if __name__ == "__main__":
    tf.test.main()
