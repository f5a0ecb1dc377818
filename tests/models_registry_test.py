"""Tests for tf_topk.models.registry and tf_topk.models.weights_files."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import models
from tf_topk.models import figures

# Every ImageNet classifier the issue lists, by registry key.
EXPECTED_NAMES = [
    "convnext_base", "convnext_large", "convnext_small", "convnext_tiny",
    "convnext_xlarge", "densenet121", "densenet169", "densenet201",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5",
    "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_b0",
    "efficientnet_v2_b1", "efficientnet_v2_b2", "efficientnet_v2_b3",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s",
    "inception_resnet_v2", "inception_v3", "mobilenet", "mobilenet_v2",
    "mobilenet_v3_large", "mobilenet_v3_small", "nasnet_large",
    "nasnet_mobile", "resnet101", "resnet101_v2", "resnet152",
    "resnet152_v2", "resnet50", "resnet50_v2", "vgg16", "vgg19", "xception",
]  # fmt: skip


class RegistryTest(parameterized.TestCase, tf.test.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    def test_names_cover_every_keras_imagenet_classifier(self):
        self.assertEqual(models.names(), EXPECTED_NAMES)
        self.assertLen(EXPECTED_NAMES, 40)

    def test_unknown_name_lists_the_valid_ones(self):
        with self.assertRaisesRegex(ValueError, "must be one of") as caught:
            models.get_spec("resnet51")
        self.assertEqual(
            str(caught.exception),
            f"Argument `name` must be one of {EXPECTED_NAMES}. Received: "
            "name='resnet51'",
        )

    def test_get_spec_is_case_insensitive(self):
        self.assertEqual(models.get_spec("MobileNet_V2").name, "mobilenet_v2")

    def test_name_of_wrong_type(self):
        with self.assertRaisesRegex(
            TypeError, r"Argument `name` must be a string. Received: name=3 "
        ):
            models.get_spec(3)

    @parameterized.named_parameters(
        ("xception", "xception", 299),
        ("inception_v3", "inception_v3", 299),
        ("inception_resnet_v2", "inception_resnet_v2", 299),
        ("nasnet_large", "nasnet_large", 331),
        ("nasnet_mobile", "nasnet_mobile", 224),
        ("resnet50", "resnet50", 224),
        ("efficientnet_b0", "efficientnet_b0", 224),
        ("efficientnet_b4", "efficientnet_b4", 380),
        ("efficientnet_b7", "efficientnet_b7", 600),
        ("efficientnet_v2_b0", "efficientnet_v2_b0", 224),
        ("efficientnet_v2_b1", "efficientnet_v2_b1", 240),
        ("efficientnet_v2_b2", "efficientnet_v2_b2", 260),
        ("efficientnet_v2_b3", "efficientnet_v2_b3", 300),
        ("efficientnet_v2_s", "efficientnet_v2_s", 384),
        ("efficientnet_v2_m", "efficientnet_v2_m", 480),
        ("efficientnet_v2_l", "efficientnet_v2_l", 480),
        ("convnext_xlarge", "convnext_xlarge", 224),
    )
    def test_input_size_follows_keras(self, name, size):
        self.assertEqual(models.get_spec(name).input_size, size)

    @parameterized.named_parameters(
        ("resnet50", "resnet50", 0.875, "bilinear"),
        ("mobilenet", "mobilenet", 0.875, "bilinear"),
        ("efficientnet_b3", "efficientnet_b3", 0.875, "bicubic"),
        ("efficientnet_v2_b0", "efficientnet_v2_b0", 224 / 256, "bilinear"),
        ("efficientnet_v2_b3", "efficientnet_v2_b3", 300 / 332, "bilinear"),
        ("efficientnet_v2_s", "efficientnet_v2_s", 1.0, "bilinear"),
        ("convnext_tiny", "convnext_tiny", 0.875, "bicubic"),
    )
    def test_reference_crop_and_interpolation(self, name, crop, method):
        spec = models.get_spec(name)
        self.assertAlmostEqual(spec.crop_fraction, crop)
        self.assertEqual(spec.interpolation, method)

    def test_every_spec_is_complete(self):
        for name in models.names():
            spec = models.get_spec(name)
            self.assertEqual(spec.num_classes, 1000, name)
            self.assertEqual(spec.output, "softmax", name)
            self.assertIn(spec.preprocess_mode, models.PREPROCESS_MODES)
            self.assertIn(spec.interpolation, models.INTERPOLATIONS)
            self.assertTrue(0.5 < spec.crop_fraction <= 1.0, name)
            self.assertIsNotNone(spec.top1, name)
            self.assertTrue(0.6 < spec.top1 < 0.9, name)
            if spec.top5 is not None:
                self.assertTrue(spec.top1 < spec.top5 < 1.0, name)
            self.assertIs(
                spec.constructor, getattr(keras.applications, spec.keras_name)
            )

    @parameterized.named_parameters(
        ("v1_0.75_224", "mobilenet", 0.75, 224, (0.684, 0.882)),
        ("v1_0.25_224", "mobilenet", 0.25, 224, (0.498, 0.742)),
        ("v1_1.0_224", "mobilenet", 1.0, None, (0.709, 0.899)),
        ("v1_0.5_128", "mobilenet", 0.5, 128, (0.563, 0.794)),
        ("v1_0.75_96", "mobilenet", 0.75, 96, None),
        ("v2_1.4_224", "mobilenet_v2", 1.4, 224, (0.750, 0.925)),
        ("v2_0.35_96", "mobilenet_v2", 0.35, 96, (0.455, 0.704)),
        ("v2_1.0_224", "mobilenet_v2", 1.0, 224, (0.718, 0.910)),
        ("resnet50", "resnet50", 1.0, None, (0.749, 0.921)),
        ("resnet50_160", "resnet50", 1.0, 160, None),
        ("convnext_no_top5", "convnext_tiny", 1.0, None, (0.813, None)),
        ("efficientnet_b7", "efficientnet_b7", 1.0, 600, (0.843, 0.970)),
        # Measured at 299, the default 224 run compares with it too.
        ("resnet50_v2_224", "resnet50_v2", 1.0, None, (0.760, 0.930)),
        ("resnet50_v2_299", "resnet50_v2", 1.0, 299, (0.760, 0.930)),
        ("resnet50_v2_260", "resnet50_v2", 1.0, 260, None),
    )
    def test_published(self, name, alpha, image_size, expected):
        spec = models.get_spec(name)
        published = spec.published(alpha=alpha, image_size=image_size)
        figures = published and (published.top1, published.top5)
        self.assertEqual(figures, expected)

    @parameterized.named_parameters(
        (
            "keras_table",
            "resnet50",
            {},
            models.Published(
                0.749,
                0.921,
                figures.KERAS_TABLE,
                models.Conditions(
                    image_size=224,
                    crop_fraction=0.875,
                    num_crops=1,
                    weights="resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                ),
            ),
        ),
        (
            "resnet_v2_at_299",
            "resnet152_v2",
            {},
            models.Published(
                0.780,
                0.942,
                figures.RESNET_V2_SOURCE,
                models.Conditions(
                    image_size=299,
                    crop_fraction=0.875,
                    num_crops=1,
                    weights="resnet152v2_weights_tf_dim_ordering_tf_kernels.h5",
                ),
            ),
        ),
        (
            "slim_table",
            "mobilenet_v2",
            {"alpha": 0.35, "image_size": 96},
            models.Published(
                0.455,
                0.704,
                figures.MOBILENET_V2_SLIM,
                models.Conditions(
                    image_size=96,
                    crop_fraction=0.875,
                    num_crops=1,
                    weights="TF-slim mobilenet_v2_0.35_96",
                ),
            ),
        ),
        (
            "ten_crops",
            "vgg16",
            {"num_crops": 10},
            models.Published(
                None,
                0.91166,
                figures.KERAS_APPLICATIONS_README,
                models.Conditions(
                    image_size=224,
                    crop_fraction=0.875,
                    num_crops=10,
                    weights="vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                ),
            ),
        ),
        (
            "ten_crops_only_at_224",
            "mobilenet",
            {"alpha": 0.25, "image_size": 128, "num_crops": 10},
            models.Published(
                0.415,
                0.663,
                figures.MOBILENET_V1_SLIM,
                models.Conditions(
                    image_size=128,
                    crop_fraction=0.875,
                    num_crops=1,
                    weights="TF-slim mobilenet_v1_0.25_128",
                ),
            ),
        ),
        (
            "no_ten_crop_figure",
            "efficientnet_v2_b0",
            {"num_crops": 10},
            models.Published(
                0.787,
                0.943,
                figures.KERAS_TABLE,
                models.Conditions(
                    image_size=224,
                    crop_fraction=224 / 256,
                    num_crops=1,
                    weights="efficientnetv2-b0.h5",
                ),
            ),
        ),
    )
    def test_published_source_and_conditions(self, name, kwargs, expected):
        self.assertEqual(models.get_spec(name).published(**kwargs), expected)

    def test_every_figure_has_a_source_and_conditions(self):
        for name in models.names():
            spec = models.get_spec(name)
            published = spec.published()
            self.assertIsNotNone(published, name)
            self.assertTrue(published.source, name)
            conditions = published.conditions
            self.assertEqual(conditions.num_crops, 1, name)
            self.assertEqual(conditions.crop_fraction, spec.crop_fraction)
            expected_size = (
                299
                if name.endswith("_v2") and "resnet" in name
                else spec.input_size
            )
            self.assertEqual(conditions.image_size, expected_size, name)
            self.assertIsNotNone(conditions.weights, name)
            record = published.to_dict()
            self.assertEqual(
                sorted(record), ["conditions", "source", "top1", "top5"]
            )

    def test_mobilenet_tables_are_complete(self):
        v1 = models.get_spec("mobilenet")
        for alpha in (1.0, 0.75, 0.5, 0.25):
            for size in (224, 192, 160, 128):
                self.assertIsNotNone(v1.published(alpha=alpha, image_size=size))
        v2 = models.get_spec("mobilenet_v2")
        for alpha in (1.0, 0.75, 0.5, 0.35):
            for size in (224, 192, 160, 128, 96):
                self.assertIsNotNone(v2.published(alpha=alpha, image_size=size))

    @parameterized.named_parameters(
        (name, name) for name in EXPECTED_NAMES
    )  # fmt: skip
    def test_preprocessing_matches_the_keras_module(self, name):
        spec = models.get_spec(name)
        rng = np.random.default_rng(0)
        images = rng.uniform(0.0, 255.0, size=(2, 4, 5, 3)).astype("float32")
        images[0, 0, 0] = (0.0, 0.0, 255.0)
        reference = np.asarray(spec.module.preprocess_input(images.copy()))
        ours = models.InputPreprocessing(spec.preprocess_mode)(images)
        self.assertAllClose(ours, reference, atol=1e-5)
        ours_in_graph = tf.function(
            lambda x: models.InputPreprocessing(spec.preprocess_mode)(x)
        )(images)
        self.assertAllClose(ours_in_graph, reference, atol=1e-5)
        if spec.preprocess_mode == "none":
            self.assertIsNone(spec.preprocess_input)
        else:
            self.assertIs(spec.preprocess_input, spec.module.preprocess_input)
        # The mode is told by the range it produces from 0..255 inputs.
        low, high = float(reference.min()), float(reference.max())
        blue = reference[0, 0, 0]
        if spec.preprocess_mode == "tf":
            self.assertAllClose(blue, [-1.0, -1.0, 1.0])
        elif spec.preprocess_mode == "caffe":
            self.assertAllClose(blue, [255 - 103.939, -116.779, -123.68])
        elif spec.preprocess_mode == "torch":
            self.assertAllClose(
                blue, [-0.485 / 0.229, -0.456 / 0.224, 0.594 / 0.225]
            )
        else:
            self.assertAllClose(blue, [0.0, 0.0, 255.0])
            self.assertGreater(high - low, 200.0)


# ------------------------------------------------ the Keras weights files

# Read as text, never imported: tf_topk keeps off keras.src.
KERAS_APPLICATIONS = Path(keras.__file__).with_name("src") / "applications"


def _evaluate(node: ast.AST, names: dict[str, Any]) -> Any:
    """The value of an expression of the Keras source, or None if unknown."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = [
            _evaluate(
                part.value if isinstance(part, ast.FormattedValue) else part,
                names,
            )
            for part in node.values
        ]
        if all(isinstance(part, str) for part in parts):
            return "".join(parts)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _evaluate(node.left, names)
        right = _evaluate(node.right, names)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        return None
    if isinstance(node, ast.Subscript):
        container = _evaluate(node.value, names)
        key = _evaluate(node.slice, names)
        try:
            return container[key]
        except (KeyError, IndexError, TypeError):
            return None
    return None


