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

from tf_topk.models import figures, weights_files

PREPROCESS_MODES = ("caffe", "none", "tf", "torch")
OUTPUTS = ("logits", "softmax")
INTERPOLATIONS = ("bicubic", "bilinear")


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
    published_source: str = dataclasses.field(
        default=figures.KERAS_TABLE, repr=False
    )
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
    ) -> figures.Published | None:
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
        single_crop = self._single_crop(alpha, image_size)
        if single_crop is None:
            return None
        size, top1, top5 = single_crop
        # keras-applications measured ten crops at the default sizes only.
        at_default = size == (self.published_size or self.input_size)
        ten_crop = (
            self._ten_crop_top5(alpha)
            if num_crops == 10 and at_default
            else None
        )
        if ten_crop is not None:
            return figures.Published(
                None,
                ten_crop,
                figures.KERAS_APPLICATIONS_README,
                self._conditions(alpha, size, num_crops=10),
            )
        return figures.Published(
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
    ) -> figures.Conditions:
        if self.name in ("mobilenet", "mobilenet_v2"):
            version = "v1" if self.name == "mobilenet" else "v2"
            checkpoint = f"mobilenet_{version}_{float(alpha)}_{image_size}"
            weights = f"TF-slim {checkpoint}"
        else:
            try:
                weights = self.imagenet_weights().fname
            except ValueError:
                weights = None
        return figures.Conditions(
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
# figures.RESNET_V2_SOURCE); MobileNetV3: the keras mobilenet_v3 docstring
# (top-1 only); ConvNeXt: top-1 only in the table. Each figure's source and
# conditions: `ModelSpec.published`.
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
    """Reference evaluation settings that differ from 0.875 / bilinear, and
    the published figures' sources where not the Keras table alone."""
    ten_crop = {"ten_crop_top5": figures.TEN_CROP_TOP5.get(name, ())}
    if name == "mobilenet":
        return {
            "published_table": figures.MOBILENET_V1_TABLE,
            "published_source": figures.MOBILENET_V1_SLIM,
            **ten_crop,
        }
    if name == "mobilenet_v2":
        return {
            "published_table": figures.MOBILENET_V2_TABLE,
            "published_source": figures.MOBILENET_V2_SLIM,
            **ten_crop,
        }
    if name.startswith("resnet") and name.endswith("_v2"):
        return {
            "published_source": figures.RESNET_V2_SOURCE,
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
