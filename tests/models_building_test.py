"""Tests of tf_topk.models.building: one model from a ModelRequest."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import testing
from tf_topk.models import building

ORACLE = building.ModelRequest(
    name="oracle",
    weights="tf_topk.testing:oracle_model",
    image_size=32,
    preprocess_mode="none",
    output="logits",
    kwargs={"num_classes": 5},
    path="config.model",
)


class BuildTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_custom_model_and_its_record(self):
        built = building.build(ORACLE, overrides={"num_crops": 10})
        self.assertEqual(built.model.output_shape, (None, 5))
        self.assertEqual(built.options.image_size, 32)
        self.assertEqual(built.options.num_crops, 10)
        self.assertIsNone(built.published)
        record = built.record
        self.assertEqual(record.name, "oracle")
        self.assertEqual(record.weights, "tf_topk.testing:oracle_model")
        self.assertEqual(record.image_size, 32)
        self.assertEqual(record.preprocess_mode, "none")
        self.assertEqual(record.output, "logits")
        self.assertIsNone(record.class_subset_size)

    def test_registry_model_resolves_its_spec(self):
        request = building.ModelRequest(
            name="MobileNet", alpha=0.25, image_size=128, path="config.model"
        )
        built = building.build(request, overrides={"crop_fraction": 1.0})
        self.assertEqual(built.model.output_shape, (None, 1000))
        self.assertEqual(built.options.image_size, 128)
        self.assertEqual(built.options.crop_fraction, 1.0)
        self.assertEqual(built.options.interpolation, "bilinear")
        self.assertEqual(built.record.name, "mobilenet")
        self.assertEqual(built.record.preprocess_mode, "tf")
        self.assertEqual(built.record.output, "softmax")
        published = built.published
        self.assertEqual((published.top1, published.top5), (0.415, 0.663))
        self.assertEqual(published.conditions.image_size, 128)
        self.assertEqual(published.conditions.num_crops, 1)
        self.assertEqual(
            building.planned_options(
                [request], overrides={"crop_fraction": 1.0}
            ),
            (built.options,),
        )

    def test_planned_options_need_registry_models(self):
        self.assertIsNone(building.planned_options([ORACLE]))

    @parameterized.named_parameters(
        ("indices", "0,2", 2),
        ("synsets", "n01440764, n01443537", 2),
    )
    def test_class_subset(self, value, size):
        self.assertLen(building.class_subset(value, "config.x"), size)

    def test_class_subset_from_a_file(self):
        path = os.path.join(self.create_tempdir().full_path, "classes.txt")
        with open(path, "w") as f:
            f.write("3\n\n1\n")
        self.assertEqual(building.class_subset(path, "config.x"), [3, 1])

    def test_empty_class_subset_names_the_path(self):
        request = building.ModelRequest(
            name="oracle", class_subset=",", path="config.runs.run1"
        )
        with self.assertRaises(ValueError) as raised:
            building.build(request)
        self.assertEqual(
            str(raised.exception),
            "`config.runs.run1.class_subset` must list class indices or "
            "synsets, or name a file of them. Received: ','",
        )

    def test_labels_in_data(self):
        images = self.create_tempdir().full_path
        painted = np.arange(10) % 5
        labels = np.array([0, 1, 3, 3, 0, 1, 1, 3, 0, 0])
        testing.write_tfrecords(images, painted, labels, num_classes=5)
        data = {
            "source": "tfrecord",
            "path": os.path.join(images, "validation-*"),
            "batch_size": 4,
            "num_classes": 5,
        }
        self.assertEqual(building.labels_in_data(data), [0, 1, 3])
        request = building.ModelRequest(
            name=ORACLE.name,
            weights=ORACLE.weights,
            image_size=32,
            preprocess_mode="none",
            output="logits",
            class_subset="labels_in_data",
            kwargs={"num_classes": 5},
        )
        built = building.build(request, data=data)
        self.assertEqual(built.record.class_subset_size, 3)

    @parameterized.parameters(None, "none", "Random", " ")
    def test_random_weights(self, value):
        self.assertIsNone(building.weights_argument(value))


class CombineTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_one_model_is_itself(self):
        built = building.build(ORACLE)
        self.assertIs(building.combine([built]), built.model)
        with self.assertRaisesRegex(
            ValueError, r"^Argument `weights` applies to ensembles only"
        ):
            building.combine([built], (2.0,))

    def test_weighted_ensemble_counts_the_oracle(self):
        members = [building.build(ORACLE), building.build(ORACLE)]
        model = building.combine(members, (2.0, 1.0))
        dataset, _, labels = testing.oracle_dataset()
        predicted = []
        for images, _ in dataset:
            # The members read 32 pixels; a constant image keeps its paint.
            images = tf.image.resize(images, (32, 32))
            scores = model([images, images])
            predicted.extend(np.argmax(scores, axis=-1).tolist())
        correct = int(np.sum(np.array(predicted) == labels))
        self.assertEqual(correct, 7)


if __name__ == "__main__":
    tf.test.main()
