"""Tests of the reusable test helpers (`tf_topk.testing`)."""

import keras
import numpy as np
import tensorflow as tf

import tf_topk.testing
from tf_topk import metrics, results, testing
from tf_topk.testing import files, oracle


class OracleTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_oracle_dataset_is_exactly_seven_of_ten(self):
        dataset, painted, labels = testing.oracle_dataset()
        self.assertAllEqual(painted, np.arange(10) % 5)
        self.assertAllEqual(labels[:7], painted[:7])
        self.assertTrue((labels[7:] != painted[7:]).all())
        self.assertEqual([len(b[1]) for b in dataset], [4, 4, 2])
        model = testing.oracle_model(5)
        metric = metrics.TopKAccuracy(k=1)
        for images, batch_labels in dataset:
            metric.update_state(batch_labels, model(images))
        self.assertEqual(metric.counts().correct, (7.0,))

    def test_oracle_dataset_ids(self):
        dataset, _, _ = testing.oracle_dataset(with_ids=True)
        ids = [i.decode() for batch in dataset for i in batch[2].numpy()]
        self.assertEqual(ids[:2], ["img-00", "img-01"])
        self.assertLen(ids, 10)

    def test_painted_dataset_keeps_the_labels_given(self):
        dataset = testing.painted_dataset([0, 3], [1, 4], num_classes=5)
        ((images, labels),) = list(dataset)
        self.assertEqual(labels.dtype, tf.int64)
        self.assertAllEqual(labels, [1, 4])
        predicted = np.argmax(testing.oracle_model(5)(images), axis=1)
        self.assertAllEqual(predicted, [0, 3])

    def test_eval_result(self):
        result = testing.eval_result()
        self.assertIsInstance(result, results.EvalResult)
        self.assertEqual(result.correct, {1: 7, 5: 9})
        self.assertEqual(testing.eval_result(num_examples=20).num_examples, 20)

    def test_class_intensity_range(self):
        with self.assertRaisesWithLiteralMatch(
            ValueError,
            "Argument `class_index` must be in [0, 5). Received: class_index=5",
        ):
            testing.class_intensity(5, 5)


class PackageTest(tf.test.TestCase):
    def test_every_public_name_is_reachable_from_the_package(self):
        for module in (oracle, files):
            for name in dir(module):
                value = getattr(module, name)
                defined_here = (
                    getattr(value, "__module__", module.__name__)
                    == module.__name__
                )
                if name.startswith("_") or not defined_here:
                    continue
                if callable(value) or name.isupper():
                    self.assertIs(getattr(tf_topk.testing, name), value, name)

    def test_encoded_image_decodes_to_its_class(self):
        data = testing.encoded_image(2, 5, fmt="png")
        image = tf.io.decode_png(data).numpy()
        self.assertEqual(int(image[0, 0, 0]), testing.class_intensity(2, 5))


if __name__ == "__main__":
    tf.test.main()
