"""Published ImageNet figures, where they come from and how they were measured.

A published figure means something only under its conditions: Keras' table
is single centre crop at each model's own size, keras-applications' README
has a ten-crop column, the TF-slim MobileNet tables go per width and
resolution, and the ResNetV2 figures are at 299 px while the models default
to 224. `Published` keeps a figure with its source and `Conditions`; the
sources and tables here are data, read by `tf_topk.models.registry`
(`ModelSpec.published`).

>>> figure = Published(0.749, 0.921, KERAS_TABLE, Conditions(224, 0.875))
>>> figure.to_dict()["conditions"]["num_crops"]
1
"""

from __future__ import annotations

import dataclasses
from typing import Any

KERAS_TABLE = "Keras Applications table, https://keras.io/api/applications/"
# The Keras figures of the older models come from keras-team/keras-
# applications' README.md "Performance" table (errors; its "10-5" column is
# the top-5 error over ten crops).
KERAS_APPLICATIONS_README = (
    "keras-team/keras-applications README.md, Performance, 10-5 column "
    "(https://github.com/keras-team/keras-applications#performance)"
)
# That README says 224 x 224 for every model but NASNetLarge, InceptionV3,
# InceptionResNetV2 and Xception, yet the ResNetV2 weights came from the
# TensorNets author (keras-applications pull request #26), whose README
# measures "ResNet50-152v2 (299x299)" (taehoonlee/tensornets README.md), as
# TF-slim evaluates its ResNet V2 ("ResNet V2 models use Inception
# pre-processing and input image size of 299", tensorflow/models
# research/slim/README.md); at 224, users measure 66.9-70% top-1 for
# ResNet50V2 (keras-applications issue #207, calebrob6/imagenet_validation
# issue #3), not 76.0%.
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

    >>> from tf_topk import models
    >>> published = models.get_spec("resnet50_v2").published()
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


# TF-slim research/slim/nets/mobilenet_v1.md, float checkpoints; single
# centre crop on the ILSVRC2012 validation set.
MOBILENET_V1_TABLE = (
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
MOBILENET_V2_TABLE = (
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


# keras-team/keras-applications README.md "10-5" column: top-5 error over
# ten crops (centre, 4 corners and their mirrors), as (alpha, top-5).
TEN_CROP_TOP5 = {
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
