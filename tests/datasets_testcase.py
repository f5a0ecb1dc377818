"""Shared set-up of the datasets tests (datasets_*_test.py).

Ten oracle images painting class i % 5, batch 4 (a partial last batch); the
first 7 labels agree with the painted class, so the oracle gets exactly
7/10 whatever the source and the preprocessing.
"""

import re

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import datasets, preprocessing, testing

NUM_CLASSES = 5
NUM_EXAMPLES = 10
BATCH_SIZE = 4
IMAGE_SIZE = 8
# Images paint class i % 5; the first 7 labels agree (the oracle gets 7/10).
PREDICTED = np.arange(NUM_EXAMPLES) % NUM_CLASSES
LABELS = testing.oracle_labels(PREDICTED, 7, NUM_CLASSES)
# ILSVRC numbers of the 10 images: gaps, and a labels file longer than that.
NUMBERS = [2, 3, 5, 8, 13, 21, 34, 55, 89, 144]


def collect(dataset):
    """(batch sizes, labels, oracle top-1 correct) of a built dataset."""
    model = testing.oracle_model(NUM_CLASSES)
    sizes, labels, correct = [], [], 0
    for images, batch_labels in dataset:
        sizes.append(int(images.shape[0]))
        labels.append(batch_labels.numpy())
        logits = model(images, training=False)
        correct += int(
            tf.reduce_sum(
                tf.cast(tf.math.in_top_k(batch_labels, logits, 1), tf.int32)
            )
        )
    return sizes, np.concatenate(labels), correct


def build(source, **kwargs):
    """`datasets.build` with the tests' batch size, classes and image size."""
    kwargs = {
        "batch_size": BATCH_SIZE,
        "num_classes": NUM_CLASSES,
        "preprocess": preprocessing.Options(image_size=IMAGE_SIZE),
        **kwargs,
    }
    return datasets.build(source, **kwargs)


class DataTestCase(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.dir = self.create_tempdir().full_path

    def assertExact(self, dataset, num_examples, labels=LABELS, correct=7):
        self.assertEqual(num_examples, len(labels))
        sizes, seen, num_correct = collect(dataset)
        expected_sizes = [BATCH_SIZE] * (len(labels) // BATCH_SIZE)
        if len(labels) % BATCH_SIZE:
            expected_sizes.append(len(labels) % BATCH_SIZE)
        self.assertEqual(sizes, expected_sizes)
        self.assertAllEqual(seen, labels)
        self.assertEqual(num_correct, correct)

    def assertRaisesMessage(self, error, message):
        return self.assertRaisesRegex(error, "^" + re.escape(message) + "$")


class RealImagesTestCase(tf.test.TestCase, parameterized.TestCase):
    """Tests on the real ImageNet images of ../shared/assets (or a skip)."""

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.imagenet = conftest.ASSETS / "imagenet"
        if not (self.imagenet / "synsets.txt").is_file():
            self.skipTest(f"Real ImageNet assets not found at {self.imagenet}.")
