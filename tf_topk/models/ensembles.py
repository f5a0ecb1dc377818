"""Ensembles: the weighted mean of several inference models' probabilities.

Each member keeps its own input size and preprocessing (see
`tf_topk.models.inference_model`); top-k is taken on the mean.

>>> from tf_topk import models
>>> members = [models.inference_model(keras.Sequential([
...     keras.Input((2, 2, 3)), keras.layers.Flatten(),
...     keras.layers.Dense(5)]), output="logits", name=f"m{i}")
...     for i in range(2)]
>>> ensemble(members, weights=[3, 1]).output_shape
(None, 5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="tf_topk")
class WeightedAverage(keras.layers.Layer):
    """sum_i w_i * x_i / sum_i w_i over a list of same-shape tensors."""

    def __init__(self, weights: Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.member_weights = [float(w) for w in weights]

    def call(self, inputs):
        total = sum(self.member_weights)
        result = None
        for weight, tensor in zip(self.member_weights, inputs, strict=True):
            term = keras.ops.cast(tensor, "float32") * (weight / total)
            result = term if result is None else result + term
        return result

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(weights=self.member_weights)
        return config


def _check_members(members: Sequence[keras.Model]) -> list[keras.Model]:
    if isinstance(members, keras.Model) or not isinstance(members, Sequence):
        raise TypeError(
            "Argument `members` must be a list of keras.Model. Received: "
            f"{type(members).__name__}"
        )
    members = list(members)
    if not members:
        raise ValueError(
            "Argument `members` must hold at least one model. Received: "
            "members=[]"
        )
    for index, member in enumerate(members):
        if not isinstance(member, keras.Model):
            raise TypeError(
                "Argument `members` must hold only keras.Model. Received: "
                f"members[{index}] of type {type(member).__name__}"
            )
    return members


def _check_weights(
    weights: Sequence[float] | None, num_members: int
) -> list[float]:
    if weights is None:
        weights = [1.0] * num_members
    weights = [float(w) for w in weights]
    if len(weights) != num_members:
        raise ValueError(
            f"Argument `weights` must have one entry per member "
            f"({num_members}). Received: weights={weights}"
        )
    if any(not np.isfinite(w) or w < 0 for w in weights):
        raise ValueError(
            "Argument `weights` must be finite and non-negative. Received: "
            f"weights={weights}"
        )
    if sum(weights) <= 0:
        raise ValueError(
            "Argument `weights` must not be all zero. Received: "
            f"weights={weights}"
        )
    return weights


def _uniquely_named(members: list[keras.Model]) -> list[keras.Model]:
    """Members under unique names, as Keras needs for its operations.

    A repeated member name (two weights files of one architecture) gets a
    renamed wrapper that shares the member's layers.
    """
    counts: dict[str, int] = {}
    for member in members:
        counts[member.name] = counts.get(member.name, 0) + 1
    return [
        member
        if counts[member.name] == 1
        else keras.Model(
            member.inputs[0], member.outputs[0], name=f"{member.name}_{index}"
        )
        for index, member in enumerate(members)
    ]


def ensemble(
    members: Sequence[keras.Model],
    *,
    weights: Sequence[float] | None = None,
    name: str = "ensemble",
) -> keras.Model:
    """Averages the class probabilities of several inference models.

    The ensemble takes a LIST of image batches, one per member in member
    order (each member keeps its own input size and preprocessing), and
    returns the weighted mean of the members' probabilities; top-k is then
    taken on the mean.

    Args:
        members: inference models (see `tf_topk.models.inference_model`)
            with the same number of classes.
        weights: one non-negative weight per member, not all zero; they are
            normalised to sum to 1. Defaults to equal weights.
        name: the ensemble model's name.

    Returns:
        A `keras.Model` from [images_0, images_1, ...] to [B, C].
    """
    members = _check_members(members)
    weights = _check_weights(weights, len(members))
    num_classes = [member.outputs[0].shape[-1] for member in members]
    if len(set(num_classes)) != 1:
        raise ValueError(
            "Argument `members` must all return the same number of "
            f"classes. Received: {num_classes}"
        )
    members = _uniquely_named(members)
    inputs = [
        keras.Input(
            shape=tuple(member.inputs[0].shape[1:]),
            dtype="float32",
            name=f"images_{index}",
        )
        for index, member in enumerate(members)
    ]
    outputs = [
        member(tensor) for member, tensor in zip(members, inputs, strict=True)
    ]
    average = WeightedAverage(weights, name="average")(outputs)
    return keras.Model(inputs, average, name=name)
