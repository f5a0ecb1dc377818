"""Tests of the shortfall diagnostics: the label-offset checks are real."""

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import diagnostics, evaluation, models, preprocessing, testing

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


# The published figure: 299 px, a 0.875 centre crop, one crop.
PUBLISHED = models.Conditions(image_size=299, crop_fraction=0.875, num_crops=1)


class ConditionDifferencesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        (
            "image_size",
            {"image_size": 224},
            [
                "conditions differ: the published figure is at 299 px, this "
                "run at 224 px; --config.model.image_size=299 matches it."
            ],
        ),
        (
            "crop_fraction",
            {"image_size": 299, "crop_fraction": 1.0},
            [
                "conditions differ: the published figure uses a centre crop "
                "of 0.875, this run 1; --config.preprocess.crop_fraction="
                "0.875 matches it."
            ],
        ),
        (
            "num_crops",
            {"image_size": 299, "num_crops": 10},
            [
                "conditions differ: the published figure is single crop, "
                "this run 10 crops; --config.data.num_crops=1 matches it."
            ],
        ),
        (
            "all_three_in_order",
            {"image_size": 224, "crop_fraction": 0.95, "num_crops": 10},
            [
                "conditions differ: the published figure is at 299 px, this "
                "run at 224 px; --config.model.image_size=299 matches it.",
                "conditions differ: the published figure uses a centre crop "
                "of 0.875, this run 0.95; --config.preprocess.crop_fraction="
                "0.875 matches it.",
                "conditions differ: the published figure is single crop, "
                "this run 10 crops; --config.data.num_crops=1 matches it.",
            ],
        ),
        ("same", {"image_size": 299}, []),
    )
    def test_pinned_messages(self, run, expected):
        options = preprocessing.Options(**run)
        self.assertEqual(
            diagnostics.condition_differences(PUBLISHED, options), expected
        )

    def test_ten_crop_figure_against_a_single_crop_run(self):
        published = models.Conditions(
            image_size=224, crop_fraction=0.875, num_crops=10
        )
        self.assertEqual(
            diagnostics.condition_differences(
                published, preprocessing.Options()
            ),
            [
                "conditions differ: the published figure is 10 crops, this "
                "run single crop; --config.data.num_crops=10 matches it."
            ],
        )

    def test_unknown_conditions_are_not_compared(self):
        options = preprocessing.Options(image_size=160, num_crops=10)
        self.assertEqual(diagnostics.condition_differences(None, options), [])
        self.assertEqual(diagnostics.condition_differences(PUBLISHED, None), [])
        unknown = models.Conditions(image_size=None, crop_fraction=None)
        self.assertEqual(
            diagnostics.condition_differences(unknown, options),
            [
                "conditions differ: the published figure is single crop, "
                "this run 10 crops; --config.data.num_crops=1 matches it."
            ],
        )


class DiagnosisTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(NUM_CLASSES)
        # 10 examples, 5 right (batches of 4: a partial last batch).
        predicted = np.arange(10) % 4
        labels = np.where(np.arange(10) < 5, predicted, (predicted + 2) % 4)
        self.dataset = oracle_dataset(predicted, labels)

    def evaluate(self, diagnosis):
        return evaluation.evaluate(
            self.model,
            self.dataset,
            ks=(1,),
            progress="none",
            listeners=[diagnosis],
        )

    def test_differing_conditions_come_first(self):
        published = models.Published(1.0, None, "a test table", PUBLISHED)
        diagnosis = diagnostics.Diagnosis(
            published=published,
            options=preprocessing.Options(image_size=224),
            num_classes=NUM_CLASSES,
        )
        result = self.evaluate(diagnosis)
        self.assertEqual(result.correct[1], 5)
        causes = result.metadata["diagnostics"]
        self.assertEqual(
            causes[0],
            "conditions differ: the published figure is at 299 px, this run "
            "at 224 px; --config.model.image_size=299 matches it.",
        )
        self.assertFalse([c for c in causes[1:] if "conditions" in c])
        self.assertIn("50.0% below the published figure", causes[-1])

    def test_like_with_like_claims_no_difference(self):
        diagnosis = diagnostics.Diagnosis(
            published=models.Published(1.0, None, "a test table", PUBLISHED),
            options=preprocessing.Options(image_size=299),
            num_classes=NUM_CLASSES,
        )
        causes = self.evaluate(diagnosis).metadata["diagnostics"]
        self.assertFalse([c for c in causes if c.startswith("conditions")])
        self.assertIn("50.0% below the published figure", causes[-1])

    def test_no_shortfall_says_nothing_of_the_conditions(self):
        diagnosis = diagnostics.Diagnosis(
            published=models.Published(0.5, None, "a test table", PUBLISHED),
            options=preprocessing.Options(image_size=224),
            num_classes=NUM_CLASSES,
        )
        self.assertEqual(self.evaluate(diagnosis).metadata["diagnostics"], [])

    def test_published_top1_alone_still_works(self):
        diagnosis = diagnostics.Diagnosis(1.0, num_classes=NUM_CLASSES)
        causes = self.evaluate(diagnosis).metadata["diagnostics"]
        self.assertIn("50.0% below the published figure", causes[-1])
        self.assertFalse([c for c in causes if c.startswith("conditions")])


if __name__ == "__main__":
    tf.test.main()
