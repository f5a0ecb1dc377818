"""Tests of tf_topk.cli.requests: a config's sections as typed records."""

import dataclasses

import tensorflow as tf
from absl.testing import parameterized
from cli_main_test import load_config_module

from tf_topk.cli import presets, requests
from tf_topk.models import building


def smoke_config():
    config = load_config_module("smoke").get_config()
    config.data.path = "/data/images"
    return config


class FromConfigTest(tf.test.TestCase):
    def test_one_model(self):
        request = requests.from_config(smoke_config())
        self.assertEqual(request.name, "oracle")
        self.assertIsNone(request.bulk_run)
        self.assertIsNone(request.ensemble_weights)
        self.assertEqual(request.distribution, "none")
        (model,) = request.models
        self.assertIs(requests.ModelRequest, building.ModelRequest)
        self.assertEqual(
            model,
            building.ModelRequest(
                name="oracle",
                weights="tf_topk.testing:oracle_model",
                image_size=32,
                preprocess_mode="none",
                output="logits",
                kwargs={"num_classes": 5},
                path="config.model",
            ),
        )
        self.assertEqual(request.data.source, "folder")
        self.assertEqual(request.data.path, "/data/images")
        self.assertEqual(request.data.batch_size, 4)
        self.assertEqual(request.eval.ks, (1, 3, 5))
        self.assertEqual(request.eval.progress, "none")
        self.assertTrue(request.eval.resume)
        self.assertEqual(request.config["data"]["batch_size"], 4)
        self.assertEqual(request.config["model"]["name"], "oracle")

    def test_records_are_frozen(self):
        request = requests.from_config(smoke_config())
        with self.assertRaises(dataclasses.FrozenInstanceError):
            request.data.batch_size = 8

    def test_data_arguments_and_preprocessing_overrides(self):
        config = smoke_config()
        config.data.num_crops = 10
        config.preprocess.crop_fraction = 1.0
        request = requests.from_config(config)
        arguments = request.data.build_arguments()
        self.assertEqual(arguments["source"], "folder")
        self.assertEqual(arguments["num_classes"], 5)
        self.assertNotIn("num_crops", arguments)
        self.assertEqual(
            request.preprocessing_overrides(),
            {
                "crop_fraction": 1.0,
                "interpolation": None,
                "antialias": True,
                "crop_mode": "resize_then_crop",
                "num_crops": 10,
            },
        )

    def test_ensemble_members_name_their_paths(self):
        config = presets.imagenet("mobilenet+resnet50")
        config.members.member1.alpha = 0.5
        config.ensemble_weights = "2,1"
        request = requests.from_config(config)
        self.assertEqual(request.name, "mobilenet+resnet50")
        self.assertEqual(
            [m.path for m in request.models],
            ["config.members.member0", "config.members.member1"],
        )
        self.assertEqual(request.models[1].alpha, 0.5)
        self.assertEqual(request.models[0].kwargs, {})
        self.assertEqual(request.ensemble_weights, (2.0, 1.0))

    def test_a_bulk_run_names_its_run(self):
        config = presets.imagenet("mobilenet,mobilenet+resnet50")
        request = requests.from_config(presets.run_config(config, "run1"))
        self.assertEqual(request.bulk_run, "run1")
        self.assertEqual(
            [m.path for m in request.models],
            [
                "config.runs.run1.members.member0",
                "config.runs.run1.members.member1",
            ],
        )
        first = requests.from_config(presets.run_config(config, "run0"))
        self.assertEqual(first.models[0].path, "config.runs.run0")


class ChecksTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        (
            "source",
            "data.source",
            "tfrecords",
            "`config.data.source` must be one of ['files', 'folder', "
            "'tfds', 'tfrecord']. Received: 'tfrecords'",
        ),
        (
            "distribution",
            "distribution",
            "gpus",
            "`config.distribution` must be one of ['mirrored', "
            "'multi_worker', 'none', 'tpu']. Received: 'gpus'",
        ),
        (
            "path",
            "data.path",
            None,
            "`config.data.path` must be set for config.data.source="
            "'folder'. Received: None",
        ),
        (
            "ties",
            "eval.ties",
            "strict",
            "`config.eval.ties` must be one of ['exclusive', 'inclusive']. "
            "Received: 'strict'",
        ),
        (
            "ensemble_weights_of_one_model",
            "ensemble_weights",
            "2,1",
            "`config.ensemble_weights` applies to ensembles only (a preset "
            "such as 'mobilenet+resnet50'). Received: '2,1' for one model",
        ),
    )
    def test_bad_values(self, field, value, message):
        config = smoke_config()
        section, _, key = field.rpartition(".")
        target = config[section] if section else config
        target[key] = value
        with self.assertRaises(ValueError) as raised:
            requests.from_config(config)
        self.assertEqual(str(raised.exception), message)

    @parameterized.named_parameters(
        (
            "not_numbers",
            "2,x",
            "`config.ensemble_weights` must be comma-separated numbers, one "
            "per member. Received: '2,x'",
        ),
        (
            "one_per_member",
            "1,2,3",
            "`config.ensemble_weights` must have 2 values, one per member. "
            "Received: '1,2,3'",
        ),
    )
    def test_bad_ensemble_weights(self, value, message):
        config = presets.imagenet("mobilenet+resnet50")
        config.ensemble_weights = value
        with self.assertRaises(ValueError) as raised:
            requests.from_config(config)
        self.assertEqual(str(raised.exception), message)

    def test_tfds_needs_no_path(self):
        request = requests.from_config(presets.imagenet("mobilenet"))
        self.assertIsNone(request.data.path)
        self.assertEqual(request.data.name, "imagenet2012")


if __name__ == "__main__":
    tf.test.main()