class _GetFileCalls(ast.NodeVisitor):
    """The (fname, origin, file_hash) of every `get_file` call of a source.

    Follows assignments in source order, takes the `if include_top:` branch
    the given value selects and both branches of any other `if`; keeps the
    calls whose file name and origin the source fixes.
    """

    def __init__(self, names: dict[str, Any], include_top: bool) -> None:
        self.names = dict(names)
        self.include_top = include_top
        self.calls: set[tuple[str, str, str | None]] = set()

    def visit_FunctionDef(self, node):
        outer, self.names = self.names, dict(self.names)
        self.generic_visit(node)
        self.names = outer

    def visit_Assign(self, node):
        self.generic_visit(node)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self.names[node.targets[0].id] = _evaluate(node.value, self.names)

    def visit_If(self, node):
        if isinstance(node.test, ast.Name) and node.test.id == "include_top":
            for statement in node.body if self.include_top else node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Call(self, node):
        self.generic_visit(node)
        if getattr(node.func, "attr", None) != "get_file":
            return
        arguments = dict(zip(("fname", "origin"), node.args, strict=False))
        arguments.update({k.arg: k.value for k in node.keywords})
        values = {k: _evaluate(v, self.names) for k, v in arguments.items()}
        if values.get("fname") and values.get("origin"):
            self.calls.add(
                (values["fname"], values["origin"], values.get("file_hash"))
            )


