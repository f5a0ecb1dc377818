"""Tests for tf_topk.callbacks.TopKEvaluation in a real fit()."""

import csv
import doctest
import glob
import json
import os
import tempfile
from unittest import mock

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import callbacks, datasets, evaluation, preprocessing, testing

NUM_CLASSES = 5
# 10 images painted 0, 1, 2, 3, 4, 0, 1, 2, 3, 4. The first 7 labels are
# the painted class; the last 3 are the painted class + 1. So the oracle
# gets 7/10 and the oracle with its classes shifted by one gets 3/10.
PAINTED = np.arange(10) % NUM_CLASSES
LABELS = np.concatenate([PAINTED[:7], (PAINTED[7:] + 1) % NUM_CLASSES])
# A cached example of `_folder_dataset`: 8 x 8 x 3 float32 pixels and an
# int32 label.
FOLDER_EXAMPLE_BYTES = 8 * 8 * 3 * 4 + 4
# The files tf.data writes for `Dataset.cache(".../batches")`.
CACHE_FILES = ["batches.data-00000-of-00001", "batches.index"]


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


def _folder_dataset(directory, fmt="jpeg"):
    """10 real images in class folders, decoded by `datasets.build`."""
    testing.write_class_folders(
        directory, PAINTED, LABELS, num_classes=NUM_CLASSES, fmt=fmt
    )
    dataset, count = datasets.build(
        "folder",
        path=directory,
        batch_size=4,
        num_classes=NUM_CLASSES,
        preprocess=preprocessing.Options(image_size=8),
        cache="none",
    )
    assert count == 10, count
    return dataset


def _damage_images(directory):
    """Overwrites every file under `directory`: decoding them now fails."""
    for root, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"not an image")


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
        # Each worker builds its own input: "auto" leaves it uncached.
        self.assertEqual(evaluator.cache_mode, "none")

    def test_docstring_example(self):
        failures, tried = doctest.testmod(
            callbacks, extraglobs={"tf": tf}, verbose=False
        )
        self.assertGreater(tried, 5)
        self.assertEqual(failures, 0)


