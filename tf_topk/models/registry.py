"""The registry: every ImageNet classifier in `keras.applications`.

A wrong ImageNet number usually comes from pairing a model with the wrong
input size, `preprocess_input` mode, label space or weights file. A
`ModelSpec` records each model's contract: input size, preprocessing, the
reference crop and interpolation, the published figures and the ImageNet
weights file Keras fetches for it.

>>> spec = get_spec("mobilenet")
>>> spec.input_size, spec.preprocess_mode, spec.published(alpha=0.75).top1
(224, 'tf', 0.684)
>>> spec.imagenet_weights(alpha=0.75).fname
'mobilenet_7_5_224_tf.h5'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any

import keras

from tf_topk.models import weights_files

PREPROCESS_MODES = ("caffe", "none", "tf", "torch")
OUTPUTS = ("logits", "softmax")
INTERPOLATIONS = ("bicubic", "bilinear")

# Where the published figures come from (data: these tables keep no API).
KERAS_TABLE = "Keras Applications table, https://keras.io/api/applications/"
# The Keras figures of the older models come from keras-team/keras-
# applications' README.md "Performance" table (errors; its "10-5" column is
# the top-5 error over ten crops).
KERAS_APPLICATIONS_README = (
    "keras-team/keras-applications README.md, Performance, 10-5 column "
    "(https://github.com/keras-team/keras-applications#performance)"
)
# That README says 224 x 224 for every model but NASNetLarge, InceptionV3,
# InceptionResNetV2 and Xception, yet the ResNetV2 weights (keras-
# applications pull request #26, by the TensorNets author) are of the TF-slim
# ResNet V2 family, which TF-slim evaluates at 299 ("ResNet V2 models use
# Inception pre-processing and input image size of 299",
# tensorflow/models research/slim/README.md) and so does TensorNets
# ("ResNet50-152v2 (299x299)", taehoonlee/tensornets README.md); at 224,
# users measure 66.9-70% top-1 for ResNet50V2 (keras-applications issue
# #207, calebrob6/imagenet_validation issue #3), not 76.0%.
RESNET_V2_SOURCE = (
    f"{KERAS_TABLE}; at 299 px, the size TF-slim (tensorflow/models "
    "research/slim/README.md) and TensorNets (taehoonlee/tensornets "
    "README.md) evaluate ResNet V2 at, not the 224 keras-applications' "
    "README states"
)
MOBILENET_V1_SLIM = (
    "TF-slim research/slim/nets/mobilenet_v1.md, float checkpoints "
    "(https://github.com/tensorflow/models/blob/master/research/slim/nets/"
    "mobilenet_v1.md)"
)
MOBILENET_V2_SLIM = (
    "TF-slim research/slim/nets/mobilenet/README.md, Mobilenet V2 Imagenet "
    "Checkpoints (https://github.com/tensorflow/models/blob/master/research/"
    "slim/nets/mobilenet/README.md)"
)


@dataclasses.dataclass(frozen=True)
class Conditions:
    """How a published figure was measured; None where the source is silent.

    Attributes:
        image_size: square input size, in pixels.
        crop_fraction: centre-crop fraction of the reference evaluation.
        num_crops: 1 (single centre crop) or 10 (corners, centre, mirrors).
        weights: the weights the figure was measured with (a Keras weights
            file or a TF-slim checkpoint name).

    >>> Conditions(image_size=299, crop_fraction=0.875).num_crops
    1
    """

    image_size: int | None
    crop_fraction: float | None
    num_crops: int = 1
    weights: str | None = None


@dataclasses.dataclass(frozen=True)
class Published:
    """A published figure with where it comes from and how it was measured.

    Attributes:
        top1: top-1 fraction, None where not published.
        top5: top-5 fraction, None where not published.
        source: where the figures come from (a table and its URL, or
            "config" for figures a run was given).
        conditions: how they were measured; None where unknown.

    >>> published = get_spec("resnet50_v2").published()
    >>> published.top1, published.conditions.image_size
    (0.76, 299)
    """

    top1: float | None
    top5: float | None
    source: str
    conditions: Conditions | None = None

    def to_dict(self) -> dict[str, Any]:
        """The results.json `published` record, JSON-able."""
        return dataclasses.asdict(self)


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
        published_source: where `top1` / `top5` (or the table) come from.
        published_size: the input size `top1` / `top5` were measured at,
            where it is not `input_size` (ResNetV2: 299).
        ten_crop_top5: (alpha, top-5 fraction) over ten crops at the
            single-crop figure's size, from keras-applications' README.

    >>> spec = get_spec("resnet50")
    >>> spec.keras_name, spec.input_size, spec.imagenet_weights().fname
    ('ResNet50', 224, 'resnet50_weights_tf_dim_ordering_tf_kernels.h5')
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
    published_source: str = dataclasses.field(default=KERAS_TABLE, repr=False)
    published_size: int | None = None
    ten_crop_top5: tuple[tuple[float, float], ...] = dataclasses.field(
        default=(), repr=False
    )

    @property
    def keras_name(self) -> str:
        """The constructor's name in `keras.applications`, e.g. "MobileNet"."""
        return self.constructor.__name__

    def published(
        self,
        *,
        alpha: float = 1.0,
        image_size: int | None = None,
        num_crops: int = 1,
    ) -> Published | None:
        """The published figure for a width, resolution and crop count.

        MobileNet and MobileNetV2 answer from the TF-slim tables (the
        checkpoints Keras converted its weights from); every other model
        answers its Keras Applications figures at alpha 1.0, at its default
        input size or at the size the figures were measured at. With
        `num_crops=10`, the ten-crop top-5 of keras-applications' README
        where it has one (no top-1 there), else the single-crop figure
        (whose conditions then say 1 crop). None where nothing was
        published.

        Args:
            alpha: the width multiplier.
            image_size: square input size; defaults to `input_size`.
            num_crops: 1 or 10, the run's crops.
        """
        image_size = self.input_size if image_size is None else image_size
        figures = self._single_crop(alpha, image_size)
        if figures is None:
            return None
        size, top1, top5 = figures
        # keras-applications measured ten crops at the default sizes only.
        at_default = size == (self.published_size or self.input_size)
        ten_crop = (
            self._ten_crop_top5(alpha)
            if num_crops == 10 and at_default
            else None
        )
        if ten_crop is not None:
            return Published(
                None,
                ten_crop,
                KERAS_APPLICATIONS_README,
                self._conditions(alpha, size, num_crops=10),
            )
        return Published(
            top1, top5, self.published_source, self._conditions(alpha, size)
        )

    def _single_crop(
        self, alpha: float, image_size: int
    ) -> tuple[int, float, float | None] | None:
        """(measured size, top1, top5) of the single-crop figure."""
        if self.published_table:
            for row_alpha, row_size, top1, top5 in self.published_table:
                if abs(row_alpha - alpha) < 1e-6 and row_size == image_size:
                    return row_size, top1, top5
            return None
        measured = self.published_size or self.input_size
        if alpha != 1.0 or image_size not in (self.input_size, measured):
            return None
        if self.top1 is None:
            return None
        return measured, self.top1, self.top5

    def _ten_crop_top5(self, alpha: float) -> float | None:
        for row_alpha, top5 in self.ten_crop_top5:
            if abs(row_alpha - alpha) < 1e-6:
                return top5
        return None

    def _conditions(
        self, alpha: float, image_size: int, *, num_crops: int = 1
    ) -> Conditions:
        if self.name in ("mobilenet", "mobilenet_v2"):
            version = "v1" if self.name == "mobilenet" else "v2"
            checkpoint = f"mobilenet_{version}_{float(alpha)}_{image_size}"
            weights = f"TF-slim {checkpoint}"
        else:
            try:
                weights = self.imagenet_weights().fname
            except ValueError:
                weights = None
        return Conditions(
            image_size=image_size,
            crop_fraction=self.crop_fraction,
            num_crops=num_crops,
            weights=weights,
        )

    def imagenet_weights(self, **kwargs: Any) -> weights_files.WeightsFile:
        """The ImageNet weights file Keras fetches for these arguments.

        Args:
            **kwargs: constructor arguments other than `weights` (`alpha`,
                `input_shape`, `include_top`, `classes`, ...).

        Raises:
            ValueError: Keras publishes no ImageNet file for `kwargs`.
        """
        return weights_files.imagenet_file(self.name, self.input_size, kwargs)


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
# (bilinear) at each model's default size (ResNetV2: at 299 px, see
# RESNET_V2_SOURCE; every figure's source and conditions: `published`);
# MobileNetV3: the keras
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


