"""Which ImageNet weights file each `keras.applications` model fetches.

Keras names the file inside each constructor and offers no public way to
ask for it, so the facts are kept here as data, copied from the Keras
sources (`keras/src/applications/*.py`; tests/models_registry_test.py checks
them against the installed Keras): the cache file name, the download URL
and the file hash where Keras has one. `tf_topk.models.load` fetches the
file with the public `keras.utils.get_file` and hands the local path to the
constructor, so it can record which file was read.

Keras' constructors also refuse, with `weights="imagenet"`, settings for
which no ImageNet file exists (another `classes` under the 1000-class head,
an unpublished width, an input size the head was not trained at);
`imagenet_file` refuses the same settings before anything is fetched.

>>> imagenet_file("mobilenet", 224, {"alpha": 0.75}).fname
'mobilenet_7_5_224_tf.h5'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras
from absl import logging

_ROOT = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """One ImageNet weights file of Keras Applications.

    Attributes:
        fname: the file's name in the Keras cache (`$KERAS_HOME/models/`).
        origin: the URL Keras downloads it from.
        file_hash: the hash Keras checks the file against (MD5, or SHA-256
            when 64 hex digits; `keras.utils.get_file` tells them apart),
            None where Keras checks none.

    >>> imagenet_file("nasnet_mobile", 224, {"include_top": False}).origin
    'https://storage.googleapis.com/tensorflow/keras-applications/nasnet/NASNet-mobile-no-top.h5'
    """

    fname: str
    origin: str
    file_hash: str | None = None


# name: (folder URL, stem, top-file hash, no-top-file hash). The files are
# "<stem>.h5" and "<stem>_notop.h5" in the folder. EfficientNet (V1) files
# live outside the tensorflow/ bucket folder.
_STANDARD = {
    "xception": (
        f"{_ROOT}xception/", "xception_weights_tf_dim_ordering_tf_kernels",
        "0a58e3b7378bc2990ea3b43d5981f1f6", "b0042744bf5b25fce3cb969f33bebb97",
    ),
    "vgg16": (
        f"{_ROOT}vgg16/", "vgg16_weights_tf_dim_ordering_tf_kernels",
        "64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc",
    ),
    "vgg19": (
        f"{_ROOT}vgg19/", "vgg19_weights_tf_dim_ordering_tf_kernels",
        "cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6",
    ),
    "resnet50": (
        f"{_ROOT}resnet/", "resnet50_weights_tf_dim_ordering_tf_kernels",
        "2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "resnet101": (
        f"{_ROOT}resnet/", "resnet101_weights_tf_dim_ordering_tf_kernels",
        "f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21",
    ),
    "resnet152": (
        f"{_ROOT}resnet/", "resnet152_weights_tf_dim_ordering_tf_kernels",
        "100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c",
    ),
    "resnet50_v2": (
        f"{_ROOT}resnet/", "resnet50v2_weights_tf_dim_ordering_tf_kernels",
        "3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917",
    ),
    "resnet101_v2": (
        f"{_ROOT}resnet/", "resnet101v2_weights_tf_dim_ordering_tf_kernels",
        "6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5",
    ),
    "resnet152_v2": (
        f"{_ROOT}resnet/", "resnet152v2_weights_tf_dim_ordering_tf_kernels",
        "a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33",
    ),
    "inception_v3": (
        f"{_ROOT}inception_v3/",
        "inception_v3_weights_tf_dim_ordering_tf_kernels",
        "9a0d58056eeedaa3f26cb7ebd46da564", "bcbd6486424b2319ff4ef7d526e38f63",
    ),
    "inception_resnet_v2": (
        f"{_ROOT}inception_resnet_v2/",
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels",
        "e693bd0210a403b3192acc6073ad2e96", "d19885ff4a710c122648d3b5c3b684e4",
    ),
    "densenet121": (
        f"{_ROOT}densenet/", "densenet121_weights_tf_dim_ordering_tf_kernels",
        "9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738",
    ),
    "densenet169": (
        f"{_ROOT}densenet/", "densenet169_weights_tf_dim_ordering_tf_kernels",
        "d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b",
    ),
    "densenet201": (
        f"{_ROOT}densenet/", "densenet201_weights_tf_dim_ordering_tf_kernels",
        "1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1",
    ),
    **{
        f"efficientnet_{b}": (
            "https://storage.googleapis.com/keras-applications/",
            f"efficientnet{b}", top, no_top,
        )
        for b, top, no_top in (
            ("b0", "902e53a9f72be733fc0bcb005b3ebbac",
             "50bc09e76180e00e4465e1a485ddc09d"),
            ("b1", "1d254153d4ab51201f1646940f018540",
             "74c4e6b3e1f6a1eea24c589628592432"),
            ("b2", "b15cce36ff4dcbd00b6dd88e7857a6ad",
             "111f8e2ac8aa800a7a99e3239f7bfb39"),
            ("b3", "ffd1fdc53d0ce67064dc6a9c7960ede0",
             "af6d107764bb5b1abb91932881670226"),
            ("b4", "18c95ad55216b8f92d7e70b3a046e2fc",
             "ebc24e6d6c33eaebbd558eafbeedf1ba"),
            ("b5", "ace28f2a6363774853a83a0b21b9421a",
             "38879255a25d3c92d5e44e04ae6cec6f"),
            ("b6", "165f6e37dce68623721b423839de8be5",
             "9ecce42647a20130c1f39a5d4cb75743"),
            ("b7", "8c03f828fec3ef71311cd463b6759d99",
             "cbcfe4450ddf6f3ad90b1b398090fe4a"),
        )
    },
    **{
        f"efficientnet_v2_{v}": (
            f"{_ROOT}efficientnet_v2/", f"efficientnetv2-{v}", top, no_top
        )
        for v, top, no_top in (
            ("b0", "21ecbf6da12460d5c40bb2f29ceb2188",
             "893217f2bb855e2983157299931e43ff"),
            ("b1", "069f0534ff22adf035c89e2d9547a9dc",
             "0e80663031ca32d657f9caa404b6ec37"),
            ("b2", "424e49f28180edbde1e94797771950a7",
             "1dfe2e7a5d45b6632553a8961ea609eb"),
            ("b3", "1f1fc43bd98a6e4fd8fdfd551e02c7a0",
             "f6abf7b5849ac99a89b50dd3fd532856"),
            ("s", "e1d88a8495beba45748fedd0cecbe016",
             "af0682fb74e8c54910f2d4393339c070"),
            ("m", "a3bf6aa3276309f4fc6a34aa114c95cd",
             "1b8dc055df72dde80d614482840fe342"),
            ("l", "27e6d408b53c7ebc868fefa357689935",
             "b0b66b5c863aef5b46e8608fe1711615"),
        )
    },
    # ConvNeXt: SHA-256 hashes.
    **{
        f"convnext_{size}": (
            f"{_ROOT}convnext/", f"convnext_{size}", top, no_top
        )
        for size, top, no_top in (
            ("tiny",
             "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
             "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
            ("small",
             "ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
             "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
            ("base",
             "52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
             "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
            ("large",
             "070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
             "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
            ("xlarge",
             "c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
             "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
        )
    },
}  # fmt: skip

# Heads that also take another square size: global average pooling leaves
# the head free of the size, and the ResNetV2 figures were measured at 299
# (tf_topk.models.figures.RESNET_V2_SOURCE), which the run must be able to
# match (--config.model.image_size=299).
_TOP_SIZES = {
    "resnet50_v2": (224, 299),
    "resnet101_v2": (224, 299),
    "resnet152_v2": (224, 299),
}

# NASNet: the cache name differs from the URL's; "_no_top", not "_notop".
_NASNET = {
    "nasnet_mobile": (
        WeightsFile(
            "nasnet_mobile.h5", f"{_ROOT}nasnet/NASNet-mobile.h5",
            "020fb642bf7360b370c678b08e0adf61",
        ),
        WeightsFile(
            "nasnet_mobile_no_top.h5", f"{_ROOT}nasnet/NASNet-mobile-no-top.h5",
            "1ed92395b5b598bdda52abe5c0dbfd63",
        ),
    ),
    "nasnet_large": (
        WeightsFile(
            "nasnet_large.h5", f"{_ROOT}nasnet/NASNet-large.h5",
            "11577c9a518f0070763c2b964a382f17",
        ),
        WeightsFile(
            "nasnet_large_no_top.h5", f"{_ROOT}nasnet/NASNet-large-no-top.h5",
            "d81d89dc07e6e56530c4e77faddd61b5",
        ),
    ),
}  # fmt: skip

# MobileNet (V1, V2): one file per width and resolution, no hash. Keras
# picks the file of the input size when it is square and listed, else 224.
_MOBILENET_ALPHAS = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
_MOBILENET_SIZES = (128, 160, 192, 224)
_MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)

# MobileNetV3: "<small|large>[_minimalistic]_224_<alpha>_float": (top hash,
# no-top hash); the only published widths.
_MOBILENET_V3 = {
    "large_224_0.75_float": (
        "765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e",
    ),
    "large_224_1.0_float": (
        "59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389",
    ),
    "large_minimalistic_224_1.0_float": (
        "675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973",
    ),
    "small_224_0.75_float": (
        "cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819",
    ),
    "small_224_1.0_float": (
        "8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836",
    ),
    "small_minimalistic_224_1.0_float": (
        "99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4",
    ),
}  # fmt: skip


def imagenet_file(
    name: str, input_size: int, kwargs: Mapping[str, Any]
) -> WeightsFile:
    """The ImageNet weights file Keras fetches for a constructor call.

    Args:
        name: registry key, e.g. "mobilenet".
        input_size: the model's default square input size (its spec's).
        kwargs: the constructor arguments other than `weights` (`alpha`,
            `input_shape`, `include_top`, `classes`, `minimalistic`, ...).

    Returns:
        The `WeightsFile` to fetch with `keras.utils.get_file(fname, origin,
        cache_subdir="models", file_hash=file_hash)`.

    Raises:
        ValueError: no ImageNet file fits `kwargs` (Keras refuses the same
            settings with `weights="imagenet"`), or `name` is unknown.
    """
    include_top = kwargs.get("include_top", True)
    _check_classes(kwargs, include_top)
    shape = kwargs.get("input_shape")
    if shape is not None:
        _check_shape(name, tuple(shape))
    if name == "mobilenet":
        return _mobilenet(kwargs, include_top, shape)
    if name == "mobilenet_v2":
        return _mobilenet_v2(kwargs, include_top, shape)
    if name.startswith("mobilenet_v3_"):
        return _mobilenet_v3(name, kwargs, include_top)
    if include_top and shape is not None:
        _check_top_size(name, shape, _TOP_SIZES.get(name, (input_size,)))
    if name in _NASNET:
        return _NASNET[name][0 if include_top else 1]
    if name not in _STANDARD:
        raise ValueError(
            f"Argument `name` must be a keras.applications model with "
            f"ImageNet weights, one of {sorted([*_STANDARD, *_NASNET])} or "
            f"a MobileNet. Received: name={name!r}"
        )
    folder, stem, top_hash, no_top_hash = _STANDARD[name]
    fname = f"{stem}.h5" if include_top else f"{stem}_notop.h5"
    return WeightsFile(
        fname, folder + fname, top_hash if include_top else no_top_hash
    )


def _check_classes(kwargs: Mapping[str, Any], include_top: bool) -> None:
    classes = kwargs.get("classes", 1000)
    if include_top and classes != 1000:
        raise ValueError(
            "Argument `classes` must be 1000 with weights='imagenet' and "
            "include_top=True (the ImageNet head). Received: "
            f"classes={classes!r}"
        )


def _square(shape: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """(rows, cols, channels) of a 3-entry `input_shape`."""
    if len(shape) != 3:
        raise ValueError(
            "Argument `input_shape` must have three entries. Received: "
            f"input_shape={shape}"
        )
    if keras.config.image_data_format() == "channels_first":
        return shape[1], shape[2], shape[0]
    return shape[0], shape[1], shape[2]


def _check_shape(name: str, shape: tuple[Any, ...]) -> None:
    rows, cols, channels = _square(shape)
    if channels != 3:
        raise ValueError(
            "Argument `input_shape` must have 3 channels for the ImageNet "
            f"weights of {name!r}. Received: input_shape={shape}"
        )
    if name.startswith("nasnet") and (rows is None or cols is None):
        raise ValueError(
            "Argument `input_shape` must be static (no None) for the "
            f"ImageNet weights of {name!r}. Received: input_shape={shape}"
        )


def _check_top_size(
    name: str, shape: tuple[Any, ...], sizes: tuple[int, ...]
) -> None:
    rows, cols, _ = _square(shape)
    if rows != cols or rows not in sizes:
        expected = (
            f"({sizes[0]}, {sizes[0]}, 3)"
            if len(sizes) == 1
            else f"(S, S, 3) with S in {list(sizes)}"
        )
        raise ValueError(
            f"Argument `input_shape` must be {expected} for the ImageNet "
            f"weights of {name!r} with include_top=True. Received: "
            f"input_shape={shape}"
        )


def _file_size(
    name: str, shape: tuple[Any, ...] | None, sizes: tuple[int, ...]
) -> int:
    """The resolution whose file Keras loads: the input's, else 224."""
    if shape is None:
        return 224
    rows, cols, _ = _square(tuple(shape))
    if rows == cols and rows in sizes:
        return rows
    logging.warning(
        "ImageNet weights of %r exist for square inputs of %s; loading the "
        "224 x 224 ones for input_shape=%s.",
        name,
        list(sizes),
        shape,
    )
    return 224


