"""The metrics inside Keras: compile/fit/evaluate (with jit_compile), saving
and loading, configs."""

import keras
import tensorflow as tf
from absl.testing import parameterized
from metrics_helpers import (
    LABELS,
    LOGITS,
    NUM_CLASSES,
)

from tf_topk import metrics


class KerasIntegrationTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def identity_model(self):
        """Logits equal to the inputs, so hand counts hold."""
        inputs = keras.Input(shape=(NUM_CLASSES,))
        outputs = keras.layers.Dense(
            NUM_CLASSES, kernel_initializer="identity", name="logits"
        )(inputs)
        return keras.Model(inputs, outputs)

    @parameterized.named_parameters(("graph", False), ("xla", True))
    def test_fit_and_evaluate(self, jit_compile):
        model = self.identity_model()
        model.compile(
            # Learning rate 0: the weights stay the identity.
            optimizer=keras.optimizers.SGD(learning_rate=0.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[
                metrics.TopKAccuracies(ks=(1, 5)),
                metrics.TopKAccuracy(k=3, ties="exclusive"),
            ],
            jit_compile=jit_compile,
        )
        history = model.fit(
            LOGITS,
            LABELS,
            batch_size=4,
            epochs=1,
            validation_data=(LOGITS, LABELS),
            verbose=0,
        )
        logs = {key: value[-1] for key, value in history.history.items()}
        for prefix in ("", "val_"):
            self.assertAllClose(logs[f"{prefix}top1"], 0.4)
            self.assertAllClose(logs[f"{prefix}top3"], 0.8)
            self.assertAllClose(logs[f"{prefix}top5"], 1.0)
        evaluated = model.evaluate(
            LOGITS, LABELS, batch_size=4, return_dict=True, verbose=0
        )
        self.assertEqual(set(evaluated), {"loss", "top1", "top3", "top5"})
        self.assertAllClose(evaluated["top1"], 0.4)
        self.assertAllClose(evaluated["top3"], 0.8)
        self.assertAllClose(evaluated["top5"], 1.0)

    def test_save_and_load_keras_file(self):
        model = self.identity_model()
        model.compile(
            loss="sparse_categorical_crossentropy",
            metrics=[
                metrics.TopKAccuracies(ks=(1, 3), ties="exclusive"),
                metrics.TopKAccuracy(k=5, name="five"),
            ],
        )
        before = model.evaluate(LOGITS, LABELS, return_dict=True, verbose=0)
        path = self.create_tempdir().full_path + "/model.keras"
        model.save(path)
        keras.backend.clear_session()
        loaded = keras.models.load_model(path)
        after = loaded.evaluate(LOGITS, LABELS, return_dict=True, verbose=0)
        self.assertEqual(set(after), {"loss", "top1", "top3", "five"})
        self.assertAllClose(after, before)
        self.assertAllClose(after["top1"], 0.4)
        # The compiled metrics sit in a container beside the loss tracker.
        flat = [
            metric
            for container in loaded.metrics
            for metric in getattr(container, "metrics", [container])
        ]
        restored = {
            type(m).__name__: m
            for m in flat
            if isinstance(m, (metrics.TopKAccuracies, metrics.TopKAccuracy))
        }
        self.assertEqual(restored["TopKAccuracies"].ks, (1, 3))
        self.assertEqual(restored["TopKAccuracies"].ties, "exclusive")
        self.assertEqual(restored["TopKAccuracy"].k, 5)
        self.assertEqual(restored["TopKAccuracy"].name, "five")

    def test_get_config_from_config(self):
        originals = [
            metrics.TopKAccuracies(
                ks=(5, 1), ties="exclusive", name="acc", dtype="float64"
            ),
            metrics.TopKAccuracy(k=3, sparse_labels=False),
            metrics.TopKAccuracies(ks=(1,), multi_label=True, count_ties=True),
            metrics.PerClassTopKAccuracy(7, k=2, ties="exclusive"),
        ]
        for original in originals:
            config = original.get_config()
            clone = type(original).from_config(config)
            self.assertEqual(clone.get_config(), config)
            serialized = keras.saving.serialize_keras_object(original)
            self.assertEqual(
                serialized["registered_name"].split(">")[0], "tf_topk"
            )
            revived = keras.saving.deserialize_keras_object(serialized)
            self.assertIsInstance(revived, type(original))
            self.assertEqual(revived.get_config(), config)
        self.assertEqual(originals[0].get_config()["ks"], [1, 5])
        self.assertEqual(originals[0].get_config()["name"], "acc")
        self.assertEqual(originals[1].get_config()["k"], 3)
        self.assertFalse(originals[1].get_config()["sparse_labels"])
        self.assertTrue(originals[2].get_config()["multi_label"])
        self.assertTrue(originals[2].get_config()["count_ties"])
        self.assertFalse(originals[1].get_config()["count_ties"])
        self.assertNotIn("ks", originals[1].get_config())
        self.assertEqual(originals[3].get_config()["num_classes"], 7)


if __name__ == "__main__":
    tf.test.main()