# keras-team/keras-applications README.md "10-5" column: top-5 error over
# ten crops (centre, 4 corners and their mirrors), as (alpha, top-5).
_TEN_CROP_TOP5 = {
    "vgg16": ((1.0, 0.91166),),
    "vgg19": ((1.0, 0.91226),),
    "resnet50": ((1.0, 0.93172),),
    "resnet101": ((1.0, 0.93908),),
    "resnet152": ((1.0, 0.94092),),
    "resnet50_v2": ((1.0, 0.94104),),
    "resnet101_v2": ((1.0, 0.94842),),
    "resnet152_v2": ((1.0, 0.95100),),
    "inception_v3": ((1.0, 0.94962),),
    "inception_resnet_v2": ((1.0, 0.96038),),
    "xception": ((1.0, 0.95262),),
    "mobilenet": (
        (0.25, 0.78804),
        (0.5, 0.87820),
        (0.75, 0.90122),
        (1.0, 0.91226),
    ),
    "mobilenet_v2": (
        (0.35, 0.84578),
        (0.5, 0.88024),
        (0.75, 0.90812),
        (1.0, 0.91678),
        (1.3, 0.93272),
        (1.4, 0.93482),
    ),
    "densenet121": ((1.0, 0.93478),),
    "densenet169": ((1.0, 0.94140),),
    "densenet201": ((1.0, 0.94534),),
    "nasnet_large": ((1.0, 0.96588),),
    "nasnet_mobile": ((1.0, 0.93242),),
}


def _options(name: str, input_size: int) -> dict[str, Any]:
    """Reference evaluation settings that differ from 0.875 / bilinear, and
    the published figures' sources where not the Keras table alone."""
    ten_crop = {"ten_crop_top5": _TEN_CROP_TOP5.get(name, ())}
    if name == "mobilenet":
        return {
            "published_table": _MOBILENET_V1_SLIM,
            "published_source": MOBILENET_V1_SLIM,
            **ten_crop,
        }
    if name == "mobilenet_v2":
        return {
            "published_table": _MOBILENET_V2_SLIM,
            "published_source": MOBILENET_V2_SLIM,
            **ten_crop,
        }
    if name.startswith("resnet") and name.endswith("_v2"):
        return {
            "published_source": RESNET_V2_SOURCE,
            "published_size": 299,
            **ten_crop,
        }
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
    return ten_crop


def _registry() -> dict[str, ModelSpec]:
    specs = {}
    for name, keras_name, module_name, size, mode, top1, top5 in _TABLE:
        specs[name] = _spec(
            name,
            keras_name,
            module_name,
            size,
            mode,
            top1,
            top5,
            **_options(name, size),
        )
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
