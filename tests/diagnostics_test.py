"""Tests of the shortfall diagnostics: the label-offset checks are real."""

import conftest
import keras
import numpy as np
import tensorflow as tf

from tf_topk import diagnostics, testing

NUM_CLASSES = 5


def oracle_dataset(predicted, labels):
    """Images the oracle predicts as `predicted`, labelled `labels`."""
    return testing.painted_dataset(predicted, labels, num_classes=NUM_CLASSES)


class LabelShiftTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(NUM_CLASSES)
        # Classes 0..3 only, so a +1 shift stays inside the class range.
        self.predicted = np.arange(12) % 4

    def test_shift_accuracy_hand_checked(self):
        # 1-based labels: every label is the predicted class + 1.
        dataset = oracle_dataset(self.predicted, self.predicted + 1)
        shifted = diagnostics.label_shift_accuracy(self.model, dataset)
        self.assertEqual(shifted, {-1: 1.0, 0: 0.0, 1: 0.0})

    def test_one_based_labels_are_diagnosed(self):
        dataset = oracle_dataset(self.predicted, self.predicted + 1)
        causes = diagnostics.shortfall_causes(
            self.model,
            dataset,
            shortfall=0.7,
            num_outputs=NUM_CLASSES,
            num_classes=NUM_CLASSES,
        )
        self.assertStartsWith(causes[0], "CHECKED: labels look shifted by +1")
        self.assertIn("raise config.data.label_offset by 1", causes[0])

    def test_background_class_is_diagnosed(self):
        # A 1001-style model: labels one below the predicted index.
        predicted = self.predicted + 1
        dataset = oracle_dataset(predicted, predicted - 1)
        causes = diagnostics.shortfall_causes(
            self.model,
            dataset,
            shortfall=0.7,
            num_outputs=NUM_CLASSES,
            num_classes=NUM_CLASSES - 1,
        )
        self.assertStartsWith(causes[0], "CHECKED: labels look shifted by -1")
        self.assertIn("has_background_class=True", causes[0])
        self.assertIn(
            f"the model has {NUM_CLASSES} outputs but the data "
            f"{NUM_CLASSES - 1} classes",
            causes[1],
        )

    def test_right_labels_claim_no_checked_cause(self):
        dataset = oracle_dataset(self.predicted, self.predicted)
        causes = diagnostics.shortfall_causes(
            self.model,
            dataset,
            shortfall=0.1,
            num_outputs=NUM_CLASSES,
            num_classes=NUM_CLASSES,
        )
        self.assertFalse([c for c in causes if c.startswith("CHECKED")])
        self.assertIn("10.0% below the published figure", causes[-1])

    def test_a_dataset_function_is_read_whole(self):
        # What main.run passes under every --config.distribution.
        dataset = oracle_dataset(self.predicted, self.predicted + 1)
        contexts = []

        def dataset_fn(context):
            contexts.append(context.num_input_pipelines)
            return dataset

        shifted = diagnostics.label_shift_accuracy(self.model, dataset_fn)
        self.assertEqual(shifted, {-1: 1.0, 0: 0.0, 1: 0.0})
        self.assertEqual(contexts, [1])

    def test_shortfall_causes_of_a_mirrored_model_and_dataset_function(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        with strategy.scope():
            model = testing.oracle_model(NUM_CLASSES)
        dataset = oracle_dataset(self.predicted, self.predicted + 1)
        causes = diagnostics.shortfall_causes(
            model,
            lambda context: dataset,
            shortfall=0.7,
            num_outputs=NUM_CLASSES,
            num_classes=NUM_CLASSES,
        )
        self.assertStartsWith(causes[0], "CHECKED: labels look shifted by +1")

    def test_neither_a_dataset_nor_a_function_is_an_error(self):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `dataset` must be a tf\.data\.Dataset .*"
            r"Received: list$",
        ):
            diagnostics.label_shift_accuracy(self.model, [1, 2])


if __name__ == "__main__":
    tf.test.main()