class TopKEvaluationCacheTest(tf.test.TestCase, parameterized.TestCase):
    """The batches are decoded by the first evaluation, then read back.

    Proved by overwriting every image file after the first evaluation: the
    second still counts 7/10 from the cache; uncached, it fails to decode.
    """

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        self.image_dir = self.create_tempdir().full_path

    def fit_damaging_after_epoch_1(self, evaluator, model=None):
        """fit() for 2 epochs, the images damaged after the first one.

        Returns:
            The history, and the cache folder (or None) with its files as
            they were after the first evaluation.
        """
        seen = []

        def damage(epoch, logs):
            if epoch == 0:
                folder = evaluator.cache_folder
                files = sorted(os.listdir(folder)) if folder else []
                seen.append((folder, files))
                _damage_images(self.image_dir)

        history = (model or _trainable_oracle()).fit(
            _dataset(),
            epochs=2,
            verbose=0,
            callbacks=[
                evaluator,
                # After the evaluator: it damages what epoch 2 reads.
                keras.callbacks.LambdaCallback(on_epoch_end=damage),
            ],
        )
        return history, seen[0]

    @parameterized.named_parameters(
        ("memory", "memory", None, "jpeg"),
        ("memory_png", "memory", None, "png"),
        ("auto_within_the_budget", "auto", 10 * FOLDER_EXAMPLE_BYTES, "jpeg"),
    )
    def test_memory_cache_is_read(self, cache, budget, fmt):
        evaluator = callbacks.TopKEvaluation(
            _folder_dataset(self.image_dir, fmt),
            expected_num_examples=10,
            cache=cache,
            cache_budget_bytes=budget,
        )
        self.assertEqual(evaluator.cache_mode, "memory")
        self.assertEqual(evaluator.cache_size_bytes, 10 * FOLDER_EXAMPLE_BYTES)
        history, (folder, _) = self.fit_damaging_after_epoch_1(evaluator)
        self.assertEqual(history.history["val_top1"], [0.7, 0.7])
        self.assertEqual(evaluator.results[2].correct, {1: 7, 5: 10})
        self.assertEqual(evaluator.results[2].num_examples, 10)
        self.assertIsNone(folder)

    def test_memory_cache_is_read_under_two_devices(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        with strategy.scope():
            model = _trainable_oracle()
        evaluator = callbacks.TopKEvaluation(
            _folder_dataset(self.image_dir),
            expected_num_examples=10,
            cache="memory",
        )
        history, _ = self.fit_damaging_after_epoch_1(evaluator, model)
        self.assertEqual(history.history["val_top1"], [0.7, 0.7])

    def test_uncached_dataset_is_decoded_again(self):
        evaluator = callbacks.TopKEvaluation(
            _folder_dataset(self.image_dir),
            expected_num_examples=10,
            cache="none",
        )
        self.assertEqual(evaluator.cache_mode, "none")
        self.assertIsNone(evaluator.cache_size_bytes)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "decode"):
            self.fit_damaging_after_epoch_1(evaluator)
        self.assertEqual(sorted(evaluator.results), [1])
        self.assertEqual(evaluator.results[1].correct[1], 7)

    @parameterized.named_parameters(
        ("disk_in_cache_dir", "disk", None, "cache_dir"),
        ("auto_over_the_budget_in_cache_dir", "auto", 0, "cache_dir"),
        ("disk_in_results_dir", "disk", None, "results_dir"),
        ("auto_over_the_budget_in_a_temporary_folder", "auto", 0, None),
    )
    def test_disk_cache_is_read_then_removed(self, cache, budget, folder):
        workdir = self.create_tempdir().full_path
        evaluator = callbacks.TopKEvaluation(
            _folder_dataset(self.image_dir),
            expected_num_examples=10,
            cache=cache,
            cache_budget_bytes=budget,
            **({folder: workdir} if folder else {}),
        )
        self.assertEqual(evaluator.cache_mode, "disk")
        # No folder before the first evaluation.
        self.assertIsNone(evaluator.cache_folder)
        self.assertEmpty(os.listdir(workdir))
        history, (cache_folder, files) = self.fit_damaging_after_epoch_1(
            evaluator
        )
        self.assertEqual(history.history["val_top1"], [0.7, 0.7])
        self.assertEqual(files, CACHE_FILES)
        parent = {
            "cache_dir": workdir,
            "results_dir": os.path.join(workdir, "cache"),
            None: tempfile.gettempdir(),
        }[folder]
        self.assertEqual(os.path.dirname(cache_folder), parent)
        # on_train_end removed the cache folder, and only that.
        self.assertFalse(os.path.exists(cache_folder))
        self.assertIsNone(evaluator.cache_folder)
        self.assertEqual(
            sorted(os.listdir(workdir)),
            ["epoch_001", "epoch_002"] if folder == "results_dir" else [],
        )

    def test_disk_cache_is_filled_again_by_a_later_fit(self):
        cache_dir = self.create_tempdir().full_path
        evaluator = callbacks.TopKEvaluation(
            _folder_dataset(self.image_dir),
            expected_num_examples=10,
            cache="disk",
            cache_dir=cache_dir,
        )
        model = _trainable_oracle()
        folders = []
        for _ in range(2):
            model.fit(
                _dataset(),
                epochs=1,
                verbose=0,
                callbacks=[
                    evaluator,
                    keras.callbacks.LambdaCallback(
                        on_epoch_end=lambda epoch, logs: folders.append(
                            evaluator.cache_folder
                        )
                    ),
                ],
            )
            self.assertEqual(evaluator.result.correct[1], 7)
        self.assertLen(set(folders), 2)
        self.assertEmpty(os.listdir(cache_dir))

    @parameterized.named_parameters(
        ("expected_num_examples", {"expected_num_examples": 10}, 10),
        # 3 batches of at most 4: an upper bound of 12 examples.
        ("batches_times_batch_size", {"batch_size": 4}, 12),
        ("unknown_batch_size", {}, None),
        ("unknown_cardinality", {"batch_size": 4, "filter": True}, None),
    )
    def test_size_estimate(self, arguments, num_examples):
        arguments = dict(arguments)
        dataset = _folder_dataset(self.image_dir)
        if arguments.pop("filter", False):
            dataset = dataset.filter(lambda images, labels: True)
        evaluator = callbacks.TopKEvaluation(
            dataset, cache_budget_bytes=2**30, **arguments
        )
        if num_examples is None:
            self.assertIsNone(evaluator.cache_size_bytes)
            self.assertEqual(evaluator.cache_mode, "none")
        else:
            self.assertEqual(
                evaluator.cache_size_bytes, num_examples * FOLDER_EXAMPLE_BYTES
            )
            self.assertEqual(evaluator.cache_mode, "memory")

    def test_size_estimate_static_batch_and_strings(self):
        images = np.zeros([10, 8, 8, 3], np.uint8)
        ids = [f"image_{i}" for i in range(10)]
        dataset = tf.data.Dataset.from_tensor_slices(
            (images, LABELS.astype(np.int32), ids)
        ).batch(5, drop_remainder=True)
        evaluator = callbacks.TopKEvaluation(dataset, cache="none")
        self.assertIsNone(evaluator.cache_size_bytes)
        evaluator = callbacks.TopKEvaluation(dataset, cache="memory")
        # 2 batches of a static 5; uint8 pixels, int32 label, 64 per string.
        self.assertEqual(evaluator.cache_size_bytes, 10 * (8 * 8 * 3 + 4 + 64))

    def test_explicit_memory_is_honoured_at_an_unknown_size(self):
        dataset = _folder_dataset(self.image_dir).filter(lambda x, y: True)
        evaluator = callbacks.TopKEvaluation(dataset, cache="memory")
        self.assertIsNone(evaluator.cache_size_bytes)
        self.assertEqual(evaluator.cache_mode, "memory")
        history, _ = self.fit_damaging_after_epoch_1(evaluator)
        self.assertEqual(history.history["val_top1"], [0.7, 0.7])


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
        (
            "cache",
            {"cache": "ram"},
            ValueError,
            r"^Argument `cache` must be one of \['auto', 'memory', 'disk', "
            r"'none'\]\. Received: cache='ram'$",
        ),
        (
            "cache_budget_bytes",
            {"cache_budget_bytes": -1},
            ValueError,
            r"^Argument `cache_budget_bytes` must be a non-negative integer "
            r"or None\. Received: cache_budget_bytes=-1$",
        ),
        (
            "cache_dir",
            {"cache_dir": 3},
            TypeError,
            r"^Argument `cache_dir` must be a folder path or None\. "
            r"Received: cache_dir=3$",
        ),
        (
            "memory_cache_of_a_dataset_function",
            {
                "dataset": lambda context: _dataset(),
                "batch_size": 4,
                "expected_num_examples": 10,
                "cache": "memory",
            },
            ValueError,
            r"^Argument `cache` must be 'auto' or 'none' with a dataset "
            r"function: each worker builds its own input, so cache inside "
            r"the function, e\.g\. with tf_topk\.datasets\.build\(\.\.\., "
            r"cache='memory'\)\. Received: cache='memory'$",
        ),
        (
            "disk_cache_of_a_dataset_function",
            {
                "dataset": lambda context: _dataset(),
                "batch_size": 4,
                "expected_num_examples": 10,
                "cache": "disk",
            },
            ValueError,
            r"Received: cache='disk'$",
        ),
    )
    def test_errors(self, arguments, error, message):
        arguments = dict(arguments)
        dataset = arguments.pop("dataset", None)
        with self.assertRaisesRegex(error, message):
            callbacks.TopKEvaluation(
                _dataset() if dataset is None else dataset, **arguments
            )
