"""Every ImageNet classifier in `keras.applications`: contracts, ensembles.

A wrong ImageNet number usually comes from pairing a model with the wrong
input size, `preprocess_input` mode, label space or weights file. `ModelSpec`
records each model's contract; `load` returns the raw Keras application with
its weights; `inference_model` wraps any classifier into the one shape the
rest of tf_topk evaluates: float32 images in 0..255 in, float32 class
probabilities in the 0-based 1000-class label space out. `ensemble` averages
several such models, each with its own input size and preprocessing.

>>> spec = get_spec("mobilenet")
>>> spec.input_size, spec.preprocess_mode, spec.published(alpha=0.75)
(224, 'tf', (0.684, 0.882))
>>> model = build("mobilenet", weights=None, alpha=0.25, image_size=128)
>>> model.output_shape
(None, 1000)
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import keras
import numpy as np
from absl import logging

PREPROCESS_MODES = ("caffe", "none", "tf", "torch")
OUTPUTS = ("logits", "softmax")
INTERPOLATIONS = ("bicubic", "bilinear")

# keras.applications.imagenet_utils: caffe mode flips RGB to BGR, then
# subtracts these BGR means; torch mode scales to [0, 1], then normalises.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)

_FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_SYNSET_PATTERN = re.compile(r"^n\d{8}$")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The evaluation contract of one `keras.applications` classifier.

    Attributes:
        name: lowercase registry key, e.g. "mobilenet_v2".
        constructor: the `keras.applications` function building the model.
        module: the `keras.applications` submodule the constructor belongs
            to (its `preprocess_input` is the reference for
            `preprocess_mode`).
        input_size: Keras' default (and weights') square input size.
        preprocess_input: the module's `preprocess_input`, or None where the
            model rescales its 0..255 input itself.
        preprocess_mode: "tf" ([-1, 1]), "caffe" (BGR, ImageNet means
            subtracted), "torch" ([0, 1], ImageNet mean / std) or "none"
            (the model takes 0..255).
        crop_fraction: centre-crop fraction of the reference evaluation.
        interpolation: resize method of the reference evaluation.
        num_classes: number of outputs of the ImageNet head.
        output: "softmax" (the head ends in a softmax) or "logits".
        top1: published top-1 (fraction) from the Keras Applications
            table, None where unknown.
        top5: published top-5 (fraction), None where unknown.
        published_table: (alpha, image_size, top1, top5) rows of the
            TF-slim tables, for the families published per width and
            resolution (MobileNet, MobileNetV2).
    """

    name: str
    constructor: Callable[..., keras.Model] = dataclasses.field(repr=False)
    module: ModuleType = dataclasses.field(repr=False)
    input_size: int
    preprocess_input: Callable[..., Any] | None = dataclasses.field(repr=False)
    preprocess_mode: str
    crop_fraction: float = 0.875
    interpolation: str = "bilinear"
    num_classes: int = 1000
    output: str = "softmax"
    top1: float | None = None
    top5: float | None = None
    published_table: tuple[tuple[float, int, float, float], ...] = (
        dataclasses.field(default=(), repr=False)
    )

    @property
    def keras_name(self) -> str:
        """The constructor's name in `keras.applications`, e.g. "MobileNet"."""
        return self.constructor.__name__

    def published(
        self, *, alpha: float = 1.0, image_size: int | None = None
    ) -> tuple[float, float] | None:
        """Published (top1, top5) fractions for a width and resolution.

        MobileNet and MobileNetV2 answer from the TF-slim tables (the
        checkpoints Keras converted its weights from); every other model
        answers its Keras Applications figures at alpha 1.0 and its default
        input size only. None where nothing was published.

        Args:
            alpha: the width multiplier.
            image_size: square input size; defaults to `input_size`.
        """
        image_size = self.input_size if image_size is None else image_size
        if self.published_table:
            for row_alpha, row_size, top1, top5 in self.published_table:
                if abs(row_alpha - alpha) < 1e-6 and row_size == image_size:
                    return top1, top5
            return None
        if alpha != 1.0 or image_size != self.input_size:
            return None
        if self.top1 is None or self.top5 is None:
            return None
        return self.top1, self.top5


