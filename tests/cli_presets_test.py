"""Tests of tf_topk.cli.presets and of the config files built with it."""

import glob
import os

import tensorflow as tf
from absl.testing import parameterized
from cli_main_test import CONFIGS, NUM_CLASSES, load_config_module
from ml_collections import config_dict

from tf_topk import models
from tf_topk.cli import presets


class ImagenetPresetTest(tf.test.TestCase, parameterized.TestCase):
    def test_one_model(self):
        config = presets.imagenet("ResNet50")
        self.assertTrue(config.is_locked)
        self.assertEqual(config.preset, "ResNet50")
        self.assertEqual(config.model.name, "resnet50")
        self.assertEqual(config.model.weights, "imagenet")
        self.assertIsNone(config.model.alpha)
        self.assertEqual(config.members.to_dict(), {})
        self.assertEqual(config.runs.to_dict(), {})
        self.assertIsNone(config.ensemble_weights)
        self.assertEqual(config.data.source, "tfds")
        self.assertEqual(config.eval.ks, (1, 5))
        self.assertEqual(config.distribution, "none")
        self.assertEqual(
            presets.model_sections(config), {"config.model": config.model}
        )

    def test_ensemble(self):
        config = presets.imagenet("mobilenet+resnet50")
        self.assertEqual(config.model.to_dict(), {"name": "mobilenet+resnet50"})
        self.assertEqual(
            [m.name for m in config.members.values()], ["mobilenet", "resnet50"]
        )
        self.assertEqual(
            list(presets.model_sections(config)),
            ["config.members.member0", "config.members.member1"],
        )

    def test_required_preset(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^configs/imagenet\.py needs a preset, e\.g\. "
            r"--config=configs/imagenet\.py:resnet50\. Valid presets: \[",
        ):
            presets.imagenet(None)

    def test_unknown_preset_lists_the_valid_ones(self):
        with self.assertRaises(ValueError) as raised:
            presets.imagenet("resnet5")
        self.assertEqual(
            str(raised.exception),
            "Unknown preset 'resnet5' in configs/imagenet.py:resnet5. Valid "
            f"presets: {models.names()} (join with '+' for an ensemble, ',' "
            "for several runs).",
        )

    def test_commas_make_runs_and_a_preset_may_repeat(self):
        config = presets.imagenet("mobilenet,resnet50,mobilenet+resnet50")
        self.assertEqual(list(config.runs), ["run0", "run1", "run2"])
        self.assertEqual(
            config.model.name, "mobilenet,resnet50,mobilenet+resnet50"
        )
        self.assertEqual(config.runs.run0.weights, "imagenet")
        self.assertEqual(config.runs.run2.name, "mobilenet+resnet50")
        self.assertEqual(config.runs.run2.members.member1.name, "resnet50")
        twice = presets.imagenet("mobilenet,mobilenet")
        twice.runs.run1.alpha = 0.25
        self.assertEqual(
            presets.run_overrides(twice.runs.run1), {"alpha": 0.25}
        )
        self.assertEqual(presets.run_overrides(twice.runs.run0), {})

    def test_run_config_is_a_one_run_config(self):
        config = presets.imagenet("mobilenet,mobilenet+resnet50")
        config.runs.run0.alpha = 0.5
        config.runs.run1.ensemble_weights = "2,1"
        config.data.batch_size = 8
        first = presets.run_config(config, "run0")
        self.assertEqual(first.model.alpha, 0.5)
        self.assertEqual(first.runs.to_dict(), {})
        self.assertEqual(first.data.batch_size, 8)
        self.assertEqual(
            presets.model_sections(first), {"config.runs.run0": first.model}
        )
        second = presets.run_config(config, "run1")
        self.assertEqual(second.model.name, "mobilenet+resnet50")
        self.assertEqual(second.ensemble_weights, "2,1")
        self.assertEqual(
            list(presets.model_sections(second)),
            [
                "config.runs.run1.members.member0",
                "config.runs.run1.members.member1",
            ],
        )
        self.assertEqual(
            presets.run_overrides(config.runs.run1),
            {"ensemble_weights": "2,1"},
        )

    def test_model_level_override_is_refused_in_bulk(self):
        config = presets.imagenet("mobilenet,resnet50")
        with self.assertRaises(AttributeError):
            config.model.alpha = 0.5

    def test_unknown_preset_in_a_list(self):
        with self.assertRaisesRegex(
            ValueError, r"^Unknown preset 'resnet5' in configs/imagenet\.py:"
        ):
            presets.imagenet("mobilenet,resnet5")

    def test_tfds_variant_sets_the_class_subset_of_every_run(self):
        config = presets.tfds_variant(
            "mobilenet,mobilenet+resnet50",
            name="imagenet_a",
            split="test",
            class_subset="labels_in_data",
        )
        self.assertEqual(config.runs.run0.class_subset, "labels_in_data")
        for member in config.runs.run1.members.values():
            self.assertEqual(member.class_subset, "labels_in_data")

    def test_smoke_runs_argument(self):
        config = load_config_module("smoke").get_config("2")
        self.assertEqual(list(config.runs), ["run0", "run1"])
        with self.assertRaisesRegex(
            ValueError, r"^configs/smoke\.py takes no preset, or a number"
        ):
            load_config_module("smoke").get_config("resnet50")


