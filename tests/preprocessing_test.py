"""Tests of decode, resize and crop, each run eagerly and inside tf.data."""

import conftest
import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import preprocessing, testing

MODES = (
    ("eager", "eager"),
    ("tf_data", "tf_data"),
)


def run(fn, mode, *args):
    """`fn(*args)` eagerly, or as the map function of a one-element tf.data."""
    if mode == "eager":
        return fn(*args).numpy()
    dataset = tf.data.Dataset.from_tensors(tuple(args)).map(fn)
    return next(iter(dataset)).numpy()


def ramp(height, width):
    """A uint8 image whose pixels are all different (mod 256)."""
    return np.arange(height * width * 3).reshape(height, width, 3) % 256


class OptionsTest(tf.test.TestCase, parameterized.TestCase):
    def test_defaults_and_to_dict(self):
        options = preprocessing.Options()
        self.assertEqual(
            options.to_dict(),
            {
                "image_size": 224,
                "crop_fraction": 0.875,
                "interpolation": "bilinear",
                "antialias": True,
                "crop_mode": "resize_then_crop",
                "num_crops": 1,
            },
        )
        self.assertEqual(options.resize_size, 256)
        self.assertEqual(preprocessing.Options(image_size=299).resize_size, 342)

    def test_frozen(self):
        with self.assertRaises(AttributeError):
            preprocessing.Options().image_size = 160

    @parameterized.named_parameters(
        (
            "image_size",
            {"image_size": 0},
            ValueError,
            "Argument `image_size` must be a positive integer. "
            "Received: image_size=0",
        ),
        (
            "image_size_float",
            {"image_size": 224.0},
            ValueError,
            "Argument `image_size` must be a positive integer. "
            "Received: image_size=224.0",
        ),
        (
            "crop_fraction",
            {"crop_fraction": 1.5},
            ValueError,
            "Argument `crop_fraction` must be a number in (0, 1]. "
            "Received: crop_fraction=1.5",
        ),
        (
            "interpolation",
            {"interpolation": "cubic"},
            ValueError,
            "Argument `interpolation` must be one of ['area', 'bicubic', "
            "'bilinear', 'gaussian', 'lanczos3', 'lanczos5', "
            "'mitchellcubic', 'nearest']. Received: interpolation='cubic'",
        ),
        (
            "antialias",
            {"antialias": 1},
            TypeError,
            "Argument `antialias` must be a bool. Received: antialias=1",
        ),
        (
            "crop_mode",
            {"crop_mode": "center"},
            ValueError,
            "Argument `crop_mode` must be one of ['crop_then_resize', "
            "'resize_then_crop']. Received: crop_mode='center'",
        ),
        (
            "num_crops",
            {"num_crops": 5},
            ValueError,
            "Argument `num_crops` must be one of [1, 10]. "
            "Received: num_crops=5",
        ),
    )
    def test_invalid(self, kwargs, error, message):
        with self.assertRaises(error) as raised:
            preprocessing.Options(**kwargs)
        self.assertEqual(str(raised.exception), message)

    def test_eval_image_needs_options(self):
        with self.assertRaisesRegex(
            TypeError,
            r"Argument `options` must be a `preprocessing.Options`. "
            r"Received: options=\{'image_size': 8\}",
        ):
            preprocessing.eval_image(np.zeros([8, 8, 3]), {"image_size": 8})


class Spec:
    """A stand-in for `models.ModelSpec`: only what `resolve` reads."""

    def __init__(self, input_size=299, crop_fraction=1.0, interpolation="area"):
        self.input_size = input_size
        self.crop_fraction = crop_fraction
        self.interpolation = interpolation


