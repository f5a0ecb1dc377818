"""Evaluation preprocessing: decode, resize, centre or multi crop.

Pure TensorFlow functions that run the same eagerly and inside `tf.data`.
Outputs are float32 pixels in [0, 255], NOT normalised: each model applies
its own `preprocess_input`, so one pipeline feeds models with different
input conventions.

Two crop orders are supported, because evaluation code bases differ and the
difference costs up to a point of top-1:

- `"resize_then_crop"` (Keras / timm): resize the shorter side to
  `round(image_size / crop_fraction)` (256 for 224 at 0.875), keeping the
  aspect ratio, then take the centre `image_size` square.
- `"crop_then_resize"` (TensorFlow Model Garden): take the centre square of
  side `int(crop_fraction * shorter side)`, then resize it to `image_size`.
  For JPEG input this uses the fused `tf.image.decode_and_crop_jpeg`, which
  decodes only the crop window (plus a 16-pixel margin: libjpeg upsamples
  chroma at a window edge differently) and gives the same pixels as decoding
  the whole image and cropping it (pinned by a test).

Multi-crop (`num_crops=10`) takes the four corner crops and the centre crop
in that order (from the resized image, or squares of the crop side from the
original for `"crop_then_resize"`), then the horizontal mirror of each, in
the same order: [tl, tr, bl, br, centre, flip(tl), ..., flip(centre)].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

INTERPOLATIONS = (
    "area",
    "bicubic",
    "bilinear",
    "gaussian",
    "lanczos3",
    "lanczos5",
    "mitchellcubic",
    "nearest",
)
CROP_MODES = ("crop_then_resize", "resize_then_crop")
_JPEG_MCU = 16  # Largest JPEG MCU side (4:2:0 chroma subsampling).
NUM_CROPS = (1, 10)


@dataclasses.dataclass(frozen=True)
class Options:
    """How evaluation images are resized and cropped.

    Attributes:
        image_size: side of the square model input, in pixels.
        crop_fraction: fraction of the resized shorter side (or of the
            original shorter side for `"crop_then_resize"`) that the crop
            covers; 0.875 gives the classic 256 -> 224.
        interpolation: a `tf.image.ResizeMethod` name, e.g. `"bilinear"`.
        antialias: low-pass filter when downsampling (PIL-like).
        crop_mode: `"resize_then_crop"` (Keras / timm) or
            `"crop_then_resize"` (Model Garden).
        num_crops: 1 (centre crop) or 10 (corners, centre and mirrors).

    >>> options = Options(image_size=160, crop_fraction=0.8)
    >>> options.resize_size
    200
    """

    image_size: int = 224
    crop_fraction: float = 0.875
    interpolation: str = "bilinear"
    antialias: bool = True
    crop_mode: str = "resize_then_crop"
    num_crops: int = 1

    def __post_init__(self):
        size = self.image_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                "Argument `image_size` must be a positive integer. "
                f"Received: image_size={size!r}"
            )
        fraction = self.crop_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not 0.0 < fraction <= 1.0
        ):
            raise ValueError(
                "Argument `crop_fraction` must be a number in (0, 1]. "
                f"Received: crop_fraction={fraction!r}"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                "Argument `interpolation` must be one of "
                f"{list(INTERPOLATIONS)}. "
                f"Received: interpolation={self.interpolation!r}"
            )
        if not isinstance(self.antialias, bool):
            raise TypeError(
                "Argument `antialias` must be a bool. "
                f"Received: antialias={self.antialias!r}"
            )
        if self.crop_mode not in CROP_MODES:
            raise ValueError(
                f"Argument `crop_mode` must be one of {list(CROP_MODES)}. "
                f"Received: crop_mode={self.crop_mode!r}"
            )
        if isinstance(self.num_crops, bool) or self.num_crops not in NUM_CROPS:
            raise ValueError(
                f"Argument `num_crops` must be one of {list(NUM_CROPS)}. "
                f"Received: num_crops={self.num_crops!r}"
            )
        object.__setattr__(self, "crop_fraction", float(fraction))

    @property
    def resize_size(self) -> int:
        """Shorter side after resizing, for `"resize_then_crop"`."""
        return int(round(self.image_size / self.crop_fraction))

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain dict (for results files)."""
        return dataclasses.asdict(self)