def _source(module: str) -> ast.Module:
    return ast.parse((KERAS_APPLICATIONS / f"{module}.py").read_text())


def _constants(tree: ast.Module) -> dict[str, Any]:
    """The module-level constants of a source (URLs, WEIGHTS_HASHES)."""
    names: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(
            node.targets[0], ast.Name
        ):
            names[node.targets[0].id] = _evaluate(node.value, names)
    return names


def _constructor_bindings(tree: ast.Module, keras_name: str) -> dict:
    """`name` (its default) and `weights_name` of a public constructor."""
    bindings = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == keras_name:
            arguments = node.args.args[-len(node.args.defaults) :]
            for argument, default in zip(arguments, node.args.defaults):
                if argument.arg == "name":
                    bindings["name"] = _evaluate(default, {})
            for call in ast.walk(node):
                for keyword in getattr(call, "keywords", ()):
                    if keyword.arg == "weights_name":
                        bindings["weights_name"] = _evaluate(keyword.value, {})
    return bindings


def _keras_weights_files(spec: models.ModelSpec, include_top: bool) -> set:
    """The weights files the Keras source of `spec` can fetch."""
    module = spec.module.__name__.rsplit(".", 1)[-1]
    tree = _source(module)
    bindings = _constructor_bindings(tree, spec.keras_name)
    # ResNetV2 runs resnet.ResNet: read the application modules it imports.
    modules = [module] + [
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and node.module == "keras.src.applications"
        for alias in node.names
    ]
    calls = set()
    for name in modules:
        source = _source(name)
        visitor = _GetFileCalls({**_constants(source), **bindings}, include_top)
        visitor.visit(source)
        calls |= visitor.calls
    return calls


