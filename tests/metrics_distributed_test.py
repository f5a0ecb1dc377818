"""The metrics under tf.distribute.MirroredStrategy: the same counts as on one
device."""

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    LABELS,
    LOGITS,
    NUM_CLASSES,
    random_logits,
    results,
)

from tf_topk import metrics


class DistributedTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        # 9 rows in batches of 4: the last batch of 1 leaves a replica empty.
        ("partial_batch", 9, 4),
        ("even", 10, 2),
    )
    def test_mirrored_counts_equal_one_device(self, num_examples, batch_size):
        devices = conftest.logical_cpus(2)
        labels, logits = random_logits(num_examples, NUM_CLASSES, 11)
        logits[0] = 0.0  # a tie
        logits[1, 2] = np.nan
        weights = np.linspace(0.0, 2.0, num_examples).astype(np.float32)
        dataset = tf.data.Dataset.from_tensor_slices((labels, logits, weights))
        dataset = dataset.batch(batch_size)

        single = metrics.TopKAccuracies(ks=(1, 3), count_ties=True)
        single_per_class = metrics.PerClassTopKAccuracy(NUM_CLASSES, k=3)
        for y, x, w in dataset:
            single.update_state(y, x, w)
            single_per_class.update_state(y, x, w)

        strategy = tf.distribute.MirroredStrategy(devices)
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        with strategy.scope():
            mirrored = metrics.TopKAccuracies(ks=(1, 3), count_ties=True)
            per_class = metrics.PerClassTopKAccuracy(NUM_CLASSES, k=3)

        @tf.function
        def step(y, x, w):
            mirrored.update_state(y, x, w)
            per_class.update_state(y, x, w)

        for batch in strategy.experimental_distribute_dataset(dataset):
            strategy.run(step, args=batch)
        self.assertAllClose(mirrored.counts().correct, single.counts().correct)
        self.assertAllClose(
            mirrored.counts().num_examples, single.counts().num_examples
        )
        self.assertAllClose(mirrored.counts().ties, single.counts().ties)
        self.assertAllClose(
            mirrored.counts().nonfinite, single.counts().nonfinite
        )
        self.assertGreater(single.counts().nonfinite, 0)
        self.assertAllClose(per_class.counts(), single_per_class.counts())
        self.assertAllClose(results(mirrored), results(single))
        # This worker's replicas hold everything, summed without a collective.
        correct, count = mirrored.local_counts(strategy)
        self.assertAllClose(correct, single.counts().correct)
        self.assertAllClose(count, single.counts().num_examples)

    def test_mirrored_model_evaluate(self):
        devices = conftest.logical_cpus(2)
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            inputs = keras.Input(shape=(NUM_CLASSES,))
            outputs = keras.layers.Dense(
                NUM_CLASSES, kernel_initializer="identity"
            )(inputs)
            model = keras.Model(inputs, outputs)
            model.compile(
                loss="sparse_categorical_crossentropy",
                metrics=[metrics.TopKAccuracies(ks=(1, 3, 5))],
            )
        evaluated = model.evaluate(
            LOGITS, LABELS, batch_size=4, return_dict=True, verbose=0
        )
        self.assertAllClose(evaluated["top1"], 0.4)
        self.assertAllClose(evaluated["top3"], 0.8)
        self.assertAllClose(evaluated["top5"], 1.0)


if __name__ == "__main__":
    tf.test.main()