def _mobilenet(
    kwargs: Mapping[str, Any], include_top: bool, shape: Any
) -> WeightsFile:
    alpha = kwargs.get("alpha", 1.0)
    depth_multiplier = kwargs.get("depth_multiplier", 1)
    if depth_multiplier != 1:
        raise ValueError(
            "Argument `depth_multiplier` must be 1 for the ImageNet weights "
            f"of 'mobilenet'. Received: depth_multiplier={depth_multiplier!r}"
        )
    if alpha not in _MOBILENET_ALPHAS:
        raise ValueError(
            f"Argument `alpha` must be one of {list(_MOBILENET_ALPHAS)} for "
            f"the ImageNet weights of 'mobilenet'. Received: alpha={alpha!r}"
        )
    if include_top and shape is not None:
        _check_top_size("mobilenet", tuple(shape), _MOBILENET_SIZES)
    size = _file_size("mobilenet", shape, _MOBILENET_SIZES)
    suffix = "tf.h5" if include_top else "tf_no_top.h5"
    fname = f"mobilenet_{_MOBILENET_ALPHAS[alpha]}_{size}_{suffix}"
    return WeightsFile(fname, f"{_ROOT}mobilenet/{fname}")


def _mobilenet_v2(
    kwargs: Mapping[str, Any], include_top: bool, shape: Any
) -> WeightsFile:
    alpha = kwargs.get("alpha", 1.0)
    if alpha not in _MOBILENET_V2_ALPHAS:
        raise ValueError(
            f"Argument `alpha` must be one of {list(_MOBILENET_V2_ALPHAS)} "
            "for the ImageNet weights of 'mobilenet_v2'. Received: "
            f"alpha={alpha!r}"
        )
    if include_top and shape is not None:
        _check_top_size("mobilenet_v2", tuple(shape), _MOBILENET_V2_SIZES)
    size = _file_size("mobilenet_v2", shape, _MOBILENET_V2_SIZES)
    suffix = ".h5" if include_top else "_no_top.h5"
    fname = (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
        f"{float(alpha)}_{size}{suffix}"
    )
    return WeightsFile(fname, f"{_ROOT}mobilenet_v2/{fname}")