# Keras names these files with %-formatting and str.format of constructor
# arguments: pinned here, their URL folder and hashes checked below.
MOBILENET_FAMILIES = ("mobilenet", "mobilenet_v2", "mobilenet_v3")


class WeightsFilesTest(parameterized.TestCase, tf.test.TestCase):
    @parameterized.named_parameters(
        (name, name)
        for name in EXPECTED_NAMES
        if not name.startswith(MOBILENET_FAMILIES)
    )  # fmt: skip
    def test_file_is_one_the_keras_source_fetches(self, name):
        spec = models.get_spec(name)
        for include_top in (True, False):
            ours = spec.imagenet_weights(include_top=include_top)
            keras_files = _keras_weights_files(spec, include_top)
            self.assertIn(
                (ours.fname, ours.origin, ours.file_hash), keras_files
            )
            # One source may fetch several models' files (DenseNet, NASNet).
            self.assertIn(
                spec.keras_name.lower(), re.sub(r"[_-]", "", ours.fname)
            )

    @parameterized.named_parameters(
        ("mobilenet", "mobilenet", "mobilenet", {}),
        ("mobilenet_v2", "mobilenet_v2", "mobilenet_v2", {}),
        ("small", "mobilenet_v3_small", "mobilenet_v3", {}),
        ("large_minimalistic", "mobilenet_v3_large", "mobilenet_v3",
         {"minimalistic": True}),
    )  # fmt: skip
    def test_mobilenet_url_folder_and_hash(self, name, module, kwargs):
        constants = _constants(_source(module))
        hashes = constants.get("WEIGHTS_HASHES", {})
        for include_top in (True, False):
            ours = models.get_spec(name).imagenet_weights(
                include_top=include_top, **kwargs
            )
            self.assertEqual(
                ours.origin, constants["BASE_WEIGHT_PATH"] + ours.fname
            )
            expected_hash = [
                pair[0 if include_top else 1]
                for key, pair in hashes.items()
                if f"_{key}." in ours.fname or f"_{key}_" in ours.fname
            ]
            # MobileNet V1 / V2: Keras checks no hash.
            self.assertEqual([ours.file_hash], expected_hash or [None])

    @parameterized.named_parameters(
        ("v1", "mobilenet", {}, "mobilenet_1_0_224_tf.h5"),
        ("v1_0.75", "mobilenet", {"alpha": 0.75}, "mobilenet_7_5_224_tf.h5"),
        ("v1_0.25_128", "mobilenet",
         {"alpha": 0.25, "input_shape": (128, 128, 3)},
         "mobilenet_2_5_128_tf.h5"),
        ("v1_0.5_160_no_top", "mobilenet",
         {"alpha": 0.5, "include_top": False, "input_shape": (160, 160, 3)},
         "mobilenet_5_0_160_tf_no_top.h5"),
        ("v1_unlisted_size_no_top", "mobilenet",
         {"include_top": False, "input_shape": (100, 100, 3)},
         "mobilenet_1_0_224_tf_no_top.h5"),
        ("v2_0.35_96", "mobilenet_v2",
         {"alpha": 0.35, "input_shape": (96, 96, 3)},
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"),
        ("v2_1.4", "mobilenet_v2", {"alpha": 1.4},
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.4_224.h5"),
        ("v2_0.5_no_top", "mobilenet_v2",
         {"alpha": 0.5, "include_top": False},
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"),
        ("v3_small", "mobilenet_v3_small", {},
         "weights_mobilenet_v3_small_224_1.0_float.h5"),
        ("v3_large_0.75", "mobilenet_v3_large", {"alpha": 0.75},
         "weights_mobilenet_v3_large_224_0.75_float.h5"),
        ("v3_large_minimalistic_no_top", "mobilenet_v3_large",
         {"minimalistic": True, "include_top": False},
         "weights_mobilenet_v3_large_minimalistic_224_1.0_float_no_top_v2.h5"),
        ("nasnet_mobile_no_top", "nasnet_mobile", {"include_top": False},
         "nasnet_mobile_no_top.h5"),
        ("resnet50_v2", "resnet50_v2", {},
         "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5"),
        ("resnet50_v2_at_299", "resnet50_v2",
         {"input_shape": (299, 299, 3)},
         "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5"),
        ("efficientnet_b0", "efficientnet_b0", {}, "efficientnetb0.h5"),
        ("efficientnet_v2_s_no_top", "efficientnet_v2_s",
         {"include_top": False}, "efficientnetv2-s_notop.h5"),
        ("convnext_tiny", "convnext_tiny", {}, "convnext_tiny.h5"),
    )  # fmt: skip
    def test_file_name(self, name, kwargs, fname):
        self.assertEqual(
            models.get_spec(name).imagenet_weights(**kwargs).fname, fname
        )

    @parameterized.named_parameters(
        ("classes", "resnet50", {"classes": 7},
         "Argument `classes` must be 1000 with weights='imagenet' and "
         "include_top=True (the ImageNet head). Received: classes=7"),
        ("size", "resnet50", {"input_shape": (160, 160, 3)},
         "Argument `input_shape` must be (224, 224, 3) for the ImageNet "
         "weights of 'resnet50' with include_top=True. Received: "
         "input_shape=(160, 160, 3)"),
        ("resnet_v2_size", "resnet101_v2", {"input_shape": (260, 260, 3)},
         "Argument `input_shape` must be (S, S, 3) with S in [224, 299] for "
         "the ImageNet weights of 'resnet101_v2' with include_top=True. "
         "Received: input_shape=(260, 260, 3)"),
        ("mobilenet_size", "mobilenet", {"input_shape": (100, 100, 3)},
         "Argument `input_shape` must be (S, S, 3) with S in [128, 160, 192, "
         "224] for the ImageNet weights of 'mobilenet' with "
         "include_top=True. Received: input_shape=(100, 100, 3)"),
        ("mobilenet_alpha", "mobilenet", {"alpha": 0.3},
         "Argument `alpha` must be one of [1.0, 0.75, 0.5, 0.25] for the "
         "ImageNet weights of 'mobilenet'. Received: alpha=0.3"),
        ("depth_multiplier", "mobilenet", {"depth_multiplier": 2},
         "Argument `depth_multiplier` must be 1 for the ImageNet weights of "
         "'mobilenet'. Received: depth_multiplier=2"),
        ("mobilenet_v2_alpha", "mobilenet_v2", {"alpha": 0.6},
         "Argument `alpha` must be one of [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] "
         "for the ImageNet weights of 'mobilenet_v2'. Received: alpha=0.6"),
        ("minimalistic_alpha", "mobilenet_v3_small",
         {"alpha": 0.75, "minimalistic": True},
         "Argument `alpha` must be 0.75 or 1.0 (1.0 with minimalistic=True) "
         "for the ImageNet weights of 'mobilenet_v3_small'. Received: "
         "alpha=0.75, minimalistic=True"),
        ("dynamic_nasnet", "nasnet_mobile",
         {"include_top": False, "input_shape": (None, None, 3)},
         "Argument `input_shape` must be static (no None) for the ImageNet "
         "weights of 'nasnet_mobile'. Received: input_shape=(None, None, 3)"),
        ("channels", "vgg16",
         {"include_top": False, "input_shape": (64, 64, 1)},
         "Argument `input_shape` must have 3 channels for the ImageNet "
         "weights of 'vgg16'. Received: input_shape=(64, 64, 1)"),
    )  # fmt: skip
    def test_no_imagenet_file_for(self, name, kwargs, message):
        with self.assertRaises(ValueError) as caught:
            models.get_spec(name).imagenet_weights(**kwargs)
        self.assertEqual(str(caught.exception), message)