# TF-slim research/slim/nets/mobilenet_v1.md, float checkpoints; single
# centre crop on the ILSVRC2012 validation set.
_MOBILENET_V1_SLIM = (
    (1.0, 224, 0.709, 0.899),
    (1.0, 192, 0.700, 0.892),
    (1.0, 160, 0.680, 0.877),
    (1.0, 128, 0.652, 0.858),
    (0.75, 224, 0.684, 0.882),
    (0.75, 192, 0.672, 0.873),
    (0.75, 160, 0.653, 0.860),
    (0.75, 128, 0.621, 0.839),
    (0.5, 224, 0.633, 0.849),
    (0.5, 192, 0.617, 0.836),
    (0.5, 160, 0.591, 0.819),
    (0.5, 128, 0.563, 0.794),
    (0.25, 224, 0.498, 0.742),
    (0.25, 192, 0.477, 0.723),
    (0.25, 160, 0.455, 0.703),
    (0.25, 128, 0.415, 0.663),
)

# TF-slim research/slim/nets/mobilenet/README.md, "Mobilenet V2 Imagenet
# Checkpoints".
_MOBILENET_V2_SLIM = (
    (1.4, 224, 0.750, 0.925),
    (1.3, 224, 0.744, 0.921),
    (1.0, 224, 0.718, 0.910),
    (1.0, 192, 0.707, 0.901),
    (1.0, 160, 0.688, 0.890),
    (1.0, 128, 0.653, 0.869),
    (1.0, 96, 0.603, 0.832),
    (0.75, 224, 0.698, 0.896),
    (0.75, 192, 0.687, 0.889),
    (0.75, 160, 0.664, 0.873),
    (0.75, 128, 0.632, 0.853),
    (0.75, 96, 0.588, 0.816),
    (0.5, 224, 0.654, 0.864),
    (0.5, 192, 0.639, 0.854),
    (0.5, 160, 0.610, 0.832),
    (0.5, 128, 0.577, 0.808),
    (0.5, 96, 0.512, 0.758),
    (0.35, 224, 0.603, 0.829),
    (0.35, 192, 0.582, 0.812),
    (0.35, 160, 0.557, 0.791),
    (0.35, 128, 0.508, 0.750),
    (0.35, 96, 0.455, 0.704),
)


def _spec(
    name: str,
    keras_name: str,
    module_name: str,
    input_size: int,
    preprocess_mode: str,
    top1: float | None,
    top5: float | None,
    **options: Any,
) -> ModelSpec:
    module = getattr(keras.applications, module_name)
    return ModelSpec(
        name=name,
        # Some submodules (mobilenet_v3) do not re-export constructors.
        constructor=getattr(keras.applications, keras_name),
        module=module,
        input_size=input_size,
        preprocess_input=(
            None if preprocess_mode == "none" else module.preprocess_input
        ),
        preprocess_mode=preprocess_mode,
        top1=top1,
        top5=top5,
        **options,
    )


