"""Tests of the one evaluation loop, with an oracle of known accuracy."""

import doctest
import gc
import weakref

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import evaluation, models, testing

NUM_CLASSES = 5


def oracle_data(num_examples=10, num_correct=7, batch_size=4, seed=0):
    """Images the oracle predicts as i % 5; the first num_correct agree."""
    dataset, _, labels = testing.oracle_dataset(
        num_examples, num_correct, batch_size=batch_size, seed=seed
    )
    return dataset, labels


class EvaluateTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(NUM_CLASSES)

    def test_oracle_exact_counts_with_partial_last_batch(self):
        dataset, labels = oracle_data()
        result = evaluation.evaluate(
            self.model,
            dataset,
            ks=(1, 3, 5),
            expected_num_examples=10,
            progress="none",
        )
        self.assertEqual(result.num_examples, 10)
        self.assertEqual(result.num_scored, 10)
        self.assertEqual(result.correct[1], 7)
        self.assertEqual(result.correct[5], 10)  # k == num_classes
        self.assertAlmostEqual(result.accuracy(1), 0.7)
        self.assertEqual(result.nonfinite, 0)
        self.assertEqual(result.per_class_count, tuple(np.bincount(labels)))
        self.assertEqual(sum(result.per_class_correct), 7)

    def test_top3_matches_an_independent_rank(self):
        dataset, labels = oracle_data()
        result = evaluation.evaluate(
            self.model, dataset, ks=(3,), progress="none"
        )
        logits = np.concatenate([self.model(x).numpy() for x, _ in dataset])
        target = logits[np.arange(10), labels]
        rank = (logits > target[:, None]).sum(axis=1)
        self.assertEqual(result.correct[3], int((rank < 3).sum()))

    def test_to_dict_keys_and_values(self):
        dataset, _ = oracle_data()
        record = evaluation.evaluate(
            self.model, dataset, progress="none"
        ).to_dict()
        self.assertEqual(record["num_examples"], 10)
        self.assertEqual(record["top1_correct"], 7)
        self.assertAlmostEqual(record["top1"], 0.7)
        self.assertAlmostEqual(record["top1_error"], 0.3)
        self.assertEqual(record["top5_correct"], 10)
        low, high = record["top1_interval95"]
        self.assertAlmostEqual(low, 0.3968, places=4)
        self.assertAlmostEqual(high, 0.8922, places=4)
        self.assertIn("images_per_s", record["throughput"])

    def test_rates_cover_the_same_batches(self):
        # The run's rate can never exceed its model's (the run waits for
        # the model and the input) nor its input pipeline's.
        dataset, _ = oracle_data(num_examples=64, num_correct=40)
        result = evaluation.evaluate(self.model, dataset, progress="none")
        self.assertGreater(result.images_per_s, 0)
        self.assertLessEqual(result.images_per_s, result.model_images_per_s)
        self.assertLessEqual(result.images_per_s, result.input_images_per_s)
        self.assertAlmostEqual(
            result.images_per_s, 64 / result.wall_time_s, places=6
        )
        self.assertAlmostEqual(
            result.model_images_per_s, 64 / result.model_time_s, places=6
        )
        self.assertLessEqual(
            result.input_time_s + result.model_time_s, result.wall_time_s
        )

    @parameterized.named_parameters(
        (
            "wrong_count",
            None,
            {"expected_num_examples": 12},
            ValueError,
            r"The evaluation saw 10 examples but expected_num_examples=12",
        ),
        (
            "empty_dataset",
            lambda data: data.take(0),
            {},
            ValueError,
            r"`dataset` is empty",
        ),
        (
            "k_larger_than_classes",
            None,
            {"ks": (1, 6)},
            ValueError,
            r"Argument `k` must be at most the number of classes \(5\)\. "
            r"Received: k=6",
        ),
        (
            "bad_progress",
            None,
            {"progress": "tty"},
            ValueError,
            r"Argument `progress` must be one of \['auto', 'bar', 'log', "
            r"'none'\] or a tf_topk\.progress\.Progress\. Received: "
            r"progress='tty'",
        ),
        (
            "label_out_of_range",
            lambda data: tf.data.Dataset.from_tensor_slices(
                (
                    np.stack(
                        [testing.constant_image(0, NUM_CLASSES)] * 3
                    ).astype("float32"),
                    [0, 5, 1],
                )
            ).batch(2),
            {},
            tf.errors.InvalidArgumentError,
            r"Labels must be class indices",
        ),
        (
            "a_dataset_function_needs_the_counts",
            lambda data: lambda context: data,
            {"batch_size": 64},
            ValueError,
            r"^A dataset function needs `batch_size` and "
            r"`expected_num_examples` .*Received: batch_size=64, "
            r"expected_num_examples=None$",
        ),
        (
            "not_a_dataset",
            lambda data: [1, 2],
            {},
            TypeError,
            r"^Argument `dataset` must be a tf\.data\.Dataset of batches, or "
            r"a function of a tf\.distribute\.InputContext returning one\. "
            r"Received: list$",
        ),
        (
            "elements_not_images_and_labels",
            lambda data: data.map(lambda x, y: x),
            {},
            ValueError,
            r"^Argument `dataset` must yield \(images, labels\) or \(images, "
            r"labels, sample_weights\) batches, optionally followed by string "
            r"example ids\. Received: element_spec=",
        ),
    )
    def test_errors(self, make_dataset, options, error, message):
        dataset, _ = oracle_data()
        if make_dataset is not None:
            dataset = make_dataset(dataset)
        with self.assertRaisesRegex(error, message):
            evaluation.evaluate(
                self.model, dataset, **{"progress": "none", **options}
            )

    def test_multi_crop_predictions_are_averaged(self):
        # Two crops painted class 0 and class 4: each alone is wrong for
        # label 2, their averaged logits peak at the middle class 2.
        dark = testing.constant_image(0, NUM_CLASSES)
        bright = testing.constant_image(4, NUM_CLASSES)
        crops = np.stack([np.stack([dark, bright])] * 6).astype("float32")
        dataset = tf.data.Dataset.from_tensor_slices((crops, [2] * 6))
        result = evaluation.evaluate(
            self.model, dataset.batch(4), ks=(1,), progress="none"
        )
        self.assertEqual(result.num_examples, 6)
        self.assertEqual(result.correct[1], 6)
        single = dataset.map(lambda x, y: (x[0], y)).batch(4)
        result = evaluation.evaluate(
            self.model, single, ks=(1,), progress="none"
        )
        self.assertEqual(result.correct[1], 0)

    def test_sample_weights_mask_examples(self):
        dataset, _ = oracle_data(batch_size=10)
        weights = tf.constant([1.0] * 5 + [0.0] * 5)
        weighted = dataset.map(lambda x, y: (x, y, weights))
        result = evaluation.evaluate(self.model, weighted, progress="none")
        # The first 5 examples are all correct; the others are masked.
        self.assertEqual(result.num_examples, 5)
        self.assertEqual(result.correct[1], 5)

    def test_multi_label_unlabeled_examples_left_out(self):
        images = np.stack(
            [testing.constant_image(c, NUM_CLASSES) for c in (0, 1, 2, 3)]
        ).astype("float32")
        multi_hot = np.array(
            [
                [1, 0, 0, 1, 0],  # predicted 0: correct
                [0, 0, 1, 1, 0],  # predicted 1: wrong at top-1
                [0, 0, 0, 0, 0],  # no label: left out
                [0, 0, 0, 1, 1],  # predicted 3: correct
            ],
            dtype="float32",
        )
        dataset = tf.data.Dataset.from_tensor_slices((images, multi_hot))
        result = evaluation.evaluate(
            self.model, dataset.batch(3), ks=(1, 2, 3), progress="none"
        )
        self.assertEqual(result.num_examples, 4)
        self.assertEqual(result.num_scored, 3)
        self.assertEqual(result.unlabeled, 1)
        self.assertEqual(result.correct[1], 2)
        # Image 1 (intensity 76): class 0 (26) is nearer than class 2 (128),
        # so its best true label, 2, is third.
        self.assertEqual(result.correct[2], 2)
        self.assertEqual(result.correct[3], 3)
        self.assertIsNone(result.per_class_count)

    def test_nonfinite_predictions_are_counted_wrong(self):
        inputs = keras.Input((4, 4, 3))
        logits = self.model(inputs)
        # Images of intensity class 4 get NaN logits.
        nan_if_bright = keras.layers.Lambda(
            lambda t: tf.where(
                tf.reduce_mean(t[0], axis=(1, 2, 3))[:, None] > 200,
                np.nan,
                t[1],
            )
        )([inputs, logits])
        model = keras.Model(inputs, nan_if_bright)
        dataset, _ = oracle_data()
        result = evaluation.evaluate(
            model, dataset.map(lambda x, y: (x[:, :4, :4], y)), progress="none"
        )
        self.assertEqual(result.nonfinite, 2)  # examples 4 and 9
        self.assertEqual(result.correct[1], 6)  # example 4 was correct
        self.assertEqual(result.correct[5], 8)

    def test_predict_averages_crops_as_float32(self):
        dark = testing.constant_image(0, NUM_CLASSES)
        bright = testing.constant_image(4, NUM_CLASSES)
        single = tf.constant(np.stack([dark, bright]), tf.float32)
        crops = tf.constant(
            np.stack([np.stack([dark, bright])] * 3), tf.float32
        )
        outputs = models.predict(self.model, single, NUM_CLASSES)
        self.assertEqual(outputs.dtype, tf.float32)
        self.assertAllClose(outputs, self.model(single))
        averaged = models.predict(self.model, crops, NUM_CLASSES)
        self.assertEqual(averaged.shape, (3, NUM_CLASSES))
        expected = np.mean(self.model(single).numpy(), axis=0)
        self.assertAllClose(averaged, [expected] * 3)

    def test_predict_passes_ensemble_inputs_as_a_list(self):
        inputs = [keras.Input((8, 8, 3)), keras.Input((4, 4, 3))]
        logits = [testing.OracleLogits(NUM_CLASSES)(x) for x in inputs]
        model = keras.Model(inputs, keras.layers.Average()(logits))
        big = tf.constant(
            [testing.constant_image(1, NUM_CLASSES, height=8, width=8)]
        )
        small = tf.constant(
            [testing.constant_image(3, NUM_CLASSES, height=4, width=4)]
        )
        self.assertAllClose(
            models.predict(model, (big, small), NUM_CLASSES),
            model([big, small]),
        )

    def test_doctest(self):
        failures, _ = doctest.testmod(evaluation)
        self.assertEqual(failures, 0)