# The model spec attributes `resolve` reads, and the Options field each sets.
_SPEC_FIELDS = (
    ("input_size", "image_size"),
    ("crop_fraction", "crop_fraction"),
    ("interpolation", "interpolation"),
)


def resolve(
    spec: Any = None, overrides: Mapping[str, Any] | None = None
) -> Options:
    """The `Options` of a model: overrides, then the spec's, then defaults.

    The one place preprocessing is decided (as timm's
    `resolve_data_config`): every caller passes what it was told and the
    model's spec here.

    >>> import types
    >>> spec = types.SimpleNamespace(
    ...     input_size=299, crop_fraction=1.0, interpolation="bicubic"
    ... )
    >>> options = resolve(spec, {"image_size": 320, "crop_fraction": None})
    >>> options.image_size, options.crop_fraction, options.interpolation
    (320, 1.0, 'bicubic')

    Args:
        spec: the model's evaluation contract: a `tf_topk.models.ModelSpec`
            or any object with attributes `input_size`, `crop_fraction` and
            `interpolation` (a None attribute is not set). None for no spec.
        overrides: `Options` field names (`image_size`, `crop_fraction`,
            `interpolation`, `antialias`, `crop_mode`, `num_crops`) to
            values; a None value means "not set". These win over the spec.

    Returns:
        The resolved, validated `Options`.

    Raises:
        TypeError: `overrides` is not a mapping, or `spec` lacks one of
            the attributes.
        ValueError: an unknown override key, or an invalid value (see
            `Options`).
    """
    names = [field.name for field in dataclasses.fields(Options)]
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise TypeError(
            "Argument `overrides` must be a mapping of `Options` field "
            f"names to values, or None. Received: overrides={overrides!r}"
        )
    unknown = sorted(key for key in overrides if key not in names)
    if unknown:
        raise ValueError(
            f"Argument `overrides` has unknown keys {unknown}; the valid "
            f"keys are {names}. Received: overrides={dict(overrides)!r}"
        )
    values = {}
    if spec is not None:
        for attribute, field in _SPEC_FIELDS:
            if not hasattr(spec, attribute):
                raise TypeError(
                    "Argument `spec` must be a `models.ModelSpec` or have "
                    f"attributes {[a for a, _ in _SPEC_FIELDS]}; it has no "
                    f"`{attribute}`. Received: spec={spec!r}"
                )
            value = getattr(spec, attribute)
            if value is not None:
                values[field] = value
    values.update(
        (key, value) for key, value in overrides.items() if value is not None
    )
    return Options(**values)


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes JPEG, PNG, GIF (first frame) or BMP bytes to RGB.

    Grayscale and grayscale + alpha images are replicated to three channels,
    RGBA drops alpha, CMYK JPEGs are converted to RGB by libjpeg, 16-bit
    PNGs are rescaled to 8 bits.

    Args:
        encoded: scalar string tensor with the file's bytes.

    Returns:
        uint8 tensor [height, width, 3].

    Raises:
        tf.errors.InvalidArgumentError: the bytes are not a readable image.
    """
    image = tf.io.decode_image(
        encoded, channels=3, dtype=tf.uint8, expand_animations=False
    )
    image.set_shape([None, None, 3])
    return image


def _resize(image: tf.Tensor, size, options: Options) -> tf.Tensor:
    resized = tf.image.resize(
        image, size, method=options.interpolation, antialias=options.antialias
    )
    return tf.cast(resized, tf.float32)


def _crop_boxes(height, width, crop, num_crops: int) -> list:
    """(top, left) offsets: the centre, or the corners then the centre."""
    top = (height - crop) // 2
    left = (width - crop) // 2
    if num_crops == 1:
        return [(top, left)]
    bottom, right = height - crop, width - crop
    return [(0, 0), (0, right), (bottom, 0), (bottom, right), (top, left)]


def _shorter_side_size(height, width, target: int):
    """(h, w) with the shorter side `target` and the aspect ratio kept."""
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    scale = target / tf.minimum(height, width)
    new_height = tf.maximum(tf.cast(tf.round(height * scale), tf.int32), target)
    new_width = tf.maximum(tf.cast(tf.round(width * scale), tf.int32), target)
    return tf.stack([new_height, new_width])


def crop_side(height, width, options: Options) -> tf.Tensor:
    """Side of the square cut from the original for `"crop_then_resize"`."""
    shorter = tf.cast(tf.minimum(height, width), tf.float64)
    return tf.maximum(tf.cast(options.crop_fraction * shorter, tf.int32), 1)


def _finish(crops: tf.Tensor, options: Options) -> tf.Tensor:
    # Cubic and Lanczos kernels overshoot; model inputs stay in 0..255.
    # Clipping the crops, not the whole resized image, costs less.
    crops = tf.clip_by_value(crops, 0.0, 255.0)
    size = options.image_size
    if options.num_crops == 1:
        return tf.ensure_shape(crops[0], [size, size, 3])
    crops = tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)
    return tf.ensure_shape(crops, [options.num_crops, size, size, 3])


def eval_image(image: tf.Tensor, options: Options) -> tf.Tensor:
    """Resizes and crops one decoded image for evaluation.

    Args:
        image: [height, width, 3] image, any real or integer dtype, with
            pixel values in 0..255.
        options: the resize and crop `Options`.

    Returns:
        float32 [S, S, 3] in [0, 255] with S = `options.image_size`, or
        [num_crops, S, S, 3] when `options.num_crops > 1`.
    """
    if not isinstance(options, Options):
        raise TypeError(
            "Argument `options` must be a `preprocessing.Options`. "
            f"Received: options={options!r}"
        )
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    size = options.image_size
    # Crops are unrolled in Python (at most 5 boxes): a tf.map_fn loop here
    # cost more than the crops themselves.
    if options.crop_mode == "resize_then_crop":
        resized = _resize(
            image,
            _shorter_side_size(height, width, options.resize_size),
            options,
        )
        shape = tf.shape(resized)
        boxes = _crop_boxes(shape[0], shape[1], size, options.num_crops)
        crops = [
            tf.slice(resized, [top, left, 0], [size, size, 3])
            for top, left in boxes
        ]
        return _finish(tf.stack(crops), options)
    side = crop_side(height, width, options)
    boxes = _crop_boxes(height, width, side, options.num_crops)
    crops = [
        _resize(
            tf.slice(image, [top, left, 0], [side, side, 3]),
            [size, size],
            options,
        )
        for top, left in boxes
    ]
    return _finish(tf.stack(crops), options)


def decode_eval_image(encoded: tf.Tensor, options: Options) -> tf.Tensor:
    """Decodes and preprocesses one encoded image: `eval_image(decode(.))`.

    For JPEG input with `crop_mode="crop_then_resize"` and one crop, decodes
    only the centre window plus a 16-pixel margin with
    `tf.image.decode_and_crop_jpeg` (same pixels, less work; without the
    margin the crop's edge pixels differ on chroma-subsampled JPEGs).

    Args:
        encoded: scalar string tensor with the file's bytes.
        options: the resize and crop `Options`.

    Returns:
        What `eval_image` returns.
    """
    if options.crop_mode != "crop_then_resize" or options.num_crops != 1:
        return eval_image(decode_image(encoded), options)

    def fused():
        shape = tf.image.extract_jpeg_shape(encoded)
        height, width = shape[0], shape[1]
        side = crop_side(height, width, options)
        top, left = _crop_boxes(height, width, side, 1)[0]
        # A window cut exactly at the crop changes the crop's edge pixels:
        # libjpeg upsamples subsampled chroma there from the window alone
        # (seen on 4:2:0 JPEGs). One MCU (16 px) of margin keeps every
        # pixel of the crop interior, hence exact.
        margin = _JPEG_MCU
        top0 = tf.maximum(top - margin, 0)
        left0 = tf.maximum(left - margin, 0)
        bottom = tf.minimum(top + side + margin, height)
        right = tf.minimum(left + side + margin, width)
        window = tf.image.decode_and_crop_jpeg(
            encoded,
            tf.stack([top0, left0, bottom - top0, right - left0]),
            channels=3,
        )
        window = tf.slice(
            window, [top - top0, left - left0, 0], [side, side, 3]
        )
        resized = _resize(window, [options.image_size] * 2, options)
        return _finish(resized[tf.newaxis], options)

    def generic():
        return eval_image(decode_image(encoded), options)

    size = options.image_size
    image = tf.cond(tf.io.is_jpeg(encoded), fused, generic)
    return tf.ensure_shape(image, [size, size, 3])
