"""Tests for tf_topk.models.wrappers: inference models and their layers."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from models_helpers import IMAGENET, counts, pixel_model, pixels, softmax

from tf_topk import imagenet, models


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
        values = logits if output == "logits" else softmax(logits)
        raw = pixel_model(1001, 19, "slim")
        model = models.inference_model(
            raw, output=output, has_background_class=True
        )
        probabilities = model(pixels(values, 19))
        self.assertEqual(probabilities.shape, (10, 1000))
        self.assertEqual(counts(probabilities, labels), (7, 9))
        self.assertAllClose(
            probabilities, softmax(logits[:, 1:]), rtol=1e-4, atol=1e-7
        )
        # Without dropping it, every top-1 is the background.
        naive = models.inference_model(raw, output=output)(pixels(values, 19))
        self.assertEqual(counts(naive[:, 1:], labels)[0], 7)
        self.assertEqual(counts(naive, labels), (0, 0))

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
        values = logits if output == "logits" else softmax(logits)
        if as_synsets:
            synsets = imagenet.synsets()
            class_subset = [synsets[i] for i in reversed(subset)]
        else:
            class_subset = subset
        raw = pixel_model(1000, 19, "raw")
        model = models.inference_model(
            raw, output=output, class_subset=class_subset
        )
        probabilities = model(pixels(values, 19)).numpy()
        self.assertEqual(counts(probabilities, labels), (8, 9))
        outside = np.setdiff1d(np.arange(1000), subset)
        self.assertAllEqual(probabilities[:, outside], np.zeros((10, 800)))
        self.assertAllClose(probabilities.sum(axis=-1), np.ones(10))
        self.assertAllClose(
            probabilities[:, subset], softmax(logits[:, subset]), rtol=1e-4
        )
        unmasked = models.inference_model(raw, output=output)
        self.assertEqual(counts(unmasked(pixels(values, 19)), labels), (0, 0))

    def test_subset_with_background_class(self):
        logits = np.zeros((1, 1001), np.float32)
        logits[0, 0] = 9.0  # background
        logits[0, 1] = 5.0  # class 0, outside the subset
        logits[0, 3] = 1.0  # class 2
        logits[0, 4] = 2.0  # class 3
        model = models.inference_model(
            pixel_model(1001, 19, "raw"),
            output="logits",
            has_background_class=True,
            class_subset=[2, 3],
        )
        probabilities = model(pixels(logits, 19)).numpy()[0]
        expected = np.zeros(1000)
        expected[[2, 3]] = softmax(np.array([1.0, 2.0]))
        self.assertAllClose(probabilities, expected)

    def test_synsets_are_the_sorted_imagenet_classes(self):
        # The class order `class_subset` synsets are read in.
        synsets = list(imagenet.synsets())
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
        raw = pixel_model(1000, 19, "raw")
        with self.assertRaises(error) as caught:
            models.inference_model(raw, class_subset=class_subset)
        self.assertEqual(str(caught.exception), message)

    def test_bad_arguments(self):
        raw = pixel_model(5, 2, "raw")
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
        self.assertEqual(counts(model(images), labels)[0], 9)
        unprocessed = models.inference_model(raw, output="logits", image_size=8)
        self.assertLess(counts(unprocessed(images), labels)[0], 9)

    def test_registered_names_that_saved_models_hold(self):
        for layer in (models.InputPreprocessing, models.ClassProbabilities):
            self.assertEqual(
                keras.saving.get_registered_name(layer),
                f"tf_topk>{layer.__name__}",
            )

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
