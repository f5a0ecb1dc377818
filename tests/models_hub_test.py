"""Tests of tf_topk.models.hub and hub_presets: KerasHub presets.

One tiny randomly initialised ResNet classifier (10 classes, 16 px) is
saved with `save_to_preset` once per module, with a backbone-only preset
beside it; nothing touches the network (the offline check is patched).
"""

import json
import os
import shutil
import sys
import time
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import callbacks, evaluation, preprocessing
from tf_topk.cli import presets, requests
from tf_topk.models import building, hub, hub_presets

keras_hub = pytest.importorskip("keras_hub")

NUM_CLASSES = 10
SIZE = 16
# The ImageNet mean / std as a converter's scale and offset (per channel).
SCALE = [1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)]
OFFSET = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]
_PRESETS = {}


def tiny_presets(root: str) -> dict[str, str]:
    """{"classifier": dir, "backbone": dir}, built and saved once."""
    if _PRESETS:
        return _PRESETS
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(None, None, 3),
    )
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(SIZE, SIZE),
        scale=SCALE,
        offset=OFFSET,
        interpolation="bilinear",
    )
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=backbone,
        preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(
            image_converter=converter
        ),
        num_classes=NUM_CLASSES,
    )
    _PRESETS["classifier"] = os.path.join(root, "tiny_resnet")
    _PRESETS["backbone"] = os.path.join(root, "tiny_backbone")
    classifier.save_to_preset(_PRESETS["classifier"])
    backbone.save_to_preset(_PRESETS["backbone"])
    return _PRESETS


@pytest.fixture(scope="module", autouse=True)
def _module_presets(tmp_path_factory):
    _PRESETS.clear()
    tiny_presets(str(tmp_path_factory.mktemp("presets")))
    yield
    _PRESETS.clear()


def random_images(seed: int = 0):
    """Ten uint8 images of varied, non-square sizes (odd margins too)."""
    rng = np.random.RandomState(seed)
    sizes = [(20, 27), (31, 17), (24, 24), (19, 40), (33, 21)] * 2
    return [rng.randint(0, 256, (h, w, 3)).astype(np.uint8) for h, w in sizes]


def softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True)


def harness(model, options, images):
    """The harness: tf_topk's preprocessing, then the inference model."""
    batch = tf.stack([preprocessing.eval_image(x, options) for x in images])
    return model(batch, training=False).numpy()