class BulkPresetTest(tf.test.TestCase):
    def test_as_bulk(self):
        config = presets.imagenet("mobilenet")
        sections = [presets.model_section("mobilenet")] * 2
        bulk = presets.as_bulk(config, sections)
        self.assertTrue(bulk.is_locked)
        self.assertEqual(list(bulk.runs), ["run0", "run1"])
        self.assertEqual(bulk.model.to_dict(), {"name": "mobilenet,mobilenet"})
        # The sections are copies: a run's override is its own.
        bulk.runs.run1.alpha = 0.5
        self.assertIsNone(bulk.runs.run0.alpha)

    def test_run_config_of_an_unknown_run(self):
        config = presets.imagenet("mobilenet,resnet50")
        with self.assertRaisesRegex(
            ValueError,
            r"^`config\.runs` has no run 'run7'\. Valid runs: "
            r"\['run0', 'run1'\]$",
        ):
            presets.run_config(config, "run7")

    def test_run_overrides_of_an_ensemble_run(self):
        config = presets.imagenet("mobilenet+resnet50,mobilenet")
        config.runs.run0.members.member1.image_size = 160
        self.assertEqual(
            presets.run_overrides(config.runs.run0),
            {"member1.image_size": 160},
        )


class TfdsVariantTest(tf.test.TestCase):
    def test_sets_the_data_and_no_published_comparison(self):
        config = presets.tfds_variant(
            "resnet50", name="imagenet_v2/matched-frequency", split="test"
        )
        self.assertEqual(config.data.source, "tfds")
        self.assertEqual(config.data.name, "imagenet_v2/matched-frequency")
        self.assertEqual(config.data.split, "test")
        self.assertEqual(config.eval.shortfall_tolerance, 1.0)
        self.assertIsNone(config.model.class_subset)

    def test_class_subset_of_every_member(self):
        config = presets.tfds_variant(
            "mobilenet+resnet50",
            name="imagenet_r",
            split="test",
            class_subset="labels_in_data",
        )
        for member in config.members.values():
            self.assertEqual(member.class_subset, "labels_in_data")


class SectionsTest(tf.test.TestCase):
    def test_required_values_are_placeholders(self):
        section = presets.model_section("mobilenet")
        self.assertIsNone(section.weights)
        section.weights = "imagenet"
        with self.assertRaises(TypeError):
            section.alpha = "wide"  # A float placeholder.

    def test_sections_are_config_dicts(self):
        for section in (
            presets.data_section(),
            presets.preprocess_section(),
            presets.eval_section(),
        ):
            self.assertIsInstance(section, config_dict.ConfigDict)


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
            preset = {"smoke": None, "keras_hub": "resnet_50_imagenet"}
            config = module.get_config(preset.get(name, "mobilenet"))
            self.assertTrue(config.is_locked, name)


if __name__ == "__main__":
    tf.test.main()