if __name__ == "__main__":
    tf.test.main()


class StepReuseTest(tf.test.TestCase):
    """One model evaluated on many inputs traces its step once."""

    def test_second_evaluation_reuses_the_step_and_counts_afresh(self):
        model = testing.oracle_model(5)
        first = evaluation.evaluate(
            model, testing.oracle_dataset(10, 7)[0], progress="none"
        )
        (entry,) = evaluation._STEPS[model].values()
        step = entry[0]
        traces = step.experimental_get_tracing_count()
        # Another dataset of the same element spec: 4 of 8 right.
        second = evaluation.evaluate(
            model, testing.oracle_dataset(8, 4, seed=1)[0], progress="none"
        )
        self.assertEqual((first.correct[1], first.num_examples), (7, 10))
        self.assertEqual((second.correct[1], second.num_examples), (4, 8))
        ((reused, _, _),) = evaluation._STEPS[model].values()
        self.assertIs(reused, step)
        self.assertEqual(step.experimental_get_tracing_count(), traces)
        self.assertEqual(sum(second.per_class_count), 8)

    def test_other_settings_get_their_own_step(self):
        model = testing.oracle_model(5)
        exclusive = evaluation.evaluate(
            model,
            testing.oracle_dataset()[0],
            ks=(1, 2),
            ties="exclusive",
            progress="none",
        )
        inclusive = evaluation.evaluate(
            model,
            testing.oracle_dataset()[0],
            ks=(1, 2),
            ties="inclusive",
            progress="none",
        )
        self.assertLen(evaluation._STEPS[model], 2)
        self.assertEqual(exclusive.correct[1], inclusive.correct[1])

    def test_the_step_does_not_keep_the_model_alive(self):
        model = testing.oracle_model(5)
        evaluation.evaluate(model, testing.oracle_dataset()[0], progress="none")
        alive = weakref.ref(model)
        del model
        gc.collect()
        self.assertIsNone(alive())