def _mobilenet_v3(
    name: str, kwargs: Mapping[str, Any], include_top: bool
) -> WeightsFile:
    alpha = kwargs.get("alpha", 1.0)
    minimalistic = bool(kwargs.get("minimalistic", False))
    model_type = name.removeprefix("mobilenet_v3_")
    key = "{}{}_224_{}_float".format(
        model_type, "_minimalistic" if minimalistic else "", float(alpha)
    )
    if key not in _MOBILENET_V3:
        raise ValueError(
            "Argument `alpha` must be 0.75 or 1.0 (1.0 with "
            f"minimalistic=True) for the ImageNet weights of {name!r}. "
            f"Received: alpha={alpha!r}, minimalistic={minimalistic}"
        )
    shape = kwargs.get("input_shape")
    if shape is not None and _square(tuple(shape))[:2] != (224, 224):
        logging.warning(
            "ImageNet weights of %r exist for 224 x 224 inputs; loading "
            "them for input_shape=%s.",
            name,
            shape,
        )
    top_hash, no_top_hash = _MOBILENET_V3[key]
    if include_top:
        fname = f"weights_mobilenet_v3_{key}.h5"
        file_hash = top_hash
    else:
        fname = f"weights_mobilenet_v3_{key}_no_top_v2.h5"
        file_hash = no_top_hash
    return WeightsFile(fname, f"{_ROOT}mobilenet_v3/{fname}", file_hash)