# (name, keras constructor, keras.applications module, input size,
# preprocess mode, top-1, top-5). Figures: the Keras Applications table
# (keras.io/api/applications), measured with a 224/256 = 0.875 centre crop
# (bilinear) at each model's default size; MobileNetV3: the keras
# mobilenet_v3 docstring (top-1 only); ConvNeXt: top-1 only in the table.
# Mode "none": the model rescales 0..255 inputs itself (MobileNetV3,
# EfficientNetV2 and ConvNeXt with include_preprocessing=True, their
# default; EfficientNet always).
_TABLE = (
    ("xception", "Xception", "xception", 299, "tf", 0.790, 0.945),
    ("vgg16", "VGG16", "vgg16", 224, "caffe", 0.713, 0.901),
    ("vgg19", "VGG19", "vgg19", 224, "caffe", 0.713, 0.900),
    ("resnet50", "ResNet50", "resnet", 224, "caffe", 0.749, 0.921),
    ("resnet101", "ResNet101", "resnet", 224, "caffe", 0.764, 0.928),
    ("resnet152", "ResNet152", "resnet", 224, "caffe", 0.766, 0.931),
    ("resnet50_v2", "ResNet50V2", "resnet_v2", 224, "tf", 0.760, 0.930),
    ("resnet101_v2", "ResNet101V2", "resnet_v2", 224, "tf", 0.772, 0.938),
    ("resnet152_v2", "ResNet152V2", "resnet_v2", 224, "tf", 0.780, 0.942),
    ("inception_v3", "InceptionV3", "inception_v3", 299, "tf", 0.779, 0.937),
    (
        "inception_resnet_v2", "InceptionResNetV2", "inception_resnet_v2",
        299, "tf", 0.803, 0.953,
    ),
    ("mobilenet", "MobileNet", "mobilenet", 224, "tf", 0.704, 0.895),
    ("mobilenet_v2", "MobileNetV2", "mobilenet_v2", 224, "tf", 0.713, 0.901),
    (
        "mobilenet_v3_small", "MobileNetV3Small", "mobilenet_v3", 224,
        "none", 0.681, None,
    ),
    (
        "mobilenet_v3_large", "MobileNetV3Large", "mobilenet_v3", 224,
        "none", 0.756, None,
    ),
    ("densenet121", "DenseNet121", "densenet", 224, "torch", 0.750, 0.923),
    ("densenet169", "DenseNet169", "densenet", 224, "torch", 0.762, 0.932),
    ("densenet201", "DenseNet201", "densenet", 224, "torch", 0.773, 0.936),
    ("nasnet_mobile", "NASNetMobile", "nasnet", 224, "tf", 0.744, 0.919),
    ("nasnet_large", "NASNetLarge", "nasnet", 331, "tf", 0.825, 0.960),
    ("efficientnet_b0", "EfficientNetB0", "efficientnet", 224, "none",
     0.771, 0.933),
    ("efficientnet_b1", "EfficientNetB1", "efficientnet", 240, "none",
     0.791, 0.944),
    ("efficientnet_b2", "EfficientNetB2", "efficientnet", 260, "none",
     0.801, 0.949),
    ("efficientnet_b3", "EfficientNetB3", "efficientnet", 300, "none",
     0.816, 0.957),
    ("efficientnet_b4", "EfficientNetB4", "efficientnet", 380, "none",
     0.829, 0.964),
    ("efficientnet_b5", "EfficientNetB5", "efficientnet", 456, "none",
     0.836, 0.967),
    ("efficientnet_b6", "EfficientNetB6", "efficientnet", 528, "none",
     0.840, 0.968),
    ("efficientnet_b7", "EfficientNetB7", "efficientnet", 600, "none",
     0.843, 0.970),
    ("efficientnet_v2_b0", "EfficientNetV2B0", "efficientnet_v2", 224,
     "none", 0.787, 0.943),
    ("efficientnet_v2_b1", "EfficientNetV2B1", "efficientnet_v2", 240,
     "none", 0.798, 0.950),
    ("efficientnet_v2_b2", "EfficientNetV2B2", "efficientnet_v2", 260,
     "none", 0.805, 0.951),
    ("efficientnet_v2_b3", "EfficientNetV2B3", "efficientnet_v2", 300,
     "none", 0.820, 0.958),
    ("efficientnet_v2_s", "EfficientNetV2S", "efficientnet_v2", 384,
     "none", 0.839, 0.967),
    ("efficientnet_v2_m", "EfficientNetV2M", "efficientnet_v2", 480,
     "none", 0.853, 0.974),
    ("efficientnet_v2_l", "EfficientNetV2L", "efficientnet_v2", 480,
     "none", 0.857, 0.975),
    ("convnext_tiny", "ConvNeXtTiny", "convnext", 224, "none", 0.813, None),
    ("convnext_small", "ConvNeXtSmall", "convnext", 224, "none", 0.823, None),
    ("convnext_base", "ConvNeXtBase", "convnext", 224, "none", 0.853, None),
    ("convnext_large", "ConvNeXtLarge", "convnext", 224, "none", 0.863, None),
    (
        "convnext_xlarge", "ConvNeXtXLarge", "convnext", 224, "none",
        0.867, None,
    ),
)  # fmt: skip


