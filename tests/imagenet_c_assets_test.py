"""ImageNet-C on real images: a corruption tree built from
../shared/assets (val_acuity650, `tf_topk.testing.corrupted`) evaluated in
one command by configs/imagenet_c.py with MobileNet 0.25; each cell's
counts equal a plain-Keras loop over the same files, and the mCE a hand
computation from those counts (slow: about a minute)."""

import csv
import os

import conftest
import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_topk import corruptions, imagenet
from tf_topk.cli import robustness_presets, run
from tf_topk.testing import corrupted

NUM_IMAGES = 30


def plain_keras_top1(model, folder) -> tuple[int, int]:
    """(correct, images) of a cell: decode, preprocess_input, argmax."""
    index = imagenet.synset_index()
    correct = total = 0
    for synset in sorted(os.listdir(folder)):
        for name in sorted(os.listdir(os.path.join(folder, synset))):
            path = os.path.join(folder, synset, name)
            image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
            batch = keras.applications.mobilenet.preprocess_input(
                tf.cast(image, tf.float32)[None]
            )
            predicted = int(np.argmax(model(batch, training=False)[0]))
            correct += predicted == index[synset]
            total += 1
    return correct, total


@pytest.mark.slow
class RealImageNetCTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        if not (conftest.ASSETS / "MANIFEST.tsv").is_file():
            self.skipTest(
                f"Real assets absent at {conftest.ASSETS}: this test needs "
                "weights/ and imagenet/val_acuity650 from ../shared/assets."
            )

    def test_cells_equal_a_plain_keras_loop_and_mce_by_hand(self):
        images = conftest.ASSETS / "imagenet" / "val_acuity650"
        weights = conftest.ASSETS / "weights" / "mobilenet_0.25_224.weights.h5"
        with open(images / "labels.tsv") as f:
            rows = list(csv.reader(f, delimiter="\t"))[:NUM_IMAGES]
        root = self.create_tempdir().full_path
        corrupted.write_tree(
            root, [(str(images / row[0]), row[2]) for row in rows]
        )
        config = robustness_presets.imagenet_c("mobilenet")
        config.model.alpha = 0.25
        config.model.weights = str(weights)
        config.data.path = root
        config.data.batch_size = 16
        config.eval.progress = "none"
        outcome = run.run(config, self.create_tempdir().full_path)

        model = keras.applications.MobileNet(alpha=0.25, weights=str(weights))
        errors = {}
        for cell in outcome.record["cells"]:
            folder = os.path.join(
                root, cell["corruption"], str(cell["severity"])
            )
            correct, total = plain_keras_top1(model, folder)
            self.assertEqual(
                (cell["top1_correct"], cell["num_examples"]),
                (correct, total),
                msg=f"{cell['corruption']}/{cell['severity']}",
            )
            errors.setdefault(cell["corruption"], []).append(
                1 - correct / total
            )
        self.assertLen(outcome.record["cells"], 10)
        by_hand = np.mean(
            [
                sum(e) / sum(corruptions.ALEXNET_TOP1_ERROR[c])
                for c, e in errors.items()
            ]
        )
        self.assertAlmostEqual(outcome.record["mce"], by_hand, places=12)
        print(
            "real-asset ImageNet-C check:",
            {
                f"{c['corruption']}/{c['severity']}": c["top1_correct"]
                for c in outcome.record["cells"]
            },
            f"of {NUM_IMAGES} each; mCE {outcome.record['mce']:.6f}, by "
            f"hand {by_hand:.6f}",
        )
