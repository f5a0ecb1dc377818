"""Tests for tf_topk.callbacks.TopKEvaluation in a real fit()."""

import csv
import doctest
import glob
import json
import os
from unittest import mock

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import callbacks, evaluation, testing

NUM_CLASSES = 5
# 10 images painted 0, 1, 2, 3, 4, 0, 1, 2, 3, 4. The first 7 labels are
# the painted class; the last 3 are the painted class + 1. So the oracle
# gets 7/10 and the oracle with its classes shifted by one gets 3/10.
PAINTED = np.arange(10) % NUM_CLASSES
LABELS = np.concatenate([PAINTED[:7], (PAINTED[7:] + 1) % NUM_CLASSES])


def _dataset(batch_size=4):
    images = np.stack(
        [
            testing.constant_image(c, NUM_CLASSES, height=8, width=8)
            for c in PAINTED
        ]
    )
    return tf.data.Dataset.from_tensor_slices(
        (images, LABELS.astype(np.int32))
    ).batch(batch_size)


def _trainable_oracle():
    """The oracle followed by a trainable class mixing, identity at first."""
    inputs = keras.Input(shape=(8, 8, 3))
    logits = testing.OracleLogits(NUM_CLASSES)(inputs)
    outputs = keras.layers.Dense(
        NUM_CLASSES,
        use_bias=False,
        kernel_initializer="identity",
        name="mix",
    )(logits)
    model = keras.Model(inputs, outputs)
    # Learning rate 0: fit runs for real, only the test changes weights.
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _shift_classes_after_epoch_1(model):
    """Output j becomes the logit of class j - 1: the oracle predicts c + 1."""
    shift = np.roll(np.eye(NUM_CLASSES, dtype=np.float32), 1, axis=1)

    def on_epoch_end(epoch, logs):
        if epoch == 1:
            model.get_layer("mix").kernel.assign(shift)

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def _tensorboard_scalars(logdir):
    values = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(
                    round(float(tf.make_ndarray(value.tensor)), 6)
                )
    return values


class TopKEvaluationFitTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)

    def test_later_callbacks_see_the_keys(self):
        workdir = self.create_tempdir().full_path
        model = _trainable_oracle()
        data = _dataset()
        evaluator = callbacks.TopKEvaluation(
            data, ks=(1, 5), expected_num_examples=10
        )
        history = model.fit(
            data,
            epochs=5,
            verbose=0,
            callbacks=[
                # Before the evaluator: it changes the model it evaluates.
                _shift_classes_after_epoch_1(model),
                evaluator,
                keras.callbacks.ModelCheckpoint(
                    os.path.join(
                        workdir, "{epoch:02d}-{val_top1:.2f}.weights.h5"
                    ),
                    monitor="val_top1",
                    mode="max",
                    save_best_only=True,
                    save_weights_only=True,
                ),
                keras.callbacks.EarlyStopping(
                    monitor="val_top1", mode="max", patience=1
                ),
                keras.callbacks.CSVLogger(os.path.join(workdir, "log.csv")),
                keras.callbacks.TensorBoard(os.path.join(workdir, "tb")),
            ],
        )
        # Epoch 1: 7/10; epoch 2 (shifted): 3/10, and EarlyStopping stops.
        self.assertEqual(history.history["val_top1"], [0.7, 0.3])
        self.assertEqual(history.history["val_top5"], [1.0, 1.0])
        self.assertEqual(
            sorted(os.listdir(workdir)), ["01-0.70.weights.h5", "log.csv", "tb"]
        )
        with open(os.path.join(workdir, "log.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(
            [(r["epoch"], r["val_top1"], r["val_top5"]) for r in rows],
            [("0", "0.7", "1.0"), ("1", "0.3", "1.0")],
        )
        scalars = _tensorboard_scalars(
            os.path.join(workdir, "tb", "validation")
        )
        self.assertEqual(scalars["epoch_top1"], [0.7, 0.3])
        self.assertEqual(sorted(evaluator.results), [1, 2])
        self.assertEqual(evaluator.results[2].correct, {1: 3, 5: 10})
        self.assertIs(evaluator.result, evaluator.results[2])

    def test_every_n_epochs_prefix_and_results_dir(self):
        results_dir = self.create_tempdir().full_path
        model = _trainable_oracle()
        evaluator = callbacks.TopKEvaluation(
            _dataset(),
            ks=(1, 3),
            every_n_epochs=2,
            prefix="holdout_",
            expected_num_examples=10,
            results_dir=results_dir,
            metadata={"model": "oracle"},
        )
        history = model.fit(
            _dataset(), epochs=3, verbose=0, callbacks=[evaluator]
        )
        # Only epoch 2 is evaluated; History keeps one value per key.
        self.assertEqual(history.history["holdout_top1"], [0.7])
        # Top 3 of painted c is c and its two nearest intensities: the labels
        # 3 (painted 2) and 4 (painted 3) are in it, 0 (painted 4) is not.
        self.assertEqual(history.history["holdout_top3"], [0.9])
        self.assertNotIn("val_top1", history.history)
        self.assertEqual(os.listdir(results_dir), ["epoch_002"])
        with open(os.path.join(results_dir, "epoch_002", "results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["top1_correct"], 7)
        self.assertEqual(results["top3_correct"], 9)
        self.assertEqual(results["num_examples"], 10)
        self.assertEqual(results["epoch"], 2)
        self.assertEqual(results["model"], "oracle")

    def test_wrong_count_stops_training(self):
        model = _trainable_oracle()
        evaluator = callbacks.TopKEvaluation(
            _dataset(), expected_num_examples=12
        )
        with self.assertRaisesRegex(
            ValueError,
            r"^The evaluation saw 10 examples but expected_num_examples=12",
        ):
            model.fit(_dataset(), epochs=1, verbose=0, callbacks=[evaluator])

    @parameterized.named_parameters(("1_device", 1), ("2_devices", 2))
    def test_under_the_model_strategy(self, num_devices):
        strategy = tf.distribute.MirroredStrategy(
            conftest.logical_cpus(num_devices)
        )
        with strategy.scope():
            model = _trainable_oracle()
        evaluator = callbacks.TopKEvaluation(
            _dataset(), expected_num_examples=10
        )
        with mock.patch.object(
            evaluation, "evaluate", wraps=evaluation.evaluate
        ) as evaluate:
            history = model.fit(
                _dataset(), epochs=2, verbose=0, callbacks=[evaluator]
            )
        self.assertEqual(history.history["val_top1"], [0.7, 0.7])
        self.assertEqual(evaluate.call_count, 2)
        self.assertIs(evaluate.call_args.kwargs["strategy"], strategy)
        self.assertEqual(evaluator.result.num_examples, 10)

    def test_dataset_function_under_two_devices(self):
        # One input pipeline: the function returns the whole dataset.
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        with strategy.scope():
            model = _trainable_oracle()
        contexts = []

        def dataset_fn(context):
            contexts.append(context.num_input_pipelines)
            return _dataset()

        evaluator = callbacks.TopKEvaluation(
            dataset_fn, expected_num_examples=10, batch_size=4
        )
        history = model.fit(
            _dataset(), epochs=2, verbose=0, callbacks=[evaluator]
        )
        self.assertEqual(history.history["val_top1"], [0.7, 0.7])
        self.assertEqual(evaluator.result.num_examples, 10)
        self.assertTrue(contexts)
        self.assertEqual(set(contexts), {1})

    def test_docstring_example(self):
        failures, tried = doctest.testmod(
            callbacks, extraglobs={"tf": tf}, verbose=False
        )
        self.assertGreater(tried, 5)
        self.assertEqual(failures, 0)


class TopKEvaluationArgumentsTest(tf.test.TestCase, parameterized.TestCase):
    """Bad arguments raise when the callback is built, before training."""

    @parameterized.named_parameters(
        (
            "dataset_must_be_a_dataset",
            {"dataset": [1, 2]},
            TypeError,
            r"^Argument `dataset` must be a tf\.data\.Dataset of batches or a "
            r"function of a tf\.distribute\.InputContext returning one\. "
            r"Received: list$",
        ),
        (
            "a_dataset_function_needs_the_counts",
            {"dataset": lambda context: _dataset(), "batch_size": 4},
            ValueError,
            r"^A dataset function needs `batch_size` and "
            r"`expected_num_examples`\. Received: batch_size=4, "
            r"expected_num_examples=None$",
        ),
        (
            "every_n_epochs_zero",
            {"every_n_epochs": 0},
            ValueError,
            r"^Argument `every_n_epochs` must be a positive integer\. "
            r"Received: every_n_epochs=0$",
        ),
        (
            "every_n_epochs_float",
            {"every_n_epochs": 1.5},
            ValueError,
            r"^Argument `every_n_epochs` must be a positive integer\. "
            r"Received: every_n_epochs=1\.5$",
        ),
        (
            "every_n_epochs_bool",
            {"every_n_epochs": True},
            ValueError,
            r"^Argument `every_n_epochs` must be a positive integer\. "
            r"Received: every_n_epochs=True$",
        ),
        (
            "expected_num_examples",
            {"expected_num_examples": 0},
            ValueError,
            r"^Argument `expected_num_examples` must be a positive integer "
            r"or None\. Received: expected_num_examples=0$",
        ),
        (
            "prefix",
            {"prefix": None},
            TypeError,
            r"^Argument `prefix` must be a string such as 'val_'\. "
            r"Received: prefix=None$",
        ),
        (
            "ks",
            {"ks": (0, 5)},
            ValueError,
            r"^Argument `ks` must hold positive integers, e\.g\. ks=\(1, 5\)\. "
            r"Received: ks=\(0, 5\) \(bad value: 0\)$",
        ),
        (
            "progress",
            {"progress": "loud"},
            ValueError,
            r"Received: progress='loud'$",
        ),
    )
    def test_errors(self, arguments, error, message):
        arguments = dict(arguments)
        dataset = arguments.pop("dataset", None)
        with self.assertRaisesRegex(error, message):
            callbacks.TopKEvaluation(
                _dataset() if dataset is None else dataset, **arguments
            )