def _options(name: str, input_size: int) -> dict[str, Any]:
    """Reference evaluation settings that differ from 0.875 / bilinear."""
    if name == "mobilenet":
        return {"published_table": _MOBILENET_V1_SLIM}
    if name == "mobilenet_v2":
        return {"published_table": _MOBILENET_V2_SLIM}
    if name.startswith("efficientnet_v2"):
        # google/automl efficientnetv2/preprocessing.py preprocess_for_eval:
        # centre crop size / (size + 32) below 320 px, none from 320 px;
        # tf.image.resize's default bilinear.
        crop = input_size / (input_size + 32) if input_size < 320 else 1.0
        return {"crop_fraction": crop}
    if name.startswith("efficientnet"):
        # tensorflow/tpu models/official/efficientnet/preprocessing.py:
        # centre crop 0.875 of the shorter side, bicubic resize.
        return {"interpolation": "bicubic"}
    if name.startswith("convnext"):
        # facebookresearch/ConvNeXt evaluation at 224: crop_pct 0.875,
        # bicubic.
        return {"interpolation": "bicubic"}
    return {}


def _registry() -> dict[str, ModelSpec]:
    specs = {}
    for name, keras_name, module_name, size, mode, top1, top5 in _TABLE:
        specs[name] = _spec(
            name, keras_name, module_name, size, mode, top1, top5,
            **_options(name, size),
        )  # fmt: skip
    return specs


_REGISTRY = _registry()


