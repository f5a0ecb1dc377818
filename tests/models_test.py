"""Tests for tf_topk.models."""

from __future__ import annotations

import os
import shutil
import urllib.error
from pathlib import Path
from unittest import mock

import conftest
import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import models

WEIGHTS = conftest.ASSETS / "weights"
IMAGENET = conftest.ASSETS / "imagenet"

# Every ImageNet classifier the issue lists, by registry key.
EXPECTED_NAMES = [
    "convnext_base", "convnext_large", "convnext_small", "convnext_tiny",
    "convnext_xlarge", "densenet121", "densenet169", "densenet201",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5",
    "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_b0",
    "efficientnet_v2_b1", "efficientnet_v2_b2", "efficientnet_v2_b3",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s",
    "inception_resnet_v2", "inception_v3", "mobilenet", "mobilenet_v2",
    "mobilenet_v3_large", "mobilenet_v3_small", "nasnet_large",
    "nasnet_mobile", "resnet101", "resnet101_v2", "resnet152",
    "resnet152_v2", "resnet50", "resnet50_v2", "vgg16", "vgg19", "xception",
]  # fmt: skip

# Smallest input Keras accepts for each (its `min_size`); 32 elsewhere.
MIN_SIZES = {"xception": 71, "inception_v3": 75, "inception_resnet_v2": 75}
# Over ~2 s each to build on 2 CPU cores: run by CI, not by default.
SLOW_BUILDS = {
    "convnext_base", "convnext_large", "convnext_xlarge", "densenet169",
    "densenet201", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s",
    "inception_resnet_v2", "nasnet_large", "nasnet_mobile", "resnet101",
    "resnet101_v2", "resnet152", "resnet152_v2",
}  # fmt: skip
RESCALING_LAYERS = {"Rescaling", "Normalization"}


def _build_params(slow: bool) -> list[tuple[str, str]]:
    return [
        (name, name) for name in EXPECTED_NAMES if (name in SLOW_BUILDS) == slow
    ]


def _pixel_model(num_outputs: int, image_size: int, name: str) -> keras.Model:
    """Returns the first `num_outputs` pixel values: hand-made logits."""
    inputs = keras.Input((image_size, image_size, 3))
    flat = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Lambda(lambda x: x[:, :num_outputs])(flat)
    return keras.Model(inputs, outputs, name=name)


def _pixels(values: np.ndarray, image_size: int) -> np.ndarray:
    """Writes [B, C] values into [B, S, S, 3] images for `_pixel_model`."""
    batch, width = values.shape
    images = np.zeros((batch, image_size * image_size * 3), np.float32)
    images[:, :width] = values
    return images.reshape((batch, image_size, image_size, 3))


def _counts(probabilities, labels) -> tuple[int, int]:
    probabilities = tf.convert_to_tensor(probabilities, tf.float32)
    labels = tf.convert_to_tensor(labels, tf.int32)
    return tuple(
        int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, probabilities, k),
                                  tf.int32)))
        for k in (1, 5)
    )  # fmt: skip


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _check_build(test: tf.test.TestCase, name: str) -> None:
    spec = models.get_spec(name)
    size = MIN_SIZES.get(name, 32)
    model = models.build(name, weights=None, image_size=size, classes=7)
    test.assertEqual(model.name, name)
    test.assertEqual(model.input_shape, (None, size, size, 3))
    images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3))
    probabilities = model(images.astype("float32"))
    test.assertEqual(probabilities.dtype, tf.float32)
    test.assertEqual(probabilities.shape, (2, 7))
    test.assertAllClose(tf.reduce_sum(probabilities, axis=-1), [1.0, 1.0])
    # A model that rescales inside ("none") holds a rescaling layer;
    # one fed preprocess_input'ed data must not.
    raw = model.get_layer(index=2)
    layer_types = {type(layer).__name__ for layer in raw._flatten_layers()}
    test.assertEqual(
        bool(layer_types & RESCALING_LAYERS),
        spec.preprocess_mode == "none",
        sorted(layer_types & RESCALING_LAYERS),
    )


class RegistryTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_names_cover_every_keras_imagenet_classifier(self):
        self.assertEqual(models.names(), EXPECTED_NAMES)
        self.assertLen(EXPECTED_NAMES, 40)

    def test_unknown_name_lists_the_valid_ones(self):
        with self.assertRaisesRegex(ValueError, "must be one of") as caught:
            models.get_spec("resnet51")
        self.assertEqual(
            str(caught.exception),
            f"Argument `name` must be one of {EXPECTED_NAMES}. Received: "
            "name='resnet51'",
        )

    def test_get_spec_is_case_insensitive(self):
        self.assertEqual(models.get_spec("MobileNet_V2").name, "mobilenet_v2")

    def test_name_of_wrong_type(self):
        with self.assertRaisesRegex(
            TypeError, r"Argument `name` must be a string. Received: name=3 "
        ):
            models.get_spec(3)

    @parameterized.named_parameters(
        ("xception", "xception", 299),
        ("inception_v3", "inception_v3", 299),
        ("inception_resnet_v2", "inception_resnet_v2", 299),
        ("nasnet_large", "nasnet_large", 331),
        ("nasnet_mobile", "nasnet_mobile", 224),
        ("resnet50", "resnet50", 224),
        ("efficientnet_b0", "efficientnet_b0", 224),
        ("efficientnet_b4", "efficientnet_b4", 380),
        ("efficientnet_b7", "efficientnet_b7", 600),
        ("efficientnet_v2_b0", "efficientnet_v2_b0", 224),
        ("efficientnet_v2_b1", "efficientnet_v2_b1", 240),
        ("efficientnet_v2_b2", "efficientnet_v2_b2", 260),
        ("efficientnet_v2_b3", "efficientnet_v2_b3", 300),
        ("efficientnet_v2_s", "efficientnet_v2_s", 384),
        ("efficientnet_v2_m", "efficientnet_v2_m", 480),
        ("efficientnet_v2_l", "efficientnet_v2_l", 480),
        ("convnext_xlarge", "convnext_xlarge", 224),
    )
    def test_input_size_follows_keras(self, name, size):
        self.assertEqual(models.get_spec(name).input_size, size)

    @parameterized.named_parameters(
        ("resnet50", "resnet50", 0.875, "bilinear"),
        ("mobilenet", "mobilenet", 0.875, "bilinear"),
        ("efficientnet_b3", "efficientnet_b3", 0.875, "bicubic"),
        ("efficientnet_v2_b0", "efficientnet_v2_b0", 224 / 256, "bilinear"),
        ("efficientnet_v2_b3", "efficientnet_v2_b3", 300 / 332, "bilinear"),
        ("efficientnet_v2_s", "efficientnet_v2_s", 1.0, "bilinear"),
        ("convnext_tiny", "convnext_tiny", 0.875, "bicubic"),
    )
    def test_reference_crop_and_interpolation(self, name, crop, method):
        spec = models.get_spec(name)
        self.assertAlmostEqual(spec.crop_fraction, crop)
        self.assertEqual(spec.interpolation, method)

    def test_every_spec_is_complete(self):
        for name in models.names():
            spec = models.get_spec(name)
            self.assertEqual(spec.num_classes, 1000, name)
            self.assertEqual(spec.output, "softmax", name)
            self.assertIn(spec.preprocess_mode, models.PREPROCESS_MODES)
            self.assertIn(spec.interpolation, models.INTERPOLATIONS)
            self.assertTrue(0.5 < spec.crop_fraction <= 1.0, name)
            self.assertIsNotNone(spec.top1, name)
            self.assertTrue(0.6 < spec.top1 < 0.9, name)
            if spec.top5 is not None:
                self.assertTrue(spec.top1 < spec.top5 < 1.0, name)
            self.assertIs(
                spec.constructor, getattr(keras.applications, spec.keras_name)
            )

    @parameterized.named_parameters(
        ("v1_0.75_224", "mobilenet", 0.75, 224, (0.684, 0.882)),
        ("v1_0.25_224", "mobilenet", 0.25, 224, (0.498, 0.742)),
        ("v1_1.0_224", "mobilenet", 1.0, None, (0.709, 0.899)),
        ("v1_0.5_128", "mobilenet", 0.5, 128, (0.563, 0.794)),
        ("v1_0.75_96", "mobilenet", 0.75, 96, None),
        ("v2_1.4_224", "mobilenet_v2", 1.4, 224, (0.750, 0.925)),
        ("v2_0.35_96", "mobilenet_v2", 0.35, 96, (0.455, 0.704)),
        ("v2_1.0_224", "mobilenet_v2", 1.0, 224, (0.718, 0.910)),
        ("resnet50", "resnet50", 1.0, None, (0.749, 0.921)),
        ("resnet50_160", "resnet50", 1.0, 160, None),
        ("convnext_no_top5", "convnext_tiny", 1.0, None, None),
        ("efficientnet_b7", "efficientnet_b7", 1.0, 600, (0.843, 0.970)),
    )
    def test_published(self, name, alpha, image_size, expected):
        spec = models.get_spec(name)
        self.assertEqual(
            spec.published(alpha=alpha, image_size=image_size), expected
        )

    def test_mobilenet_tables_are_complete(self):
        v1 = models.get_spec("mobilenet")
        for alpha in (1.0, 0.75, 0.5, 0.25):
            for size in (224, 192, 160, 128):
                self.assertIsNotNone(v1.published(alpha=alpha, image_size=size))
        v2 = models.get_spec("mobilenet_v2")
        for alpha in (1.0, 0.75, 0.5, 0.35):
            for size in (224, 192, 160, 128, 96):
                self.assertIsNotNone(v2.published(alpha=alpha, image_size=size))

    @parameterized.named_parameters(
        (name, name) for name in EXPECTED_NAMES
    )  # fmt: skip
    def test_preprocessing_matches_the_keras_module(self, name):
        spec = models.get_spec(name)
        rng = np.random.default_rng(0)
        images = rng.uniform(0.0, 255.0, size=(2, 4, 5, 3)).astype("float32")
        images[0, 0, 0] = (0.0, 0.0, 255.0)
        reference = np.asarray(spec.module.preprocess_input(images.copy()))
        ours = models.InputPreprocessing(spec.preprocess_mode)(images)
        self.assertAllClose(ours, reference, atol=1e-5)
        ours_in_graph = tf.function(
            lambda x: models.InputPreprocessing(spec.preprocess_mode)(x)
        )(images)
        self.assertAllClose(ours_in_graph, reference, atol=1e-5)
        if spec.preprocess_mode == "none":
            self.assertIsNone(spec.preprocess_input)
        else:
            self.assertIs(spec.preprocess_input, spec.module.preprocess_input)
        # The mode is told by the range it produces from 0..255 inputs.
        low, high = float(reference.min()), float(reference.max())
        blue = reference[0, 0, 0]
        if spec.preprocess_mode == "tf":
            self.assertAllClose(blue, [-1.0, -1.0, 1.0])
        elif spec.preprocess_mode == "caffe":
            self.assertAllClose(blue, [255 - 103.939, -116.779, -123.68])
        elif spec.preprocess_mode == "torch":
            self.assertAllClose(
                blue, [-0.485 / 0.229, -0.456 / 0.224, 0.594 / 0.225]
            )
        else:
            self.assertAllClose(blue, [0.0, 0.0, 255.0])
            self.assertGreater(high - low, 200.0)

    @parameterized.named_parameters(_build_params(slow=False))
    def test_builds_without_weights(self, name):
        _check_build(self, name)


