"""Tests for tf_topk.models.loading: load, build and the weights record."""

from __future__ import annotations

import hashlib
import os
import shutil
from unittest import mock

import keras
import models_helpers
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import models

WEIGHTS = models_helpers.WEIGHTS
IMAGENET = models_helpers.IMAGENET

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
MOBILENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
MOBILENET_URL += "mobilenet/"


def _build_params(slow: bool) -> list[tuple[str, str]]:
    return [
        (name, name) for name in models.names() if (name in SLOW_BUILDS) == slow
    ]


def _check_build(test: tf.test.TestCase, name: str) -> None:
    spec = models.get_spec(name)
    size = MIN_SIZES.get(name, 32)
    model, record = models.build(name, weights=None, image_size=size, classes=7)
    test.assertEqual(record, models.WeightsRecord(None))
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


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _offline():
    """Patches keras.utils.get_file to serve the cache and never download."""
    real = keras.utils.get_file

    def get_file(fname, origin, **kwargs):
        target = os.path.join(
            kwargs["cache_dir"], kwargs["cache_subdir"], fname
        )
        if not os.path.exists(target):
            raise Exception(
                f"URL fetch failure on {origin}: None -- tests never download"
            )
        return real(fname, origin, **kwargs)

    return mock.patch.object(keras.utils, "get_file", side_effect=get_file)


class BuildTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

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


class LoadTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def _tiny(self):
        model, _ = models.load(
            "mobilenet", weights=None, alpha=0.25, input_shape=(32, 32, 3),
            classes=5,
        )  # fmt: skip
        return model

    def _images(self):
        return np.random.default_rng(2).uniform(-1, 1, (3, 32, 32, 3))

    def test_keras3_weights_file(self):
        model = self._tiny()
        path = os.path.join(self.create_tempdir().full_path, "w.weights.h5")
        model.save_weights(path)
        keras.utils.set_random_seed(7)
        loaded, record = models.load(
            "mobilenet", weights=path, alpha=0.25, input_shape=(32, 32, 3),
            classes=5,
        )  # fmt: skip
        self.assertAllClose(loaded(self._images()), model(self._images()))
        self.assertEqual(
            record, models.WeightsRecord(path, path, _sha256(path))
        )

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
            loaded, record = models.load(name, weights=path)
            self.assertAllClose(loaded(self._images()), model(self._images()))
            self.assertEqual(
                record, models.WeightsRecord(path, path, _sha256(path))
            )

    def test_saved_model_directory(self):
        model = self._tiny()
        path = os.path.join(self.create_tempdir().full_path, "exported")
        model.export(path, verbose=False)
        loaded, record = models.load("custom", weights=path)
        self.assertEqual(loaded.input_shape, (None, 32, 32, 3))
        self.assertAllClose(
            loaded(self._images()), model(self._images()), atol=1e-6
        )
        wrapped = models.inference_model(loaded, preprocess_input="tf")
        self.assertEqual(wrapped.output_shape, (None, 5))
        # A directory: the hash is its graph's, saved_model.pb.
        pb_hash = _sha256(os.path.join(path, "saved_model.pb"))
        self.assertEqual(record, models.WeightsRecord(path, path, pb_hash))

    def test_factory(self):
        model, record = models.load(
            None, weights="tf_topk.testing:oracle_model", num_classes=4
        )
        self.assertEqual(model.name, "oracle")
        self.assertEqual(model.output_shape, (None, 4))
        self.assertEqual(
            record, models.WeightsRecord("tf_topk.testing:oracle_model")
        )
        self.assertIsNone(record.path)
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
        model, record = models.load(
            "mobilenet", weights=None, alpha=0.25, input_shape=(32, 32, 3),
            classes=5,
        )  # fmt: skip
        self.assertEqual(model.output_shape, (None, 5))
        self.assertEqual(
            record,
            models.WeightsRecord(source=None, path=None, sha256=None),
        )

    @parameterized.named_parameters(
        ("of_wrong_type", "mobilenet", lambda tmp: 3, {}, TypeError,
         "Argument `weights` must be 'imagenet', None, a path or "
         "'package.module:factory'. Received: weights=3 of type int"),
        ("random_without_name", None, lambda tmp: None, {}, ValueError,
         "Argument `name` must be a registry model when `weights` is "
         "'imagenet', None or a weights file (a whole saved model or a "
         "factory may go without). Received: name=None, weights=None"),
        ("missing_path", "mobilenet", lambda tmp: f"{tmp}/no.h5", {},
         FileNotFoundError,
         "Argument `weights` names a path that does not exist. Received: "
         "weights='{path}'"),
        ("text_file", "mobilenet", lambda tmp: f"{tmp}/w.txt", {}, ValueError,
         "Argument `weights` must be a `.weights.h5`, `.h5`, `.hdf5` or "
         "`.keras` file or a SavedModel directory. Received: "
         "weights='{path}'"),
        ("no_saved_model", None, lambda tmp: tmp, {}, ValueError,
         "Argument `weights` is a directory without saved_model.pb, so not "
         "a TF SavedModel. Received: weights='{path}'"),
        ("kwargs_for_a_saved_model", None, lambda tmp: f"{tmp}/m.keras",
         {"alpha": 0.25}, ValueError,
         "Arguments ['alpha'] configure a constructor and cannot apply to a "
         "whole saved model. Received: weights='{path}' with {{'alpha': "
         "0.25}}"),
        ("no_imagenet_file", "resnet50", lambda tmp: "imagenet",
         {"classes": 7}, ValueError,
         "Argument `classes` must be 1000 with weights='imagenet' and "
         "include_top=True (the ImageNet head). Received: classes=7"),
    )  # fmt: skip
    def test_bad_weights(self, name, weights, kwargs, error, message):
        tmp = self.create_tempdir().full_path
        for file_name in ("w.txt", "m.keras"):  # Content never read.
            with open(os.path.join(tmp, file_name), "w") as f:
                f.write("x")
        path = weights(tmp)
        with _offline() as get_file, self.assertRaises(error) as caught:
            models.load(name, weights=path, **kwargs)
        self.assertEqual(str(caught.exception), message.format(path=path))
        get_file.assert_not_called()  # Refused before any download.


class ImagenetWeightsTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_offline_names_the_file_to_place(self):
        home = self.create_tempdir().full_path
        with (
            mock.patch.dict(os.environ, {"KERAS_HOME": home}),
            _offline() as get_file,
            self.assertRaises(FileNotFoundError) as caught,
        ):
            models.load("mobilenet", alpha=0.75)
        origin = f"{MOBILENET_URL}mobilenet_7_5_224_tf.h5"
        get_file.assert_called_once_with(
            "mobilenet_7_5_224_tf.h5", origin, cache_subdir="models",
            cache_dir=home, file_hash=None,
        )  # fmt: skip
        target = os.path.join(home, "models", "mobilenet_7_5_224_tf.h5")
        self.assertEqual(
            str(caught.exception),
            "The ImageNet weights of 'mobilenet' are not in the Keras cache "
            f"and could not be downloaded from {origin} (URL fetch failure "
            f"on {origin}: None -- tests never download). Offline, place "
            f"the file as {target} (the Keras cache is $KERAS_HOME/models/, "
            "default ~/.keras/models/), or pass the local file: "
            "load('mobilenet', weights='/path/to/mobilenet_7_5_224_tf.h5').",
        )

    def test_served_from_the_keras_home_of_the_call(self):
        # A tiny stand-in for mobilenet_2_5_128_tf.h5, in the Keras 2 HDF5
        # layout of the cache; $KERAS_HOME set after Keras' import counts.
        keras.utils.set_random_seed(3)
        cached = keras.applications.MobileNet(
            alpha=0.25, input_shape=(128, 128, 3), weights=None
        )
        home = self.create_tempdir().full_path
        target = os.path.join(home, "models", "mobilenet_2_5_128_tf.h5")
        os.makedirs(os.path.dirname(target))
        cached.save(target)
        keras.utils.set_random_seed(4)
        with mock.patch.dict(os.environ, {"KERAS_HOME": home}), _offline():
            model, record = models.build(
                "mobilenet", alpha=0.25, image_size=128
            )
        self.assertEqual(
            record,
            models.WeightsRecord(
                source="imagenet",
                path=target,
                sha256=_sha256(target),
                origin=f"{MOBILENET_URL}mobilenet_2_5_128_tf.h5",
            ),
        )
        raw = model.get_layer(index=2)
        for ours, theirs in zip(raw.weights, cached.weights, strict=True):
            self.assertAllEqual(ours, theirs)


def _manifest_sha256(relative_path: str) -> str:
    manifest = (models_helpers.WEIGHTS.parent / "MANIFEST.tsv").read_text()
    for line in manifest.splitlines():
        fields = line.split("\t")
        if fields[0] == relative_path:
            return fields[2]
    raise KeyError(relative_path)


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
        models_helpers.require_assets(self, WEIGHTS / file_name, tabby)
        model, record = models.build(
            "mobilenet", weights=WEIGHTS / file_name, alpha=alpha
        )
        expected_params = {0.75: 2_601_976, 0.25: 475_544}[alpha]
        self.assertEqual(model.count_params(), expected_params)
        probabilities = model(models_helpers.resize_and_crop(tabby)[None])[0]
        top1 = int(tf.argmax(probabilities))
        # Both widths: 285 (Egyptian cat), then 281 (tabby) in the top 5.
        self.assertBetween(top1, 281, 285)  # the domestic cats
        self.assertIn(281, tf.math.top_k(probabilities, 5).indices)
        self.assertEqual(record.path, str(WEIGHTS / file_name))
        self.assertEqual(
            record.sha256, _manifest_sha256(f"weights/{file_name}")
        )

    def test_imagenet_from_a_seeded_keras_cache(self):
        legacy = WEIGHTS / "mobilenet_0.75_224_legacy.h5"
        models_helpers.require_assets(self, legacy)
        home = self.create_tempdir().full_path
        target = os.path.join(home, "models", "mobilenet_7_5_224_tf.h5")
        os.makedirs(os.path.dirname(target))
        shutil.copy(legacy, target)
        with mock.patch.dict(os.environ, {"KERAS_HOME": home}), _offline():
            cached, record = models.load("mobilenet", alpha=0.75)
        direct, _ = models.load("mobilenet", weights=legacy, alpha=0.75)
        for ours, theirs in zip(cached.weights, direct.weights, strict=True):
            self.assertAllEqual(ours, theirs)
        self.assertEqual(record.path, target)
        self.assertEqual(
            record.sha256, _manifest_sha256("weights/" + legacy.name)
        )


if __name__ == "__main__":
    tf.test.main()