def names() -> list[str]:
    """The registry keys, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The `ModelSpec` registered under `name` (case-insensitive).

    Raises:
        ValueError: `name` is not a registry key; the message lists them.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"Argument `name` must be a string. Received: name={name!r} "
            f"of type {type(name).__name__}"
        )
    spec = _REGISTRY.get(name.lower())
    if spec is None:
        raise ValueError(
            f"Argument `name` must be one of {names()}. Received: name={name!r}"
        )
    return spec


# ---------------------------------------------------------------- synsets


def imagenet_synsets() -> list[str]:
    """The 1000 ILSVRC2012 synsets in sorted order; index i is class i.

    Read from the copy tensorflow-datasets bundles
    (`datasets/imagenet2012/labels.txt`, the Keras / tfds class order).
    """
    return list(_imagenet_synsets())


_SYNSETS: tuple[str, ...] | None = None


def _imagenet_synsets() -> tuple[str, ...]:
    global _SYNSETS
    if _SYNSETS is None:
        import tensorflow_datasets as tfds

        path = tfds.core.tfds_path("datasets/imagenet2012/labels.txt")
        lines = Path(path).read_text().split()
        synsets = tuple(line.strip() for line in lines if line.strip())
        if len(synsets) != 1000 or list(synsets) != sorted(synsets):
            raise ValueError(
                f"Expected 1000 sorted synsets in {path}. Received: "
                f"{len(synsets)} lines"
            )
        _SYNSETS = synsets
    return _SYNSETS


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
        synsets = _imagenet_synsets()
        index = {synset: i for i, synset in enumerate(synsets)}
        unknown = [item for item in items if item not in index]
        if unknown:
            raise ValueError(
                "Argument `class_subset` holds synsets that are not among "
                f"the 1000 ImageNet classes: {unknown[:5]}. Received "
                f"{len(items)} synsets"
            )
        indices = [index[item] for item in items]
        if num_classes != len(synsets):
            raise ValueError(
                "Argument `class_subset` given as synsets needs a "
                f"{len(synsets)}-class model. Received a model with "
                f"{num_classes} classes"
            )
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


# ---------------------------------------------------------------- loading


def load(
    name: str | None,
    *,
    weights: str | os.PathLike | None = "imagenet",
    **kwargs: Any,
) -> keras.Model:
    """The raw classifier: inputs after the spec's `preprocess_input`.

    Args:
        name: a registry key (see `names()`), or None / "custom" when
            `weights` is a whole saved model or a factory.
        weights: one of
            - "imagenet": Keras' pretrained weights, from the Keras cache
              (`$KERAS_HOME/models/`, default `~/.keras/models/`; the
              variable is read when this function runs) or downloaded;
            - a Keras 2 `.h5` / `.hdf5` weights file (the layout Keras
              downloads) or a Keras 3 `.weights.h5` file, loaded into the
              registry architecture built with `kwargs`;
            - a whole saved model: a `.keras` file or a TF SavedModel
              directory (wrapped in `keras.layers.TFSMLayer`);
            - None: random initialisation;
            - "package.module:factory": `factory(**kwargs)` returning a
              `keras.Model`.
        **kwargs: passed to the constructor, e.g. `alpha`, `input_shape`,
            `classes`, `include_top`.

    Returns:
        A `keras.Model`.

    Raises:
        FileNotFoundError: `weights` names a missing path, or "imagenet"
            weights are neither cached nor downloadable (the message names
            the file to place in the cache).
        ValueError: unknown `name`, a weights form that does not fit the
            other arguments.
        TypeError: `weights` of the wrong type, a factory returning no
            `keras.Model`.
    """
    if weights is not None and not isinstance(weights, str | os.PathLike):
        raise TypeError(
            "Argument `weights` must be 'imagenet', None, a path or "
            f"'package.module:factory'. Received: weights={weights!r} of "
            f"type {type(weights).__name__}"
        )
    spec = None if name is None or name == "custom" else get_spec(name)
    if isinstance(weights, str) and _FACTORY_PATTERN.match(weights):
        if not os.path.exists(weights):
            return _load_factory(weights, kwargs)
    if weights is not None and weights != "imagenet":
        path = os.fspath(weights)
        if not os.path.exists(path):
            raise FileNotFoundError(
                "Argument `weights` names a path that does not exist. "
                f"Received: weights={path!r}"
            )
        if os.path.isdir(path) or path.endswith(".keras"):
            if kwargs:
                raise ValueError(
                    f"Arguments {sorted(kwargs)} configure a constructor "
                    "and cannot apply to a whole saved model. Received: "
                    f"weights={path!r} with {kwargs}"
                )
            return _load_whole_model(path)
    if spec is None:
        raise ValueError(
            "Argument `name` must be a registry model when `weights` is "
            "'imagenet', None or a weights file (a whole saved model or a "
            f"factory may go without). Received: name={name!r}, "
            f"weights={weights!r}"
        )
    if weights is None:
        return spec.constructor(weights=None, **kwargs)
    if weights == "imagenet":
        with _keras_cache(spec) as fetched:
            model = spec.constructor(weights="imagenet", **kwargs)
        if fetched:
            # The file Keras read: results can record its hash.
            model.tf_topk_weights_file = fetched[-1]
            logging.info("Loaded %s weights from %s", spec.name, fetched[-1])
        return model
    path = os.fspath(weights)
    if not path.endswith((".h5", ".hdf5")):
        raise ValueError(
            "Argument `weights` must be a `.weights.h5`, `.h5`, `.hdf5` or "
            "`.keras` file or a SavedModel directory. Received: "
            f"weights={path!r}"
        )
    model = spec.constructor(weights=None, **kwargs)
    model.tf_topk_weights_file = path
    try:
        model.load_weights(path)
    except Exception as error:
        raise ValueError(
            f"Could not load weights {path!r} into {spec.keras_name}"
            f"({_format_kwargs(kwargs)}): {error}. Check that the file was "
            "saved from the same architecture and width (e.g. `alpha`)."
        ) from error
    logging.info("Loaded %s weights from %s", spec.name, path)
    return model


def _format_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


def _load_factory(target: str, kwargs: dict[str, Any]) -> keras.Model:
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"Argument `weights` names a factory whose module cannot be "
            f"imported: {error}. Received: weights={target!r}"
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(
            f"Argument `weights` names no callable {attribute!r} in module "
            f"{module_name!r}. Received: weights={target!r}"
        )
    model = factory(**kwargs)
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"The factory {target!r} must return a keras.Model. Received: "
            f"{type(model).__name__}"
        )
    return model


def _load_whole_model(path: str) -> keras.Model:
    if not os.path.isdir(path):
        return keras.saving.load_model(path, compile=False)
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise ValueError(
            "Argument `weights` is a directory without saved_model.pb, so "
            f"not a TF SavedModel. Received: weights={path!r}"
        )
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    endpoint = (
        "serving_default"
        if "serving_default" in loaded.signatures
        else next(iter(loaded.signatures), None)
    )
    if endpoint is None:
        raise ValueError(
            "Argument `weights` is a SavedModel without a serving "
            f"signature. Received: weights={path!r}"
        )
    args, named = loaded.signatures[endpoint].structured_input_signature
    input_specs = list(args) + list(named.values())
    if len(input_specs) != 1:
        raise ValueError(
            "Argument `weights` is a SavedModel whose signature "
            f"{endpoint!r} takes {len(input_specs)} inputs; tf_topk needs "
            f"one image batch. Received: weights={path!r}"
        )
    input_spec = input_specs[0]
    layer = keras.layers.TFSMLayer(path, call_endpoint=endpoint)
    inputs = keras.Input(
        shape=tuple(input_spec.shape[1:]), dtype=input_spec.dtype.name
    )
    outputs = layer(inputs)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ValueError(
                f"Argument `weights` is a SavedModel whose signature "
                f"{endpoint!r} returns {sorted(outputs)}; tf_topk needs one "
                f"output. Received: weights={path!r}"
            )
        outputs = next(iter(outputs.values()))
    return keras.Model(inputs, outputs, name=Path(path).name or "saved_model")


@contextlib.contextmanager
def _keras_cache(spec: ModelSpec) -> Iterator[list[str]]:
    """Resolve the Keras cache at call time and explain offline failures.

    Keras reads `KERAS_HOME` once, at import; the applications fetch their
    weights through `keras.src.utils.file_utils.get_file`, so wrapping it
    lets `$KERAS_HOME` set later count, and names the file a failed
    download needed. Yields the list of the files fetched.
    """
    fetched: list[str] = []
    try:
        from keras.src.utils import file_utils
    except ImportError:  # A Keras without this layout: plain behaviour.
        yield fetched
        return
    original = file_utils.get_file

    def get_file(*args: Any, **kwargs: Any) -> str:
        home = os.environ.get("KERAS_HOME")
        if home and len(args) < 10 and kwargs.get("cache_dir") is None:
            kwargs["cache_dir"] = home
        fname = kwargs.get("fname", args[0] if args else None)
        origin = kwargs.get("origin", args[1] if len(args) > 1 else None)
        subdir = kwargs.get("cache_subdir", "datasets")
        cache_dir = kwargs.get("cache_dir") or _keras_home()
        target = os.path.join(os.path.expanduser(cache_dir), subdir, fname)
        cached = os.path.exists(target)
        try:
            path = original(*args, **kwargs)
            fetched.append(path)
            return path
        except Exception as error:
            if cached:
                raise
            raise FileNotFoundError(
                f"The ImageNet weights of {spec.name!r} are not in the Keras "
                f"cache and could not be downloaded from {origin} ({error}). "
                f"Offline, place the file as {target} (the Keras cache is "
                "$KERAS_HOME/models/, default ~/.keras/models/), or pass "
                f"the local file: load({spec.name!r}, "
                f"weights='/path/to/{fname}')."
            ) from error

    file_utils.get_file = get_file
    try:
        yield fetched
    finally:
        file_utils.get_file = original


def _keras_home() -> str:
    try:
        from keras.src.backend import config

        return config.keras_home()
    except (ImportError, AttributeError):
        return os.path.join(os.path.expanduser("~"), ".keras")


# ------------------------------------------------------- inference models


def _preprocess(images: Any, mode: str) -> Any:
    ops = keras.ops
    if mode == "none":
        return images
    if mode == "tf":
        return images / 127.5 - 1.0
    if mode == "caffe":
        bgr = ops.flip(images, axis=-1)
        mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=images.dtype)
        return bgr - mean
    mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=images.dtype)
    std = ops.convert_to_tensor(_TORCH_STD, dtype=images.dtype)
    return (images / 255.0 - mean) / std


def _check_mode(mode: str, argument: str = "preprocess_mode") -> None:
    if mode not in PREPROCESS_MODES:
        raise ValueError(
            f"Argument `{argument}` must be one of "
            f"{list(PREPROCESS_MODES)} or a callable. Received: "
            f"{argument}={mode!r}"
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
        if output not in OUTPUTS:
            raise ValueError(
                f"Argument `output` must be one of {list(OUTPUTS)}. "
                f"Received: output={output!r}"
            )
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
        ops = keras.ops
        outputs = ops.cast(outputs, "float32")
        if self.has_background_class:
            outputs = outputs[:, 1:]
        mask = None if self._mask is None else ops.convert_to_tensor(self._mask)
        if self.output_kind == "logits":
            if mask is not None:
                outputs = ops.where(mask, outputs, float("-inf"))
            return ops.softmax(outputs, axis=-1)
        if mask is not None:
            outputs = ops.where(mask, outputs, 0.0)
        if mask is not None or self.has_background_class:
            # A row whose kept probabilities all underflow to 0 becomes NaN:
            # counted as non-finite rather than as a tie won by the label.
            outputs = outputs / ops.sum(outputs, axis=-1, keepdims=True)
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


def _image_size_of(model: keras.Model) -> int | None:
    shape = model.inputs[0].shape
    if len(shape) == 4 and shape[1] is not None and shape[1] == shape[2]:
        return int(shape[1])
    return None


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
            serialisable layer), a callable applied to the float32 images
            (not serialisable), or None (the model takes 0..255).
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
    output_shape = model.outputs[0].shape
    if len(model.outputs) != 1 or len(output_shape) != 2:
        raise ValueError(
            "Argument `model` must return one [batch, classes] tensor. "
            f"Received outputs of shape "
            f"{[tuple(t.shape) for t in model.outputs]}; build it with "
            "include_top=True."
        )
    if output not in OUTPUTS:
        raise ValueError(
            f"Argument `output` must be one of {list(OUTPUTS)}. Received: "
            f"output={output!r}"
        )
    if image_size is None:
        image_size = _image_size_of(model)
    elif not isinstance(image_size, int | np.integer) or image_size <= 0:
        raise ValueError(
            "Argument `image_size` must be a positive integer. Received: "
            f"image_size={image_size!r}"
        )
    num_outputs = output_shape[-1]
    subset = None
    if class_subset is not None:
        if num_outputs is None:
            raise ValueError(
                "Argument `class_subset` needs a model with a static number "
                "of classes. Received outputs of shape "
                f"{tuple(output_shape)}"
            )
        num_classes = num_outputs - int(bool(has_background_class))
        subset = _subset_indices(class_subset, num_classes)
    name = name or model.name
    images = keras.Input(
        shape=(image_size, image_size, 3), dtype="float32", name="images"
    )
    if preprocess_input is None or isinstance(preprocess_input, str):
        mode = "none" if preprocess_input is None else preprocess_input
        _check_mode(mode, "preprocess_input")
        inputs = InputPreprocessing(mode, name="preprocess")(images)
    elif callable(preprocess_input):
        inputs = keras.layers.Lambda(preprocess_input, name="preprocess")(
            images
        )
    else:
        raise TypeError(
            "Argument `preprocess_input` must be a mode name, a callable or "
            f"None. Received: {preprocess_input!r}"
        )
    probabilities = ClassProbabilities(
        output=output,
        has_background_class=has_background_class,
        class_subset=subset,
        name="probabilities",
    )(model(inputs))
    wrapped = keras.Model(images, probabilities, name=name)
    weights_file = getattr(model, "tf_topk_weights_file", None)
    if weights_file:
        wrapped.tf_topk_weights_file = weights_file
    return wrapped


def build(
    name: str,
    *,
    weights: str | os.PathLike | None = "imagenet",
    image_size: int | None = None,
    preprocess_input: Callable[[Any], Any] | str | None = None,
    output: str | None = None,
    has_background_class: bool = False,
    class_subset: Sequence[int | str] | None = None,
    **kwargs: Any,
) -> keras.Model:
    """`get_spec` + `load` + `inference_model` for a registry model.

    Args:
        name: registry key.
        weights: see `load`.
        image_size: square input size; defaults to the spec's. A size other
            than the spec's is passed to the constructor as `input_shape`
            (unless given).
        preprocess_input: overrides the spec's `preprocess_mode`.
        output: overrides the spec's `output`.
        has_background_class: see `inference_model`.
        class_subset: see `inference_model`.
        **kwargs: constructor options (`alpha`, `classes`, ...).

    Returns:
        The inference model, named after the spec.
    """
    spec = get_spec(name)
    size = spec.input_size if image_size is None else image_size
    if size != spec.input_size and "input_shape" not in kwargs:
        kwargs["input_shape"] = (size, size, 3)
    model = load(spec.name, weights=weights, **kwargs)
    return inference_model(
        model,
        preprocess_input=preprocess_input or spec.preprocess_mode,
        output=spec.output if output is None else output,
        image_size=size,
        has_background_class=has_background_class,
        class_subset=class_subset,
        name=spec.name,
    )


# ------------------------------------------------------------- ensembles


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
        members: inference models (see `inference_model`) with the same
            number of classes.
        weights: one non-negative weight per member, not all zero; they are
            normalised to sum to 1. Defaults to equal weights.
        name: the ensemble model's name.

    Returns:
        A `keras.Model` from [images_0, images_1, ...] to [B, C].
    """
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
    if weights is None:
        weights = [1.0] * len(members)
    weights = [float(w) for w in weights]
    if len(weights) != len(members):
        raise ValueError(
            f"Argument `weights` must have one entry per member "
            f"({len(members)}). Received: weights={weights}"
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
    num_classes = {member.outputs[0].shape[-1] for member in members}
    if len(num_classes) != 1:
        raise ValueError(
            "Argument `members` must all return the same number of "
            f"classes. Received: {[m.outputs[0].shape[-1] for m in members]}"
        )
    # Keras needs unique operation names; a repeated member name (two
    # weights files of one architecture) gets a renamed wrapper that shares
    # the member's layers.
    counts: dict[str, int] = {}
    for member in members:
        counts[member.name] = counts.get(member.name, 0) + 1
    members = [
        member
        if counts[member.name] == 1
        else keras.Model(
            member.inputs[0], member.outputs[0], name=f"{member.name}_{index}"
        )
        for index, member in enumerate(members)
    ]
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
