"""Inference models: any classifier in the one shape tf_topk evaluates.

`inference_model` wraps a classifier so that it takes float32 images in
0..255 (what `tf_topk.datasets` yields) and returns float32 class
probabilities in the model's 0-based label space (0..999 for ImageNet): the
input preprocessing and the output conversion are two serialisable layers,
`InputPreprocessing` and `ClassProbabilities`.

>>> raw = keras.Sequential([keras.Input((4, 4, 3)),
...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
>>> inference_model(raw, preprocess_input="tf", output="logits").output_shape
(None, 5)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_topk import imagenet
from tf_topk.models import registry

# keras.applications.imagenet_utils: caffe mode flips RGB to BGR, then
# subtracts these BGR means; torch mode scales to [0, 1], then normalises.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def _preprocess(images: Any, mode: str) -> Any:
    if mode == "none":
        return images
    if mode == "tf":
        return images / 127.5 - 1.0
    if mode == "caffe":
        bgr = keras.ops.flip(images, axis=-1)
        mean = keras.ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=images.dtype)
        return bgr - mean
    mean = keras.ops.convert_to_tensor(_TORCH_MEAN, dtype=images.dtype)
    std = keras.ops.convert_to_tensor(_TORCH_STD, dtype=images.dtype)
    return (images / 255.0 - mean) / std


def _check_mode(mode: str, argument: str = "preprocess_mode") -> None:
    if mode not in registry.PREPROCESS_MODES:
        raise ValueError(
            f"Argument `{argument}` must be one of "
            f"{list(registry.PREPROCESS_MODES)} or a callable. Received: "
            f"{argument}={mode!r}"
        )


def _check_output(output: str) -> None:
    if output not in registry.OUTPUTS:
        raise ValueError(
            f"Argument `output` must be one of {list(registry.OUTPUTS)}. "
            f"Received: output={output!r}"
        )


@keras.saving.register_keras_serializable(package="tf_topk")
class InputPreprocessing(keras.layers.Layer):
    """`keras.applications` input preprocessing as a serialisable layer.

    Computes exactly what `imagenet_utils.preprocess_input` computes for
    channels-last float inputs in 0..255: "tf" -> x / 127.5 - 1; "caffe" ->
    RGB to BGR, minus the BGR ImageNet means; "torch" -> x / 255, minus
    mean, over std (ImageNet RGB statistics); "none" -> x.

    >>> layer = InputPreprocessing("tf")
    >>> float(layer(np.full((1, 2, 2, 3), 255.0))[0, 0, 0, 0])
    1.0
    """

    def __init__(self, preprocess_mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_mode(preprocess_mode)
        self.preprocess_mode = preprocess_mode

    def call(self, images):
        images = keras.ops.cast(images, "float32")
        return _preprocess(images, self.preprocess_mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(preprocess_mode=self.preprocess_mode)
        return config


@keras.saving.register_keras_serializable(package="tf_topk")
class ClassProbabilities(keras.layers.Layer):
    """Model outputs to float32 probabilities in the 1000-class label space.

    In order: drop index 0 when the model has a background class (1001
    outputs); restrict to `class_subset` when given (other classes get
    probability exactly 0, the subset's renormalise to sum to 1); softmax
    when the input is logits, renormalise when it is already softmax.
    Renormalising leaves every ranking, hence every top-k, unchanged.
    """

    def __init__(
        self,
        output: str = "softmax",
        has_background_class: bool = False,
        class_subset: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_output(output)
        self.output_kind = output
        self.has_background_class = bool(has_background_class)
        self.class_subset = (
            None if class_subset is None else [int(i) for i in class_subset]
        )

    def build(self, input_shape):
        num_classes = input_shape[-1]
        if num_classes is not None and self.has_background_class:
            num_classes -= 1
        mask = None
        if self.class_subset is not None and num_classes is not None:
            mask = np.zeros((num_classes,), dtype=bool)
            mask[self.class_subset] = True
        self._mask = mask

    def call(self, outputs):
        outputs = keras.ops.cast(outputs, "float32")
        if self.has_background_class:
            outputs = outputs[:, 1:]
        mask = (
            None
            if self._mask is None
            else keras.ops.convert_to_tensor(self._mask)
        )
        if self.output_kind == "logits":
            if mask is not None:
                outputs = keras.ops.where(mask, outputs, float("-inf"))
            return keras.ops.softmax(outputs, axis=-1)
        if mask is not None:
            outputs = keras.ops.where(mask, outputs, 0.0)
        if mask is not None or self.has_background_class:
            # A row whose kept probabilities all underflow to 0 becomes NaN:
            # counted as non-finite rather than as a tie won by the label.
            outputs = outputs / keras.ops.sum(outputs, axis=-1, keepdims=True)
        return outputs

    def compute_output_shape(self, input_shape):
        num_classes = input_shape[-1]
        if num_classes is not None and self.has_background_class:
            num_classes -= 1
        return (input_shape[0], num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            output=self.output_kind,
            has_background_class=self.has_background_class,
            class_subset=self.class_subset,
        )
        return config


def _synset_indices(items: list[str], num_classes: int) -> list[int]:
    index = imagenet.synset_index()
    unknown = [item for item in items if item not in index]
    if unknown:
        raise ValueError(
            "Argument `class_subset` holds synsets that are not among "
            f"the {imagenet.NUM_CLASSES} ImageNet classes: {unknown[:5]}. "
            f"Received {len(items)} synsets"
        )
    if num_classes != imagenet.NUM_CLASSES:
        raise ValueError(
            "Argument `class_subset` given as synsets needs a "
            f"{imagenet.NUM_CLASSES}-class model. Received a model with "
            f"{num_classes} classes"
        )
    return [index[item] for item in items]


def _subset_indices(
    class_subset: Sequence[int | str], num_classes: int
) -> list[int]:
    if isinstance(class_subset, str | bytes) or not isinstance(
        class_subset, Sequence | np.ndarray
    ):
        raise TypeError(
            "Argument `class_subset` must be a list of class indices or "
            f"synsets. Received: class_subset={class_subset!r}"
        )
    items = list(class_subset)
    if not items:
        raise ValueError(
            "Argument `class_subset` must name at least one class. "
            "Received: class_subset=[]"
        )
    if all(isinstance(item, str) for item in items):
        indices = _synset_indices(items, num_classes)
    elif all(
        isinstance(item, int | np.integer) and not isinstance(item, bool)
        for item in items
    ):
        indices = [int(item) for item in items]
        bad = [i for i in indices if not 0 <= i < num_classes]
        if bad:
            raise ValueError(
                f"Argument `class_subset` must hold indices in [0, "
                f"{num_classes}). Received: {bad[:5]}"
            )
    else:
        raise TypeError(
            "Argument `class_subset` must hold only int class indices or "
            f"only synset strings. Received: {items[:5]}"
        )
    if len(set(indices)) != len(indices):
        raise ValueError(
            "Argument `class_subset` must not repeat a class. Received "
            f"{len(indices)} entries for {len(set(indices))} classes"
        )
    return sorted(indices)


def _check_classifier(model: keras.Model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `model` must be a keras.Model. Received: "
            f"{type(model).__name__}"
        )
    if len(model.inputs) != 1:
        raise ValueError(
            "Argument `model` must take one image input. Received a model "
            f"with {len(model.inputs)} inputs"
        )
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError(
            "Argument `model` must return one [batch, classes] tensor. "
            f"Received outputs of shape "
            f"{[tuple(t.shape) for t in model.outputs]}; build it with "
            "include_top=True."
        )


def _image_size(model: keras.Model, image_size: int | None) -> int | None:
    """`image_size`, checked, or the model's static square input size."""
    if image_size is None:
        shape = model.inputs[0].shape
        if len(shape) == 4 and shape[1] is not None and shape[1] == shape[2]:
            return int(shape[1])
        return None
    if not isinstance(image_size, int | np.integer) or image_size <= 0:
        raise ValueError(
            "Argument `image_size` must be a positive integer. Received: "
            f"image_size={image_size!r}"
        )
    return image_size


def _class_subset(
    model: keras.Model,
    class_subset: Sequence[int | str] | None,
    has_background_class: bool,
) -> list[int] | None:
    """`class_subset` as sorted class indices of the model's label space."""
    if class_subset is None:
        return None
    output_shape = model.outputs[0].shape
    if output_shape[-1] is None:
        raise ValueError(
            "Argument `class_subset` needs a model with a static number "
            "of classes. Received outputs of shape "
            f"{tuple(output_shape)}"
        )
    num_classes = output_shape[-1] - int(bool(has_background_class))
    return _subset_indices(class_subset, num_classes)


def _preprocessing_layer(
    preprocess_input: Callable[[Any], Any] | str | None,
) -> keras.layers.Layer:
    if isinstance(preprocess_input, keras.layers.Layer):
        return preprocess_input
    if preprocess_input is None or isinstance(preprocess_input, str):
        mode = "none" if preprocess_input is None else preprocess_input
        _check_mode(mode, "preprocess_input")
        return InputPreprocessing(mode, name="preprocess")
    if callable(preprocess_input):
        return keras.layers.Lambda(preprocess_input, name="preprocess")
    raise TypeError(
        "Argument `preprocess_input` must be a mode name, a callable or "
        f"None. Received: {preprocess_input!r}"
    )


def inference_model(
    model: keras.Model,
    *,
    preprocess_input: Callable[[Any], Any] | str | None = None,
    output: str = "softmax",
    image_size: int | None = None,
    has_background_class: bool = False,
    class_subset: Sequence[int | str] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Wraps a classifier into 0..255 images -> float32 probabilities.

    The returned model takes float32 [B, S, S, 3] images in 0..255 (what
    `tf_topk.datasets` yields), applies `preprocess_input`, runs `model`
    and returns [B, C] float32 class probabilities.

    Label space: the output always stays in the model's 0-based class space
    (0..999 for ImageNet): a 1001-output model with a background class
    loses index 0, and `class_subset` masks classes without renumbering,
    so ImageNet-A / ImageNet-R labels stay in 1000-class space. Labels
    stored 1-based are the data pipeline's `label_offset`, not this.

    Args:
        model: a `keras.Model` with one image input and [B, C] outputs.
        preprocess_input: a mode name ("tf", "caffe", "torch", "none"; a
            serialisable layer), a `keras.layers.Layer` used as is, a
            callable applied to the float32 images (not serialisable), or
            None (the model takes 0..255).
        output: "softmax" if `model` returns probabilities, "logits" if it
            returns logits (a softmax is applied).
        image_size: square input size; defaults to the model's static
            input size (None leaves height and width dynamic).
        has_background_class: the model has C + 1 outputs, index 0 being
            the background (TF-slim style 1001-class checkpoints).
        class_subset: class indices or ImageNet synsets ("n01440764"); the
            other classes get probability 0 and the subset's probabilities
            sum to 1, so top-k only picks among the subset.
        name: the returned model's name; defaults to `model.name`.

    Returns:
        A `keras.Model` from images to probabilities.

    Example:

    >>> raw = keras.Sequential([keras.Input((4, 4, 3)),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    >>> wrapped = inference_model(raw, preprocess_input="tf",
    ...     output="logits")
    >>> wrapped.output_shape
    (None, 5)
    """
    _check_classifier(model)
    _check_output(output)
    image_size = _image_size(model, image_size)
    subset = _class_subset(model, class_subset, has_background_class)
    images = keras.Input(
        shape=(image_size, image_size, 3), dtype="float32", name="images"
    )
    inputs = _preprocessing_layer(preprocess_input)(images)
    probabilities = ClassProbabilities(
        output=output,
        has_background_class=has_background_class,
        class_subset=subset,
        name="probabilities",
    )(model(inputs))
    return keras.Model(images, probabilities, name=name or model.name)


def predict(model, images, num_classes: int) -> tf.Tensor:
    """Model outputs as float32 [B, C]; multi-crop outputs averaged.

    >>> from tf_topk import testing
    >>> model = testing.oracle_model(5)
    >>> images = tf.constant(testing.constant_image(2, 5)[None])
    >>> int(tf.argmax(predict(model, images, 5)[0]))
    2

    Args:
        model: maps an image batch (or a list, one per ensemble member) to
            [B, C] class scores.
        images: a tensor batch [B, H, W, 3] or multi-crop batch
            [B, N, H, W, 3] (the N outputs are averaged), or a list, one per
            ensemble member.
        num_classes: C, the number of model outputs.
    """
    flat = tf.nest.flatten(images)
    crops = flat[0].shape.rank == 5
    if crops:
        num_crops = tf.shape(flat[0])[1]
        flat = [
            tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)) for x in flat
        ]
    inputs = flat[0] if len(flat) == 1 else flat
    outputs = tf.cast(model(inputs, training=False), tf.float32)
    if crops:
        outputs = tf.reduce_mean(
            tf.reshape(outputs, [-1, num_crops, num_classes]), axis=1
        )
    return outputs


def num_classes(model) -> int:
    """The number of classes `model` outputs (its static last dimension).

    Raises:
        ValueError: the model has no static number of outputs.
    """
    shape = getattr(model, "output_shape", None)
    if shape is None or not isinstance(shape[-1], int):
        raise ValueError(
            "Argument `model` must have a static number of output classes "
            f"(output_shape[-1]). Received: output_shape={shape}"
        )
    return int(shape[-1])
