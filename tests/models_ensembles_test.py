"""Tests for tf_topk.models.ensembles."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized
from models_helpers import (
    IMAGENET,
    WEIGHTS,
    counts,
    pixel_model,
    pixels,
    require_assets,
    resize_and_crop,
)

from tf_topk import models


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
            models.inference_model(pixel_model(5, 2, "a"), name="a"),
            models.inference_model(pixel_model(5, 3, "b"), name="b"),
        ]
        equal = models.ensemble(members)
        self.assertEqual(equal.input_shape, [(None, 2, 2, 3), (None, 3, 3, 3)])
        inputs = [pixels(first, 2), pixels(second, 3)]
        self.assertAllClose(equal(inputs), (first + second) / 2)
        # Top-1 classes: first (0, 3), second (1, 4), equal mean (1, 4),
        # 3:1 mean (1, 3).
        labels = np.array([1, 4])
        self.assertEqual(counts(first, labels)[0], 0)
        self.assertEqual(counts(equal(inputs), labels)[0], 2)
        weighted = models.ensemble(members, weights=[3, 1], name="weighted")
        self.assertEqual(weighted.name, "weighted")
        self.assertAllClose(weighted(inputs), (3 * first + second) / 4)
        self.assertAllClose(
            weighted(inputs)[1], [0.075, 0.15, 0.25, 0.325, 0.2]
        )
        self.assertEqual(counts(weighted(inputs), labels)[0], 1)
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
            models.inference_model(pixel_model(5, 2, "a"), name="a"),
            models.inference_model(pixel_model(5, 2, "b"), name="b"),
        ]
        with self.assertRaises(ValueError) as caught:
            models.ensemble(members, weights=weights)
        self.assertEqual(str(caught.exception), message)

    def test_bad_members(self):
        a = models.inference_model(pixel_model(5, 2, "a"), name="a")
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
                [a, models.inference_model(pixel_model(4, 2, "c"), name="c")]
            )
        self.assertEqual(
            str(caught.exception),
            "Argument `members` must all return the same number of "
            "classes. Received: [5, 4]",
        )

    def test_members_with_one_name(self):
        first = np.array([[0.5, 0.4, 0.1, 0.0, 0.0]], np.float32)
        second = np.array([[0.0, 0.6, 0.4, 0.0, 0.0]], np.float32)
        a = models.inference_model(pixel_model(5, 2, "a"), name="same")
        b = models.inference_model(pixel_model(5, 2, "b"), name="same")
        doubled = models.ensemble([a, b, a], weights=[1, 1, 2])
        self.assertEqual(
            [layer.name for layer in doubled.layers[3:6]],
            ["same_0", "same_1", "same_2"],
        )
        inputs = [pixels(first, 2), pixels(second, 2), pixels(first, 2)]
        self.assertAllClose(doubled(inputs), (3 * first + second) / 4)

    def test_saves_and_loads_under_the_registered_name(self):
        # Saved models name the layer "tf_topk>WeightedAverage".
        self.assertEqual(
            keras.saving.get_registered_name(models.WeightedAverage),
            "tf_topk>WeightedAverage",
        )
        members = []
        for seed, size in enumerate((2, 3)):
            inputs = keras.Input((size, size, 3))
            dense = keras.layers.Dense(
                5, kernel_initializer=keras.initializers.GlorotUniform(seed)
            )
            raw = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
            member = models.inference_model(
                raw, preprocess_input="caffe", output="logits", name=f"m{seed}"
            )
            members.append(member)
        model = models.ensemble(members, weights=[3, 1])
        path = os.path.join(self.create_tempdir().full_path, "e.keras")
        model.save(path)
        rng = np.random.default_rng(0)
        inputs = [rng.uniform(0, 9, (4, s, s, 3)) for s in (2, 3)]
        restored = keras.saving.load_model(path)
        self.assertAllClose(restored(inputs), model(inputs))

    @pytest.mark.slow
    def test_ensemble_on_val_pjpeg100(self):  # About 5 s on 2 CPU cores.
        folder = IMAGENET / "val_pjpeg100"
        require_assets(
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
        members = []
        for alpha in (0.75, 0.25):
            member, _ = models.build(
                "mobilenet", alpha=alpha,
                weights=WEIGHTS / f"mobilenet_{alpha}_224.weights.h5",
            )  # fmt: skip
            members.append(member)
        model = models.ensemble(members)
        labels = np.array([int(row[1]) for row in rows])
        images = tf.stack([resize_and_crop(folder / row[0]) for row in rows])
        probabilities = model.predict([images, images], batch_size=25,
                                      verbose=0)  # fmt: skip
        top1, top5 = counts(probabilities, labels)
        # ../shared/assets/README.md: ensemble 59 / 82 on val_pjpeg100.
        self.assertBetween(top1, 58, 60)
        self.assertBetween(top5, 81, 83)


if __name__ == "__main__":
    tf.test.main()