# A mark on a parameterized method does not reach the generated tests; one
# on the class does.
@pytest.mark.slow
class SlowBuildTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(_build_params(slow=True))
    def test_builds_without_weights(self, name):
        _check_build(self, name)


class InferenceModelTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def _background_case(self):
        # 10 examples over 1000 classes + background at index 0, which has
        # the highest logit everywhere. Correct after dropping it: top-1 on
        # 0..6, top-5 on 0..8.
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 1000, size=10)
        logits = rng.normal(size=(10, 1001)).astype("float32")
        logits[:, 0] = 50.0
        for i, label in enumerate(labels):
            column = label + 1
            others = [c for c in range(1, 1001) if c != column]
            if i < 7:
                logits[i, column] = 10.0
            elif i < 9:
                logits[i, column] = 8.0
                logits[i, others[:2]] = (9.0, 9.5)
            else:
                logits[i, column] = -10.0
        return logits, labels

    @parameterized.named_parameters(
        ("logits", "logits"), ("softmax", "softmax")
    )
    def test_background_class_dropped(self, output):
        logits, labels = self._background_case()
        values = logits if output == "logits" else _softmax(logits)
        raw = _pixel_model(1001, 19, "slim")
        model = models.inference_model(
            raw, output=output, has_background_class=True
        )
        probabilities = model(_pixels(values, 19))
        self.assertEqual(probabilities.shape, (10, 1000))
        self.assertEqual(_counts(probabilities, labels), (7, 9))
        self.assertAllClose(
            probabilities, _softmax(logits[:, 1:]), rtol=1e-4, atol=1e-7
        )
        # Without dropping it, every top-1 is the background.
        naive = models.inference_model(raw, output=output)(_pixels(values, 19))
        self.assertEqual(_counts(naive[:, 1:], labels)[0], 7)
        self.assertEqual(_counts(naive, labels), (0, 0))

    def _subset_case(self):
        # 200 classes (every 5th), labels inside. Out-of-subset classes
        # 1, 2, 3, 4, 6 score 30 everywhere; subset class 995 scores 12 on
        # example 8. Within the subset: top-1 on 0..7, top-5 on 0..8.
        subset = list(range(0, 1000, 5))
        rng = np.random.default_rng(1)
        labels = rng.choice(subset[:-1], size=10, replace=False)
        logits = rng.normal(size=(10, 1000)).astype("float32")
        logits[:, [1, 2, 3, 4, 6]] = 30.0
        logits[np.arange(10), labels] = 10.0
        logits[8, 995] = 12.0
        logits[9, labels[9]] = -10.0
        return logits, labels, subset

    @parameterized.named_parameters(
        ("logits_indices", "logits", False),
        ("softmax_indices", "softmax", False),
        ("logits_synsets", "logits", True),
        ("softmax_synsets", "softmax", True),
    )
    def test_class_subset(self, output, as_synsets):
        logits, labels, subset = self._subset_case()
        values = logits if output == "logits" else _softmax(logits)
        if as_synsets:
            synsets = models.imagenet_synsets()
            class_subset = [synsets[i] for i in reversed(subset)]
        else:
            class_subset = subset
        raw = _pixel_model(1000, 19, "raw")
        model = models.inference_model(
            raw, output=output, class_subset=class_subset
        )
        probabilities = model(_pixels(values, 19)).numpy()
        self.assertEqual(_counts(probabilities, labels), (8, 9))
        outside = np.setdiff1d(np.arange(1000), subset)
        self.assertAllEqual(probabilities[:, outside], np.zeros((10, 800)))
        self.assertAllClose(probabilities.sum(axis=-1), np.ones(10))
        self.assertAllClose(
            probabilities[:, subset], _softmax(logits[:, subset]), rtol=1e-4
        )
        unmasked = models.inference_model(raw, output=output)
        self.assertEqual(_counts(unmasked(_pixels(values, 19)), labels), (0, 0))

    def test_subset_with_background_class(self):
        logits = np.zeros((1, 1001), np.float32)
        logits[0, 0] = 9.0  # background
        logits[0, 1] = 5.0  # class 0, outside the subset
        logits[0, 3] = 1.0  # class 2
        logits[0, 4] = 2.0  # class 3
        model = models.inference_model(
            _pixel_model(1001, 19, "raw"),
            output="logits",
            has_background_class=True,
            class_subset=[2, 3],
        )
        probabilities = model(_pixels(logits, 19)).numpy()[0]
        expected = np.zeros(1000)
        expected[[2, 3]] = _softmax(np.array([1.0, 2.0]))
        self.assertAllClose(probabilities, expected)

    def test_synsets_are_the_sorted_imagenet_classes(self):
        synsets = models.imagenet_synsets()
        self.assertLen(synsets, 1000)
        self.assertEqual(synsets, sorted(synsets))
        self.assertEqual(synsets[0], "n01440764")
        self.assertEqual(synsets[281], "n02123045")  # tabby
        if (IMAGENET / "synsets.txt").exists():
            self.assertEqual(
                synsets, (IMAGENET / "synsets.txt").read_text().split()
            )

    @parameterized.named_parameters(
        (
            "unknown_synset",
            ["n01440764", "n99999999"],
            ValueError,
            "Argument `class_subset` holds synsets that are not among the "
            "1000 ImageNet classes: ['n99999999']. Received 2 synsets",
        ),
        (
            "out_of_range",
            [3, 1000],
            ValueError,
            "Argument `class_subset` must hold indices in [0, 1000). "
            "Received: [1000]",
        ),
        (
            "repeated",
            [3, 3],
            ValueError,
            "Argument `class_subset` must not repeat a class. Received 2 "
            "entries for 1 classes",
        ),
        (
            "empty",
            [],
            ValueError,
            "Argument `class_subset` must name at least one class. "
            "Received: class_subset=[]",
        ),
        (
            "mixed",
            [3, "n01440764"],
            TypeError,
            "Argument `class_subset` must hold only int class indices or "
            "only synset strings. Received: [3, 'n01440764']",
        ),
        (
            "string",
            "n01440764",
            TypeError,
            "Argument `class_subset` must be a list of class indices or "
            "synsets. Received: class_subset='n01440764'",
        ),
    )
    def test_bad_class_subset(self, class_subset, error, message):
        raw = _pixel_model(1000, 19, "raw")
        with self.assertRaises(error) as caught:
            models.inference_model(raw, class_subset=class_subset)
        self.assertEqual(str(caught.exception), message)

    def test_bad_arguments(self):
        raw = _pixel_model(5, 2, "raw")
        with self.assertRaises(ValueError) as caught:
            models.inference_model(raw, output="probs")
        self.assertEqual(
            str(caught.exception),
            "Argument `output` must be one of ['logits', 'softmax']. "
            "Received: output='probs'",
        )
        with self.assertRaises(ValueError) as caught:
            models.inference_model(raw, preprocess_input="inception")
        self.assertEqual(
            str(caught.exception),
            "Argument `preprocess_input` must be one of ['caffe', 'none', "
            "'tf', 'torch'] or a callable. Received: "
            "preprocess_input='inception'",
        )
        with self.assertRaises(TypeError) as caught:
            models.inference_model(np.zeros(3))
        self.assertEqual(
            str(caught.exception),
            "Argument `model` must be a keras.Model. Received: ndarray",
        )
        headless = keras.Model(
            raw.inputs, keras.layers.Reshape((5, 1))(raw.outputs[0])
        )
        with self.assertRaisesRegex(ValueError, "include_top=True"):
            models.inference_model(headless)

    @parameterized.named_parameters(
        ("mode", "tf"),
        ("callable", keras.applications.mobilenet.preprocess_input),
    )
    def test_preprocessing_reaches_the_model(self, preprocess_input):
        # The oracle undoes [-1, 1] scaling: 9 of 10 constant images are
        # read as their painted class only if "tf" preprocessing ran.
        from tf_topk import testing

        raw = testing.oracle_model(5, scale=127.5, shift=127.5)
        model = models.inference_model(
            raw, preprocess_input=preprocess_input, output="logits",
            image_size=8,
        )  # fmt: skip
        classes = np.arange(10) % 5
        images = np.stack(
            [testing.constant_image(c, 5, height=8, width=8) for c in classes]
        ).astype("float32")
        labels = classes.copy()
        labels[9] = (labels[9] + 1) % 5
        self.assertEqual(_counts(model(images), labels)[0], 9)
        unprocessed = models.inference_model(raw, output="logits", image_size=8)
        self.assertLess(_counts(unprocessed(images), labels)[0], 9)

    def test_serialisable_when_preprocessing_is_a_mode(self):
        dense = keras.layers.Dense(
            5, kernel_initializer=keras.initializers.GlorotUniform(seed=0)
        )
        inputs = keras.Input((2, 2, 3))
        raw = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
        model = models.inference_model(
            raw, preprocess_input="caffe", output="logits", class_subset=[1, 3]
        )
        path = os.path.join(self.create_tempdir().full_path, "m.keras")
        model.save(path)
        images = np.random.default_rng(0).uniform(0, 255, (4, 2, 2, 3))
        restored = keras.saving.load_model(path)
        self.assertAllClose(restored(images), model(images))


class EnsembleTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_weighted_average_of_two_members_with_own_sizes(self):
        first = np.array(
            [[0.5, 0.4, 0.1, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4, 0.0]], np.float32
        )
        second = np.array(
            [[0.0, 0.6, 0.4, 0.0, 0.0], [0.0, 0.0, 0.1, 0.1, 0.8]], np.float32
        )
        members = [
            models.inference_model(_pixel_model(5, 2, "a"), name="a"),
            models.inference_model(_pixel_model(5, 3, "b"), name="b"),
        ]
        equal = models.ensemble(members)
        self.assertEqual(equal.input_shape, [(None, 2, 2, 3), (None, 3, 3, 3)])
        inputs = [_pixels(first, 2), _pixels(second, 3)]
        self.assertAllClose(equal(inputs), (first + second) / 2)
        # Top-1 classes: first (0, 3), second (1, 4), equal mean (1, 4),
        # 3:1 mean (1, 3).
        labels = np.array([1, 4])
        self.assertEqual(_counts(first, labels)[0], 0)
        self.assertEqual(_counts(equal(inputs), labels)[0], 2)
        weighted = models.ensemble(members, weights=[3, 1], name="weighted")
        self.assertEqual(weighted.name, "weighted")
        self.assertAllClose(weighted(inputs), (3 * first + second) / 4)
        self.assertAllClose(
            weighted(inputs)[1], [0.075, 0.15, 0.25, 0.325, 0.2]
        )
        self.assertEqual(_counts(weighted(inputs), labels)[0], 1)
        only_second = models.ensemble(members, weights=[0, 2])
        self.assertAllClose(only_second(inputs), second)

    @parameterized.named_parameters(
        (
            "length",
            [1.0],
            "Argument `weights` must have one entry per member (2). "
            "Received: weights=[1.0]",
        ),
        (
            "negative",
            [1.0, -1.0],
            "Argument `weights` must be finite and non-negative. Received: "
            "weights=[1.0, -1.0]",
        ),
        (
            "nan",
            [1.0, float("nan")],
            "Argument `weights` must be finite and non-negative. Received: "
            "weights=[1.0, nan]",
        ),
        (
            "all_zero",
            [0, 0],
            "Argument `weights` must not be all zero. Received: "
            "weights=[0.0, 0.0]",
        ),
    )
    def test_bad_weights(self, weights, message):
        members = [
            models.inference_model(_pixel_model(5, 2, "a"), name="a"),
            models.inference_model(_pixel_model(5, 2, "b"), name="b"),
        ]
        with self.assertRaises(ValueError) as caught:
            models.ensemble(members, weights=weights)
        self.assertEqual(str(caught.exception), message)

    def test_bad_members(self):
        a = models.inference_model(_pixel_model(5, 2, "a"), name="a")
        with self.assertRaises(ValueError) as caught:
            models.ensemble([])
        self.assertEqual(
            str(caught.exception),
            "Argument `members` must hold at least one model. Received: "
            "members=[]",
        )
        with self.assertRaises(TypeError) as caught:
            models.ensemble(a)
        self.assertEqual(
            str(caught.exception),
            "Argument `members` must be a list of keras.Model. Received: "
            "Functional",
        )
        with self.assertRaises(ValueError) as caught:
            models.ensemble(
                [a, models.inference_model(_pixel_model(4, 2, "c"), name="c")]
            )
        self.assertEqual(
            str(caught.exception),
            "Argument `members` must all return the same number of "
            "classes. Received: [5, 4]",
        )

    def test_members_with_one_name(self):
        first = np.array([[0.5, 0.4, 0.1, 0.0, 0.0]], np.float32)
        second = np.array([[0.0, 0.6, 0.4, 0.0, 0.0]], np.float32)
        a = models.inference_model(_pixel_model(5, 2, "a"), name="same")
        b = models.inference_model(_pixel_model(5, 2, "b"), name="same")
        doubled = models.ensemble([a, b, a], weights=[1, 1, 2])
        self.assertEqual(
            [layer.name for layer in doubled.layers[3:6]],
            ["same_0", "same_1", "same_2"],
        )
        inputs = [_pixels(first, 2), _pixels(second, 2), _pixels(first, 2)]
        self.assertAllClose(doubled(inputs), (3 * first + second) / 4)


class LoadTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def _tiny(self):
        return models.load(
            "mobilenet", weights=None, alpha=0.25, input_shape=(32, 32, 3),
            classes=5,
        )  # fmt: skip

    def _images(self):
        return np.random.default_rng(2).uniform(-1, 1, (3, 32, 32, 3))

    def test_keras3_weights_file(self):
        model = self._tiny()
        path = os.path.join(self.create_tempdir().full_path, "w.weights.h5")
        model.save_weights(path)
        keras.utils.set_random_seed(7)
        loaded = models.load(
            "mobilenet", weights=path, alpha=0.25, input_shape=(32, 32, 3),
            classes=5,
        )  # fmt: skip
        self.assertAllClose(loaded(self._images()), model(self._images()))

    def test_wrong_architecture_for_weights_file(self):
        model = self._tiny()
        path = os.path.join(self.create_tempdir().full_path, "w.weights.h5")
        model.save_weights(path)
        with self.assertRaisesRegex(
            ValueError, r"Could not load weights .* into MobileNet\(alpha=0.5"
        ):
            models.load(
                "mobilenet", weights=path, alpha=0.5,
                input_shape=(32, 32, 3), classes=5,
            )  # fmt: skip

    def test_whole_keras_model(self):
        model = self._tiny()
        path = os.path.join(self.create_tempdir().full_path, "m.keras")
        model.save(path)
        for name in (None, "custom", "mobilenet"):
            loaded = models.load(name, weights=path)
            self.assertAllClose(loaded(self._images()), model(self._images()))
        with self.assertRaises(ValueError) as caught:
            models.load(None, weights=path, alpha=0.25)
        self.assertEqual(
            str(caught.exception),
            "Arguments ['alpha'] configure a constructor and cannot apply "
            f"to a whole saved model. Received: weights={path!r} with "
            "{'alpha': 0.25}",
        )

    def test_saved_model_directory(self):
        model = self._tiny()
        path = os.path.join(self.create_tempdir().full_path, "exported")
        model.export(path, verbose=False)
        loaded = models.load("custom", weights=path)
        self.assertEqual(loaded.input_shape, (None, 32, 32, 3))
        self.assertAllClose(
            loaded(self._images()), model(self._images()), atol=1e-6
        )
        wrapped = models.inference_model(loaded, preprocess_input="tf")
        self.assertEqual(wrapped.output_shape, (None, 5))

    def test_directory_that_is_no_saved_model(self):
        path = self.create_tempdir().full_path
        with self.assertRaises(ValueError) as caught:
            models.load(None, weights=path)
        self.assertEqual(
            str(caught.exception),
            "Argument `weights` is a directory without saved_model.pb, so "
            f"not a TF SavedModel. Received: weights={path!r}",
        )

    def test_factory(self):
        model = models.load(
            None, weights="tf_topk.testing:oracle_model", num_classes=4
        )
        self.assertEqual(model.name, "oracle")
        self.assertEqual(model.output_shape, (None, 4))
        with self.assertRaisesRegex(
            ValueError, "names no callable 'nothing' in module 'tf_topk'"
        ):
            models.load(None, weights="tf_topk:nothing")
        with self.assertRaises(TypeError) as caught:
            models.load(None, weights="tf_topk.testing:class_intensity",
                        class_index=1, num_classes=2)  # fmt: skip
        self.assertEqual(
            str(caught.exception),
            "The factory 'tf_topk.testing:class_intensity' must return a "
            "keras.Model. Received: int",
        )

    def test_random_weights(self):
        model = self._tiny()
        self.assertEqual(model.output_shape, (None, 5))

    def test_missing_path(self):
        missing = os.path.join(self.create_tempdir().full_path, "no.h5")
        with self.assertRaises(FileNotFoundError) as caught:
            models.load("mobilenet", weights=missing)
        self.assertEqual(
            str(caught.exception),
            "Argument `weights` names a path that does not exist. "
            f"Received: weights={missing!r}",
        )

    def test_bad_weights_arguments(self):
        with self.assertRaises(TypeError) as caught:
            models.load("mobilenet", weights=3)
        self.assertEqual(
            str(caught.exception),
            "Argument `weights` must be 'imagenet', None, a path or "
            "'package.module:factory'. Received: weights=3 of type int",
        )
        with self.assertRaises(ValueError) as caught:
            models.load(None, weights=None)
        self.assertEqual(
            str(caught.exception),
            "Argument `name` must be a registry model when `weights` is "
            "'imagenet', None or a weights file (a whole saved model or a "
            "factory may go without). Received: name=None, weights=None",
        )
        text = self.create_tempfile("w.txt", content="x").full_path
        with self.assertRaisesRegex(
            ValueError, "must be a `.weights.h5`, `.h5`, `.hdf5` or `.keras`"
        ):
            models.load("mobilenet", weights=text)

    def test_imagenet_offline_names_the_file_to_place(self):
        home = self.create_tempdir().full_path
        refused = urllib.error.URLError("network is unreachable")
        with (
            mock.patch.dict(os.environ, {"KERAS_HOME": home}),
            mock.patch(
                "keras.src.utils.file_utils.urlretrieve", side_effect=refused
            ),
            self.assertRaises(FileNotFoundError) as caught,
        ):
            models.load("mobilenet", alpha=0.75)
        message = str(caught.exception)
        target = os.path.join(home, "models", "mobilenet_7_5_224_tf.h5")
        self.assertIn(f"Offline, place the file as {target} ", message)
        self.assertIn(
            "or pass the local file: load('mobilenet', "
            "weights='/path/to/mobilenet_7_5_224_tf.h5').",
            message,
        )
        self.assertStartsWith(
            message,
            "The ImageNet weights of 'mobilenet' are not in the Keras cache "
            "and could not be downloaded from https://",
        )