class PresetTableTest(tf.test.TestCase):
    def test_aliases_are_listed_once_as_aliases(self):
        names = hub_presets.names()
        self.assertNotIn("efficientnet_el_ra_imagenet", names)
        self.assertIn("efficientnet_b1_ft_imagenet", names)
        self.assertEqual(
            hub_presets.aliases()["efficientnet_es_ra_imagenet"],
            "efficientnet_b1_ft_imagenet",
        )
        # An alias measures the weights it loads.
        alias = hub_presets.get("efficientnet_em_ra2_imagenet")
        self.assertEqual(alias.source, "timm/efficientnet_b1.ft_in1k")

    def test_figures_keep_their_conditions(self):
        figure = hub_presets.get("resnet_50_imagenet").published
        self.assertEqual((figure.top1, figure.top5), (0.81214, 0.95102))
        self.assertEqual(figure.conditions.image_size, 288)
        self.assertEqual(figure.conditions.weights, "timm/resnet50.a1_in1k")
        self.assertIn("0173a139a2c6", figure.source)
        self.assertEqual(figure.conditions.crop_fraction, 1.0)
        untraced = hub_presets.get("vit_base_patch16_224_imagenet")
        self.assertIsNone(untraced.published)

    def test_mobilenet_v3_presets_are_traced_to_timm(self):
        # convert_mobilenet_checkpoints.py's PRESET_MAP; the "21k" preset is
        # the ImageNet-1k fine-tune, a 1000-class head.
        sources = {
            name: hub_presets.get(name).source
            for name in (
                "mobilenet_v3_small_100_imagenet",
                "mobilenet_v3_large_100_imagenet",
                "mobilenet_v3_large_100_imagenet_21k",
            )
        }
        self.assertEqual(
            sources,
            {
                "mobilenet_v3_small_100_imagenet": (
                    "timm/mobilenetv3_small_100.lamb_in1k"
                ),
                "mobilenet_v3_large_100_imagenet": (
                    "timm/mobilenetv3_large_100.ra_in1k"
                ),
                "mobilenet_v3_large_100_imagenet_21k": (
                    "timm/mobilenetv3_large_100.miil_in21k_ft_in1k"
                ),
            },
        )
        in21k = hub_presets.get("mobilenet_v3_large_100_imagenet_21k")
        self.assertEqual(in21k.num_classes, 1000)
        self.assertEqual(
            (in21k.published.top1, in21k.published.top5), (0.77918, 0.92914)
        )
        self.assertEqual(in21k.timm_config.interpolation, "bilinear")

    def test_crop_fraction_is_timms_at_the_presets_size(self):
        # The CSV row of resnet50.a1_in1k is at 288 px, crop 1.0; the preset
        # runs at 224, where timm's crop_pct is 0.95.
        crops = {
            name: hub_presets.get(name).crop_fraction
            for name in (
                "resnet_50_imagenet",
                "resnet_v2_101_imagenet",
                "efficientnet_b1_ft_imagenet",
                "efficientnet_b0_ra4_e3600_r224_imagenet",
                "efficientnet_b5_sw_ft_imagenet",
                "densenet_121_imagenet",
                "csp_resnet_50_ra_imagenet",
                "darknet_53_imagenet",
                "vit_base_patch16_224_imagenet",
            )
        }
        self.assertEqual(
            crops,
            {
                "resnet_50_imagenet": 0.95,
                "resnet_v2_101_imagenet": 0.95,
                "efficientnet_b1_ft_imagenet": 0.875,
                "efficientnet_b0_ra4_e3600_r224_imagenet": 0.9,
                "efficientnet_b5_sw_ft_imagenet": 1.0,
                "densenet_121_imagenet": 0.875,
                "csp_resnet_50_ra_imagenet": 0.887,
                "darknet_53_imagenet": 0.887,
                "vit_base_patch16_224_imagenet": 0.875,
            },
        )
        resnet = hub_presets.get("resnet_50_imagenet")
        self.assertEqual(resnet.timm_config.input_size, 224)
        self.assertEqual(resnet.timm_config.interpolation, "bicubic")
        # A copy saved at timm's test size takes timm's test crop.
        self.assertEqual(resnet.crop_fraction_at(288), 1.0)
        self.assertEqual(resnet.crop_fraction_at(256), 0.95)
        self.assertEqual(
            hub_presets.get("densenet_121_imagenet").crop_fraction_at(288),
            0.875,
        )
        self.assertEqual(
            hub_presets.get("swin_tiny_patch4_window7_224").crop_fraction_at(
                224
            ),
            0.875,
        )

    def test_importing_tf_topk_does_not_import_keras_hub(self):
        code = (
            "import sys, tf_topk, tf_topk.models, tf_topk.cli.run;"
            "from tf_topk.models import hub, hub_presets;"
            "assert 'keras_hub' not in sys.modules, 'imported'"
        )
        with mock.patch.dict(os.environ, {"TF_CPP_MIN_LOG_LEVEL": "3"}):
            status = os.system(f'{sys.executable} -c "{code}"')
        self.assertEqual(status, 0)


class ProtocolTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.preset = _PRESETS["classifier"]

    def build(self, **overrides):
        request = building.ModelRequest(name="tiny", preset=self.preset)
        return building.build(
            request, overrides=overrides, data={"num_classes": NUM_CLASSES}
        )

    def test_keras_hub_protocol_reproduces_predict(self):
        built = self.build(
            crop_fraction=1.0, crop_mode="crop_then_resize", antialias=False
        )
        self.assertEqual(built.options.image_size, SIZE)
        self.assertEqual(built.options.interpolation, "bilinear")
        images = random_images()
        ours = harness(built.model, built.options, images)
        classifier = keras_hub.models.ImageClassifier.from_preset(self.preset)
        # Float input: the converter resizes without rounding, so the two
        # paths compute the same function (float32 noise only).
        theirs_float = np.concatenate(
            [
                classifier.predict(x[None].astype(np.float32), verbose=0)
                for x in images
            ]
        )
        self.assertAllClose(ours, softmax(theirs_float), atol=1e-5)
        # uint8 input (what users pass): the converter's Resizing rounds
        # the resized pixels back to uint8, at most 0.5 per pixel, i.e.
        # 0.5 * 0.0175 = 0.009 after its scale; on this net that moves a
        # probability by well under 0.01, and no decision whose margin
        # exceeds that.
        theirs = softmax(
            np.concatenate(
                [classifier.predict(x[None], verbose=0) for x in images]
            )
        )
        self.assertAllClose(ours, theirs, atol=0.01)
        top = np.sort(theirs, axis=-1)
        clear = top[:, -1] - top[:, -2] > 0.01
        np.testing.assert_array_equal(
            ours.argmax(-1)[clear], theirs.argmax(-1)[clear]
        )

    def test_default_protocol_equals_an_independent_oracle(self):
        built = self.build()
        options = built.options
        # No source checkpoint known for a local tiny preset: 0.875.
        self.assertEqual(options.crop_fraction, 0.875)
        self.assertTrue(options.antialias)
        images = random_images(1)
        ours = harness(built.model, options, images)
        classifier = keras_hub.models.ImageClassifier.from_preset(self.preset)
        expected = []
        resize = int(round(SIZE / 0.875))
        for x in images:
            h, w = x.shape[:2]
            scale = resize / min(h, w)
            nh = max(int(round(h * scale)), resize)
            nw = max(int(round(w * scale)), resize)
            big = tf.image.resize(x, (nh, nw), antialias=True).numpy()
            top, left = (nh - SIZE) // 2, (nw - SIZE) // 2
            crop = np.clip(big[top : top + SIZE, left : left + SIZE], 0, 255)
            normalised = crop * np.array(SCALE) + np.array(OFFSET)
            logits = classifier(normalised[None].astype(np.float32))
            expected.append(softmax(np.asarray(logits))[0])
        expected = np.stack(expected)
        self.assertAllClose(ours, expected, atol=1e-5)
        np.testing.assert_array_equal(
            np.argsort(-ours, axis=-1)[:, :3],
            np.argsort(-expected, axis=-1)[:, :3],
        )
        # 7 labels the oracle's top-1, 3 another class: exactly 7/10.
        labels = expected.argmax(-1)
        labels[7:] = (labels[7:] + 1) % NUM_CLASSES
        batch = tf.stack([preprocessing.eval_image(x, options) for x in images])
        dataset = tf.data.Dataset.from_tensor_slices((batch, labels)).batch(4)
        result = evaluation.evaluate(
            built.model, dataset, ks=(1,), expected_num_examples=10
        )
        self.assertEqual(result.correct[1], 7)
        # The callback takes the same model.
        evaluation_callback = callbacks.TopKEvaluation(
            dataset, ks=(1,), expected_num_examples=10
        )
        evaluation_callback.set_model(built.model)
        logs = {}
        evaluation_callback.on_epoch_end(0, logs)
        self.assertAllClose(logs["val_top1"], 0.7)

    def test_record_holds_preset_and_normalisation(self):
        built = self.build()
        record = built.record
        self.assertEqual(record.preset, self.preset)
        self.assertEqual(record.preprocess_mode, "scale_offset")
        self.assertAllClose(record.scale, SCALE)
        self.assertAllClose(record.offset, OFFSET)
        self.assertEqual(
            record.weights_file, os.path.join(self.preset, "task.weights.h5")
        )
        self.assertLen(record.weights_sha256, 64)
        self.assertIsNone(built.published)

    def test_float32_under_a_mixed_bfloat16_policy(self):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            model, _, _ = hub.build(self.preset, num_classes=NUM_CLASSES)
            classifier, _, _ = hub.load(self.preset, num_classes=NUM_CLASSES)
        finally:
            keras.config.set_dtype_policy(previous)
        self.assertEqual(classifier.compute_dtype, "float32")
        self.assertTrue(all(w.dtype == "float32" for w in classifier.weights))
        images = np.stack([x[:16, :16] for x in random_images()[:4]])
        self.assertEqual(model(images.astype(np.float32)).dtype, tf.float32)


class GuardTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.preset = _PRESETS["classifier"]

    def test_backbone_only_preset(self):
        with self.assertRaisesRegex(ValueError, "is backbone-only: it has no"):
            hub.load(_PRESETS["backbone"], num_classes=NUM_CLASSES)

    def test_task_without_head_weights(self):
        copy = os.path.join(self.create_tempdir().full_path, "no_head")
        shutil.copytree(self.preset, copy)
        os.remove(os.path.join(copy, "task.weights.h5"))
        with self.assertRaisesRegex(
            ValueError, "no task.weights.h5: its head would be randomly"
        ):
            hub.load(copy, num_classes=NUM_CLASSES)

    def test_output_count_other_than_the_label_space(self):
        with self.assertRaisesRegex(
            ValueError, "outputs 10 classes; the label space has 1000"
        ):
            hub.load(self.preset)
        with self.assertRaisesRegex(
            ValueError, r"has 11 \(1000 \+ background\)"
        ):
            hub.load(self.preset, num_classes=10, has_background_class=True)

    def test_unknown_name_lists_close_matches(self):
        with self.assertRaisesRegex(
            ValueError,
            r"Unknown KerasHub preset 'resnet_50_imagenett'.*"
            r"Close matches: \['resnet_50_imagenet'",
        ):
            hub.load("resnet_50_imagenett")

    def test_offline_remote_handle_fails_fast_naming_the_local_route(self):
        start = time.monotonic()
        with mock.patch.object(hub, "check_reachable", return_value=False):
            for handle in ("resnet_50_imagenet", "hf://timm/resnet50.a1_in1k"):
                with self.assertRaisesRegex(
                    ConnectionError, "save_to_preset.*--config.model.preset"
                ):
                    hub.load(handle)
        self.assertLess(time.monotonic() - start, 5)

    def test_num_classes_is_never_passed(self):
        request = building.ModelRequest(
            name="tiny", preset=self.preset, kwargs={"num_classes": 10}
        )
        with self.assertRaisesRegex(ValueError, "must not pass num_classes"):
            building.build(request)
        with mock.patch.object(
            keras_hub.models.ImageClassifier,
            "from_preset",
            wraps=keras_hub.models.ImageClassifier.from_preset,
        ) as from_preset:
            hub.load(self.preset, num_classes=NUM_CLASSES)
        self.assertNotIn("num_classes", from_preset.call_args.kwargs)
        self.assertEqual(from_preset.call_args.kwargs["dtype"], "float32")

    def test_missing_keras_hub_names_the_install_command(self):
        with mock.patch.dict(sys.modules, {"keras_hub": None}):
            with self.assertRaisesRegex(
                ImportError, r'pip install -e "\.\[hub\]"'
            ):
                hub.load(self.preset)


class ConfigTest(tf.test.TestCase):
    def test_unknown_config_preset_lists_close_matches(self):
        with self.assertRaisesRegex(
            ValueError,
            r"Unknown preset 'densenet_12_imagenet' in configs/keras_hub.py.*"
            r"Close matches: \['densenet_121_imagenet'",
        ):
            presets.keras_hub("densenet_12_imagenet")

    def test_hub_section_refuses_applications_fields(self):
        config = presets.keras_hub("resnet_18_imagenet")
        with self.assertRaises(AttributeError):
            config.model.alpha = 0.5
        config.model.preset = "/some/dir"
        request = requests.from_config(config).models[0]
        self.assertEqual(request.preset, "/some/dir")
        self.assertIsNone(request.spec)
        bulk = presets.keras_hub(
            "resnet_18_imagenet,resnet_18_imagenet+vgg_16_imagenet"
        )
        self.assertEqual(list(bulk.runs.run1.members), ["member0", "member1"])
        self.assertIn("preset", bulk.runs.run1.members.member1)


# End to end through run.run (two runs, one an ensemble): about 8 s.
@pytest.mark.slow
class CommandLineTest(tf.test.TestCase):
    """Bulk runs and ensembles of presets through `run.run(config)`."""

    def test_bulk_run_with_an_ensemble_of_presets(self):
        from tf_topk.cli import run
        from tf_topk.testing import files

        images = self.create_tempdir().full_path
        files.write_class_folders(
            images,
            np.arange(6) % NUM_CLASSES,
            np.arange(6) % NUM_CLASSES,
            num_classes=NUM_CLASSES,
            fmt="png",
        )
        config = presets.keras_hub(
            "resnet_18_imagenet,resnet_18_imagenet+resnet_50_imagenet"
        )
        preset = _PRESETS["classifier"]
        config.runs.run0.preset = preset
        config.runs.run1.members.member0.preset = preset
        config.runs.run1.members.member1.preset = preset
        config.data.source = "folder"
        config.data.path = images
        config.data.num_classes = NUM_CLASSES
        config.data.batch_size = 4
        config.eval.ks = (1, 3)
        config.eval.progress = "none"
        workdir = self.create_tempdir().full_path
        outcome = run.run(config, workdir)

        self.assertFalse(outcome.failed)
        with open(os.path.join(workdir, "run0", "results.json")) as f:
            single = json.load(f)
        with open(os.path.join(workdir, "run1", "results.json")) as f:
            pair = json.load(f)
        model = single["model"]
        self.assertEqual(model["preset"], preset)
        self.assertEqual(model["preprocess_mode"], "scale_offset")
        self.assertAllClose(model["scale"], SCALE)
        self.assertEqual(single["preprocessing"][0]["crop_fraction"], 0.875)
        # The same weights twice: the ensemble's decisions are the model's.
        self.assertEqual(single["top1_correct"], pair["top1_correct"])
        self.assertEqual(pair["num_examples"], 6)
        self.assertLen(pair["members"], 2)
