"""Models that fail on purpose: a real out-of-memory error above a batch size.

`out_of_memory_above(model, max_batch_size)` wraps a model so that a batch
of more than `max_batch_size` images raises the allocator's own
`tf.errors.ResourceExhaustedError` (it asks for a 256 GiB tensor, which no
allocator grants, CPU included), while smaller batches give the model's
outputs unchanged: the out-of-memory back-off must then count exactly what
a run at a batch that fits counts.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class OutOfMemoryAbove(keras.layers.Layer):
    """Passes its input through; above `max_batch_size` rows per call it
    asks the allocator for an impossible tensor (a real OOM error)."""

    def __init__(self, max_batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.max_batch_size = max_batch_size

    def call(self, images):
        rows = tf.shape(images)[0]
        # 2**18 x 2**18 float32: 256 GiB above the limit, one float below.
        side = tf.where(rows > self.max_batch_size, 1 << 18, 1)
        impossible = tf.random.uniform(tf.stack([side, side]))
        return images + 0.0 * impossible[0, 0]

    def get_config(self):
        return {**super().get_config(), "max_batch_size": self.max_batch_size}


def out_of_memory_above(model: keras.Model, max_batch_size: int) -> keras.Model:
    """`model` behind an `OutOfMemoryAbove(max_batch_size)` layer.

    >>> from tf_topk import testing
    >>> model = out_of_memory_above(testing.oracle_model(5), 2)
    >>> model(tf.zeros([2, 32, 32, 3])).shape
    TensorShape([2, 5])
    """
    inputs = keras.Input(shape=model.input_shape[1:])
    outputs = model(OutOfMemoryAbove(max_batch_size)(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_oom")