def _require_assets(test: tf.test.TestCase, *paths: Path) -> None:
    for path in paths:
        if not path.exists():
            test.skipTest(f"Real assets absent: {path} (see ../shared/assets)")


def _resize_and_crop(path: Path, size: int = 224) -> tf.Tensor:
    """Shorter side to size / 0.875, centre crop: the assets README way."""
    image = tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3)
    height, width = image.shape[0], image.shape[1]
    scale = round(size / 0.875) / min(height, width)
    new_size = (round(height * scale), round(width * scale))
    image = tf.image.resize(
        tf.cast(image, tf.float32), new_size, method="bilinear", antialias=True
    )
    top = (new_size[0] - size) // 2
    left = (new_size[1] - size) // 2
    return image[top : top + size, left : left + size, :]


class RealWeightsTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        ("0.75_keras3", 0.75, "mobilenet_0.75_224.weights.h5"),
        ("0.75_keras2", 0.75, "mobilenet_0.75_224_legacy.h5"),
        ("0.25_keras3", 0.25, "mobilenet_0.25_224.weights.h5"),
        ("0.25_keras2", 0.25, "mobilenet_0.25_224_legacy.h5"),
    )
    def test_each_file_loads_and_sees_the_tabby(self, alpha, file_name):
        tabby = IMAGENET / "sample_1000" / "n02123045_tabby.JPEG"
        _require_assets(self, WEIGHTS / file_name, tabby)
        model = models.build(
            "mobilenet", weights=WEIGHTS / file_name, alpha=alpha
        )
        expected_params = {0.75: 2_601_976, 0.25: 475_544}[alpha]
        self.assertEqual(model.count_params(), expected_params)
        probabilities = model(_resize_and_crop(tabby)[None])[0]
        top1 = int(tf.argmax(probabilities))
        # Both widths: 285 (Egyptian cat), then 281 (tabby) in the top 5.
        self.assertBetween(top1, 281, 285)  # the domestic cats
        self.assertIn(281, tf.math.top_k(probabilities, 5).indices)

    def test_imagenet_from_a_seeded_keras_cache(self):
        legacy = WEIGHTS / "mobilenet_0.75_224_legacy.h5"
        _require_assets(self, legacy)
        home = self.create_tempdir().full_path
        os.makedirs(os.path.join(home, "models"))
        shutil.copy(
            legacy, os.path.join(home, "models", "mobilenet_7_5_224_tf.h5")
        )
        offline = urllib.error.URLError("tests never download")
        with (
            mock.patch.dict(os.environ, {"KERAS_HOME": home}),
            mock.patch(
                "keras.src.utils.file_utils.urlretrieve", side_effect=offline
            ),
        ):
            cached = models.load("mobilenet", alpha=0.75)
        direct = models.load("mobilenet", weights=legacy, alpha=0.75)
        for ours, theirs in zip(cached.weights, direct.weights, strict=True):
            self.assertAllEqual(ours, theirs)

    def test_ensemble_on_val_pjpeg100(self):  # About 5 s on 2 CPU cores.
        folder = IMAGENET / "val_pjpeg100"
        _require_assets(
            self, folder / "labels.tsv",
            WEIGHTS / "mobilenet_0.75_224.weights.h5",
            WEIGHTS / "mobilenet_0.25_224.weights.h5",
        )  # fmt: skip
        rows = [
            line.split("\t")
            for line in (folder / "labels.tsv").read_text().splitlines()
            if line.strip()
        ]
        self.assertLen(rows, 100)
        members = [
            models.build(
                "mobilenet", alpha=alpha,
                weights=WEIGHTS / f"mobilenet_{alpha}_224.weights.h5",
            )
            for alpha in (0.75, 0.25)
        ]  # fmt: skip
        model = models.ensemble(members)
        labels = np.array([int(row[1]) for row in rows])
        images = tf.stack([_resize_and_crop(folder / row[0]) for row in rows])
        probabilities = model.predict([images, images], batch_size=25,
                                      verbose=0)  # fmt: skip
        top1, top5 = _counts(probabilities, labels)
        # ../shared/assets/README.md: ensemble 59 / 82 on val_pjpeg100.
        self.assertBetween(top1, 58, 60)
        self.assertBetween(top5, 81, 83)


if __name__ == "__main__":
    tf.test.main()