class ResolveTest(tf.test.TestCase, parameterized.TestCase):
    def test_defaults_without_spec_or_overrides(self):
        self.assertEqual(preprocessing.resolve(), preprocessing.Options())
        self.assertEqual(
            preprocessing.resolve(None, {}), preprocessing.Options()
        )

    def test_spec_over_defaults(self):
        self.assertEqual(
            preprocessing.resolve(Spec()),
            preprocessing.Options(
                image_size=299, crop_fraction=1.0, interpolation="area"
            ),
        )

    def test_overrides_over_spec(self):
        options = preprocessing.resolve(
            Spec(),
            {
                "image_size": 320,
                "interpolation": "bicubic",
                "antialias": False,
                "crop_mode": "crop_then_resize",
                "num_crops": 10,
            },
        )
        self.assertEqual(
            options,
            preprocessing.Options(
                image_size=320,
                crop_fraction=1.0,  # The spec's: not overridden.
                interpolation="bicubic",
                antialias=False,
                crop_mode="crop_then_resize",
                num_crops=10,
            ),
        )

    def test_none_means_not_set(self):
        overrides = {name: None for name in preprocessing.Options().to_dict()}
        self.assertEqual(
            preprocessing.resolve(Spec(), overrides),
            preprocessing.resolve(Spec()),
        )
        # A None spec attribute is not set either: the default applies.
        self.assertEqual(
            preprocessing.resolve(Spec(crop_fraction=None)).crop_fraction,
            0.875,
        )

    def test_model_spec(self):
        from tf_topk import models

        spec = models.get_spec("inception_v3")
        options = preprocessing.resolve(spec, {"crop_fraction": None})
        self.assertEqual(options.image_size, spec.input_size)
        self.assertEqual(options.crop_fraction, spec.crop_fraction)
        self.assertEqual(options.interpolation, spec.interpolation)

    @parameterized.named_parameters(
        (
            "unknown_key",
            None,
            {"image_size": 8, "resize": 9, "crop": 1},
            ValueError,
            "Argument `overrides` has unknown keys ['crop', 'resize']; the "
            "valid keys are ['image_size', 'crop_fraction', 'interpolation', "
            "'antialias', 'crop_mode', 'num_crops']. Received: "
            "overrides={'image_size': 8, 'resize': 9, 'crop': 1}",
        ),
        (
            "not_a_mapping",
            None,
            [("image_size", 8)],
            TypeError,
            "Argument `overrides` must be a mapping of `Options` field names "
            "to values, or None. Received: overrides=[('image_size', 8)]",
        ),
        (
            "spec_without_input_size",
            "a spec",
            None,
            TypeError,
            "Argument `spec` must be a `models.ModelSpec` or have attributes "
            "['input_size', 'crop_fraction', 'interpolation']; it has no "
            "`input_size`. Received: spec='a spec'",
        ),
        (
            "bad_value",
            None,
            {"crop_fraction": 0},
            ValueError,
            "Argument `crop_fraction` must be a number in (0, 1]. "
            "Received: crop_fraction=0",
        ),
    )
    def test_invalid(self, spec, overrides, error, message):
        with self.assertRaises(error) as raised:
            preprocessing.resolve(spec, overrides)
        self.assertEqual(str(raised.exception), message)


class DecodeTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.product(
        fmt=("jpeg", "png", "gray_jpeg", "gray_png", "cmyk_jpeg"),
        mode=("eager", "tf_data"),
    )
    def test_formats_decode_to_rgb(self, fmt, mode):
        # Constant images survive JPEG coding exactly; the CMYK writer stores
        # K = value with full C, M, Y, so only a K-aware decoder gets it.
        encoded = testing.encoded_image(3, 5, fmt=fmt, height=12, width=20)
        image = run(preprocessing.decode_image, mode, tf.constant(encoded))
        self.assertEqual(image.dtype, np.uint8)
        self.assertAllEqual(
            image, np.full([12, 20, 3], testing.class_intensity(3, 5))
        )

    def test_png_pixels_exact(self):
        image = ramp(7, 9).astype(np.uint8)
        encoded = tf.io.encode_png(image)
        self.assertAllEqual(preprocessing.decode_image(encoded), image)

    def test_rgba_png_drops_alpha(self):
        image = ramp(5, 6).astype(np.uint8)
        rgba = np.concatenate([image, np.full([5, 6, 1], 7, np.uint8)], -1)
        decoded = preprocessing.decode_image(tf.io.encode_png(rgba))
        self.assertAllEqual(decoded, image)

    def test_garbage_raises(self):
        with self.assertRaises(tf.errors.InvalidArgumentError):
            preprocessing.decode_image(tf.constant(b"not an image"))


class EvalImageTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.product(
        interpolation=("bilinear", "bicubic", "area", "nearest"),
        antialias=(True, False),
        mode=("eager", "tf_data"),
    )
    def test_resize_then_crop_centre_without_scaling(
        self, interpolation, antialias, mode
    ):
        # Shorter side 4 == round(2 / 0.5): no scaling, only the centre crop
        # rows 1..2, columns 2..3 of a 4 x 6 image.
        image = ramp(4, 6).astype(np.uint8)
        options = preprocessing.Options(
            image_size=2,
            crop_fraction=0.5,
            interpolation=interpolation,
            antialias=antialias,
        )
        out = run(lambda x: preprocessing.eval_image(x, options), mode, image)
        self.assertEqual(out.dtype, np.float32)
        self.assertAllEqual(out, image[1:3, 2:4].astype(np.float32))

    @parameterized.named_parameters(*MODES)
    def test_resize_then_crop_area_halves(self, mode):
        # 8 x 8 -> shorter side 4 (area = mean of 2 x 2 blocks) -> centre 2.
        image = ramp(8, 8).astype(np.uint8)
        options = preprocessing.Options(
            image_size=2, crop_fraction=0.5, interpolation="area"
        )
        out = run(lambda x: preprocessing.eval_image(x, options), mode, image)
        blocks = image.reshape(4, 2, 4, 2, 3).astype(np.float64).mean((1, 3))
        self.assertAllClose(out, blocks[1:3, 1:3], atol=1e-4)

    @parameterized.named_parameters(*MODES)
    def test_resize_then_crop_keeps_aspect_ratio(self, mode):
        # 6 x 12 -> shorter side 3 (area: 2 x 2 block means) -> 3 x 6;
        # centre 3 x 3 starts at column (6 - 3) // 2 = 1. The output is a
        # square whichever side is longer.
        image = ramp(6, 12).astype(np.uint8)
        options = preprocessing.Options(
            image_size=3, crop_fraction=1.0, interpolation="area"
        )
        out = run(lambda x: preprocessing.eval_image(x, options), mode, image)
        blocks = image.reshape(3, 2, 6, 2, 3).astype(np.float64).mean((1, 3))
        self.assertAllClose(out, blocks[:, 1:4], atol=1e-4)
        portrait = np.transpose(image, (1, 0, 2))
        out = run(
            lambda x: preprocessing.eval_image(x, options), mode, portrait
        )
        self.assertAllClose(
            out, np.transpose(blocks, (1, 0, 2))[1:4, :], atol=1e-4
        )

    @parameterized.named_parameters(*MODES)
    def test_crop_then_resize(self, mode):
        # 8 x 12: square of int(0.5 * 8) = 4 at rows 2..5, columns 4..7,
        # then area 4 -> 2 (2 x 2 block means).
        image = ramp(8, 12).astype(np.uint8)
        options = preprocessing.Options(
            image_size=2,
            crop_fraction=0.5,
            interpolation="area",
            crop_mode="crop_then_resize",
        )
        out = run(lambda x: preprocessing.eval_image(x, options), mode, image)
        window = image[2:6, 4:8].astype(np.float64)
        blocks = window.reshape(2, 2, 2, 2, 3).mean((1, 3))
        self.assertAllClose(out, blocks, atol=1e-4)

    def test_crop_modes_differ(self):
        # 8 x 12 at 0.5: resize-then-crop keeps 2 / 3 of the short side's
        # rows (after scaling), crop-then-resize keeps the centre half.
        image = ramp(8, 12).astype(np.uint8)
        first = preprocessing.eval_image(
            image,
            preprocessing.Options(image_size=2, crop_fraction=0.5),
        )
        second = preprocessing.eval_image(
            image,
            preprocessing.Options(
                image_size=2, crop_fraction=0.5, crop_mode="crop_then_resize"
            ),
        )
        self.assertNotAllClose(first, second)

    @parameterized.product(
        crop_mode=("resize_then_crop", "crop_then_resize"),
        mode=("eager", "tf_data"),
    )
    def test_ten_crops_order(self, crop_mode, mode):
        # Scale 1 in both modes: the crops are plain slices. 4 x 6 image,
        # 2 x 2 crops: corners, centre (rows 1..2, columns 2..3), mirrors.
        image = ramp(4, 6).astype(np.uint8)
        options = preprocessing.Options(
            image_size=2, crop_fraction=0.5, crop_mode=crop_mode, num_crops=10
        )
        out = run(lambda x: preprocessing.eval_image(x, options), mode, image)
        crops = [
            image[0:2, 0:2],
            image[0:2, 4:6],
            image[2:4, 0:2],
            image[2:4, 4:6],
            image[1:3, 2:4],
        ]
        expected = np.stack(crops + [c[:, ::-1] for c in crops])
        self.assertEqual(out.shape, (10, 2, 2, 3))
        self.assertAllEqual(out, expected.astype(np.float32))

    @parameterized.named_parameters(*MODES)
    def test_antialias_filters_when_downsampling(self, mode):
        # Stripes 4 columns wide, downsampled 4x: without antialias bilinear
        # samples between columns 4i + 1 and 4i + 2 (one stripe, exact);
        # with antialias the triangle filter mixes neighbouring stripes.
        column = np.where((np.arange(16) // 4) % 2 == 1, 255, 0)
        image = np.broadcast_to(column[None, :, None], (16, 16, 3))
        image = image.astype(np.uint8)
        sharp, smooth = (
            run(
                lambda x, a=antialias: preprocessing.eval_image(
                    x,
                    preprocessing.Options(
                        image_size=4, crop_fraction=1.0, antialias=a
                    ),
                ),
                mode,
                image,
            )
            for antialias in (False, True)
        )
        self.assertAllEqual(sharp[0, :, 0], [0, 255, 0, 255])
        self.assertTrue(np.all((smooth > 0) & (smooth < 255)))

    @parameterized.named_parameters(
        ("bicubic", "bicubic"), ("lanczos3", "lanczos3")
    )
    def test_overshoot_clipped(self, interpolation):
        checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
        image = np.repeat(checker[..., None], 3, axis=-1)
        raw = tf.image.resize(image, [30, 30], method=interpolation)
        self.assertLess(float(tf.reduce_min(raw)), 0.0)
        out = preprocessing.eval_image(
            image,
            preprocessing.Options(
                image_size=30,
                crop_fraction=1.0,
                interpolation=interpolation,
                antialias=False,
            ),
        )
        self.assertEqual(float(tf.reduce_min(out)), 0.0)
        self.assertEqual(float(tf.reduce_max(out)), 255.0)
        # The fused JPEG path clips too.
        fused = preprocessing.decode_eval_image(
            tf.io.encode_jpeg(image, quality=100),
            preprocessing.Options(
                image_size=30,
                crop_fraction=1.0,
                interpolation=interpolation,
                antialias=False,
                crop_mode="crop_then_resize",
            ),
        )
        self.assertEqual(float(tf.reduce_min(fused)), 0.0)
        self.assertEqual(float(tf.reduce_max(fused)), 255.0)

    def test_interpolations_differ(self):
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, [37, 53, 3]).astype(np.uint8)
        outputs = {
            interpolation: preprocessing.eval_image(
                image,
                preprocessing.Options(
                    image_size=16, interpolation=interpolation
                ),
            )
            for interpolation in ("bilinear", "bicubic", "area", "nearest")
        }
        self.assertNotAllClose(outputs["bilinear"], outputs["bicubic"])
        self.assertNotAllClose(outputs["bilinear"], outputs["area"])
        self.assertNotAllClose(outputs["bilinear"], outputs["nearest"])

    @parameterized.named_parameters(*MODES)
    def test_float_input_same_as_uint8(self, mode):
        image = ramp(9, 13).astype(np.uint8)
        options = preprocessing.Options(image_size=5)
        as_uint8 = run(
            lambda x: preprocessing.eval_image(x, options), mode, image
        )
        as_float = run(
            lambda x: preprocessing.eval_image(x, options),
            mode,
            image.astype(np.float32),
        )
        self.assertAllClose(as_uint8, as_float, atol=1e-4)


def noise_jpeg(height, width, *, jpeg="420"):
    """JPEG of noise on a ramp: every 8 x 8 block distinct, so a window off
    by one block or one pixel changes the output."""
    rng = np.random.default_rng(height * 1000 + width)
    noise = rng.integers(0, 256, [height, width, 3])
    smooth = np.indices((height, width)).sum(0)[..., None] * 2
    image = ((noise + smooth) % 256).astype(np.uint8)
    return tf.io.encode_jpeg(
        image,
        quality=90,
        chroma_downsampling=jpeg != "444",
        progressive=jpeg == "progressive",
    )


class DecodeEvalImageTest(tf.test.TestCase, parameterized.TestCase):
    """The fused decode_and_crop_jpeg path gives the generic path's pixels."""

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.product(
        size=((37, 53), (64, 48), (375, 500), (33, 33)),
        jpeg=("420", "444", "progressive"),
        interpolation=("bilinear",),
        mode=("eager",),
    )
    def test_fused_jpeg_crop_equals_decode_then_crop(
        self, size, jpeg, interpolation, mode
    ):
        self.check_fused(size, jpeg, interpolation, mode)

    @parameterized.product(
        jpeg=("420", "progressive"),
        interpolation=("bilinear", "bicubic"),
        mode=("tf_data",),
    )
    def test_fused_in_tf_data(self, jpeg, interpolation, mode):
        self.check_fused((75, 100), jpeg, interpolation, mode)

    def check_fused(self, size, jpeg, interpolation, mode):
        encoded = noise_jpeg(*size, jpeg=jpeg)
        options = preprocessing.Options(
            image_size=24,
            crop_fraction=0.875,
            interpolation=interpolation,
            crop_mode="crop_then_resize",
        )
        fused = run(
            lambda x: preprocessing.decode_eval_image(x, options),
            mode,
            encoded,
        )
        generic = preprocessing.eval_image(
            preprocessing.decode_image(encoded), options
        )
        self.assertEqual(fused.shape, (24, 24, 3))
        self.assertAllEqual(fused, generic)

    def test_window_cut_at_the_crop_is_not_exact(self):
        # Why the fused path decodes a margin: on a 4:2:0 JPEG a window cut
        # exactly at the crop gets different edge pixels.
        encoded = noise_jpeg(37, 53)
        side, top, left = 32, 2, 10
        full = tf.io.decode_jpeg(encoded, channels=3)
        window = tf.image.decode_and_crop_jpeg(
            encoded, [top, left, side, side], channels=3
        )
        self.assertNotAllEqual(
            window, full[top : top + side, left : left + side]
        )

    @parameterized.named_parameters(*MODES)
    def test_png_takes_generic_path(self, mode):
        image = ramp(20, 30).astype(np.uint8)
        encoded = tf.io.encode_png(image)
        options = preprocessing.Options(
            image_size=8, crop_mode="crop_then_resize"
        )
        out = run(
            lambda x: preprocessing.decode_eval_image(x, options),
            mode,
            encoded,
        )
        self.assertAllEqual(out, preprocessing.eval_image(image, options))

    @parameterized.named_parameters(
        ("resize_then_crop", "resize_then_crop", 1),
        ("ten_crops", "crop_then_resize", 10),
    )
    def test_other_modes_decode_then_preprocess(self, crop_mode, num_crops):
        image = ramp(20, 30).astype(np.uint8)
        encoded = tf.io.encode_jpeg(image, quality=95)
        options = preprocessing.Options(
            image_size=8, crop_mode=crop_mode, num_crops=num_crops
        )
        out = preprocessing.decode_eval_image(encoded, options)
        expected = preprocessing.eval_image(
            preprocessing.decode_image(encoded), options
        )
        self.assertAllEqual(out, expected)


class RealJpegTest(tf.test.TestCase):
    def test_fused_path_exact_on_real_validation_images(self):
        folder = conftest.ASSETS / "imagenet" / "val_pjpeg100"
        if not folder.is_dir():
            self.skipTest(f"Real images not found at {folder}.")
        options = preprocessing.Options(crop_mode="crop_then_resize")
        fused = tf.function(
            lambda x: preprocessing.decode_eval_image(x, options)
        )
        generic = tf.function(
            lambda x: preprocessing.eval_image(
                preprocessing.decode_image(x), options
            )
        )
        files = sorted(folder.glob("*.JPEG"))
        self.assertLen(files, 100)
        for file in files:
            encoded = tf.io.read_file(str(file))
            self.assertAllEqual(fused(encoded), generic(encoded), msg=file)
