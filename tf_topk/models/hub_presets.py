"""KerasHub image-classifier presets: their source checkpoints and figures.

KerasHub converted most of its ImageNet classifiers from timm checkpoints
and checked them against timm on single images only; nobody publishes
their ImageNet accuracy. This table keeps, per preset, the timm checkpoint
its weights came from (the `PRESET_MAP` of keras-hub's
tools/checkpoint_conversion/convert_<family>_checkpoints.py), that
checkpoint's timm pretrained config (`TimmConfig`: input size, crop_pct,
test size and crop, interpolation) and, where timm's results CSV has a row
for it, timm's published top-1 / top-5 with the size, crop and
interpolation they were measured at.

The default crop fraction is timm's crop_pct at the size the preset runs
at, not the CSV row's: the row is measured at timm's *test* size (e.g.
resnet50.a1_in1k at 288 px, crop 1.0) while the preset runs at timm's
input size (224 px, crop_pct 0.95). The conversion scripts build each
preset with `ImageClassifier.from_preset("hf://timm/...")`, whose image
converter takes `pretrained_cfg["input_size"]` (keras-hub
src/utils/timm/preset_loader.py), so every traced preset runs at timm's
input size. A preset without a traceable source has no figure, and the
harness crops it at 0.875 (`DEFAULT_CROP_FRACTION`).

Data only: reading it never imports keras_hub.

>>> get("resnet_50_imagenet").source
'timm/resnet50.a1_in1k'
>>> get("resnet_50_imagenet").crop_fraction
0.95
>>> get("efficientnet_el_ra_imagenet").alias_of
'efficientnet_b1_ft_imagenet'
"""

from __future__ import annotations

import dataclasses

from tf_topk.models import figures

# The crop fraction of a preset whose source checkpoint is unknown.
DEFAULT_CROP_FRACTION = 0.875

# huggingface/pytorch-image-models results/results-imagenet.csv at commit
# 0173a139a2c66db3a41ebfe1d8ac4fb02483642e (columns model, top1, top5,
# img_size, crop_pct, interpolation; ILSVRC2012 validation, one centre
# crop, timm's validate.py).
TIMM_RESULTS = (
    "timm results/results-imagenet.csv (huggingface/pytorch-image-models "
    "commit 0173a139a2c66db3a41ebfe1d8ac4fb02483642e)"
)
# keras-hub tools/checkpoint_conversion/convert_{resnet,efficientnet,
# mobilenet,densenet,cspnet}_checkpoints.py, PRESET_MAP.
CONVERSION_SCRIPTS = "keras-team/keras-hub tools/checkpoint_conversion"


@dataclasses.dataclass(frozen=True)
class TimmConfig:
    """The evaluation fields of a timm checkpoint's pretrained config.

    Attributes:
        input_size: `input_size` (square side), the size timm trains at
            and the size of the KerasHub preset converted from it.
        crop_pct: `crop_pct`, the centre-crop fraction at `input_size`.
        interpolation: `interpolation` ("bilinear" or "bicubic").
        test_input_size: `test_input_size`, the size timm's results CSV
            measures at; None where the config has none.
        test_crop_pct: `test_crop_pct` at `test_input_size`; None where
            absent (timm then uses `crop_pct`).

    >>> TimmConfig(224, 0.95, "bicubic", 288, 1.0).crop_fraction_at(288)
    1.0
    """

    input_size: int
    crop_pct: float
    interpolation: str
    test_input_size: int | None = None
    test_crop_pct: float | None = None

    def crop_fraction_at(self, image_size: int) -> float:
        """timm's crop fraction for an evaluation at `image_size` px:
        `test_crop_pct` at `test_input_size`, `crop_pct` otherwise."""
        at_test_size = image_size == self.test_input_size
        if at_test_size and self.test_crop_pct is not None:
            return self.test_crop_pct
        return self.crop_pct


@dataclasses.dataclass(frozen=True)
class HubPreset:
    """One KerasHub classifier preset as the table knows it.

    Attributes:
        name: the KerasHub preset name, e.g. "resnet_50_imagenet".
        source: the timm checkpoint the weights were converted from, e.g.
            "timm/resnet50.a1_in1k"; None where not traceable.
        published: timm's figure for `source`, with its conditions (size,
            crop fraction, weights); None where timm's CSV has no row.
        alias_of: the preset whose weights file this one loads, for the
            presets KerasHub registers with another preset's Kaggle handle
            (their source and figure are those of the weights loaded).
        num_classes: outputs of the trained head (1000; 11,821 for the
            ImageNet-12k checkpoint).
        timm_config: the source's timm pretrained config; None where the
            source is unknown.

    >>> get("densenet_121_imagenet").crop_fraction
    0.875
    """

    name: str
    source: str | None = None
    published: figures.Published | None = None
    alias_of: str | None = None
    num_classes: int = 1000
    timm_config: TimmConfig | None = None

    @property
    def crop_fraction(self) -> float:
        """timm's crop_pct at the preset's size (timm's input size); 0.875
        when the source is unknown."""
        if self.timm_config is None:
            return DEFAULT_CROP_FRACTION
        return self.timm_config.crop_fraction_at(self.timm_config.input_size)

    def crop_fraction_at(self, image_size: int) -> float:
        """timm's crop fraction for an evaluation at `image_size` px (a
        preset saved at timm's test size takes `test_crop_pct`); 0.875
        when the source is unknown."""
        if self.timm_config is None:
            return DEFAULT_CROP_FRACTION
        return self.timm_config.crop_fraction_at(image_size)


def _timm(
    name: str,
    source: str,
    config: TimmConfig,
    row: tuple[float, float, int, float] | None,
    num_classes: int = 1000,
) -> HubPreset:
    """A preset converted from timm `source` with pretrained `config`;
    `row` is its CSV row as (top1 %, top5 %, img_size, crop_pct), None
    where the CSV has none."""
    if row is None:
        return HubPreset(
            name, source, num_classes=num_classes, timm_config=config
        )
    top1, top5, size, crop = row
    conditions = figures.Conditions(
        image_size=size, crop_fraction=crop, weights=source
    )
    published = figures.Published(
        round(top1 / 100, 5), round(top5 / 100, 5), TIMM_RESULTS, conditions
    )
    return HubPreset(
        name, source, published, num_classes=num_classes, timm_config=config
    )


# timm pretrained configs (huggingface/pytorch-image-models timm/models/):
# input size, crop_pct, interpolation, test size, test crop_pct.
# resnet.py @ 00c5be7656cd8aa102138d388c323a4f6181dde6: `_cfg` is 224 px,
# crop 0.875, bilinear; the a1_in1k entries use `_rcfg`: bicubic, crop
# 0.95, test 288 at 1.0.
_RCFG = TimmConfig(224, 0.95, "bicubic", 288, 1.0)
# resnetv2.py (the a1h_in1k entries; the index gives no commit for the
# version read): `_cfg` 224 px, crop 0.875, bilinear; resnetv2_50 and
# resnetv2_101 .a1h_in1k set bicubic, crop 0.95, test 288 at 1.0.
_RESNETV2_A1H = TimmConfig(224, 0.95, "bicubic", 288, 1.0)
# efficientnet.py @ cba23258aa2cc8b7d395b6bf96739c2ff84ccf13: `_cfg` is
# 224 px, crop 0.875, bicubic. efficientnet_b1.ft_in1k sets only
# test_input_size 256, test_crop_pct 1.0 (older timm had crop_pct=1.0
# there, applying to 224 too). efficientnet_b5.sw_in12k_ft_in1k is 448 px
# at crop 1.0 with crop_mode "squash" (resize without keeping the aspect
# ratio; the harness centre-crops instead).
# mobilenetv3.py @ 8bdeeeab7f9b97eb24fe569eec300cbd2cb6953a: `_cfg` is
# 224 px, crop 0.875, bilinear, 1000 classes; mobilenetv3_small_050 and
# _small_100 .lamb_in1k and mobilenetv3_large_100.ra_in1k set bicubic;
# mobilenetv3_large_100.miil_in21k_ft_in1k sets bilinear (and mean 0, std
# 1) and keeps `_cfg`'s 1000 classes (its in21k parent sets 11221).
# densenet.py @ 36d930ffc9437bfc7bd9a2e8b7111ef24bdbf49e: `_cfg` is
# 224 px, crop 0.875, bicubic; the tv_in1k entries keep it.
# cspnet.py @ ab7ca62a6eedc2dcf6e342f4ac01af41d19ca871: `_cfg` is 256 px,
# crop 0.887, bilinear; darknet53.c2ns_in1k bicubic, test 288 at 1.0.
_DENSENET_TV = TimmConfig(224, 0.875, "bicubic")
_CSPNET_RA = TimmConfig(256, 0.887, "bilinear")

# (preset, timm checkpoint, timm config, CSV row (top1, top5, img_size,
# crop_pct)). Every preset runs at its config's input size (module
# docstring); the ResNet, MobileNetV3, DenseNet and CSPNet presets' own
# descriptions in keras-hub 0.32.0 say 224 / 256 px too. The MobileNetV3
# sources: convert_mobilenet_checkpoints.py @ keras-team/keras-hub
# f807c5657bd87f4b50ccfc6988a52e6dd4731ca9 (PRESET_MAP, and the upload
# URIs in its docstring that name each Kaggle preset).
_TIMM_PRESETS = (
    (
        "resnet_18_imagenet",
        "timm/resnet18.a1_in1k",
        _RCFG,
        (73.158, 91.026, 288, 1.0),
    ),
    (
        "resnet_50_imagenet",
        "timm/resnet50.a1_in1k",
        _RCFG,
        (81.214, 95.102, 288, 1.0),
    ),
    (
        "resnet_101_imagenet",
        "timm/resnet101.a1_in1k",
        _RCFG,
        (82.322, 95.632, 288, 1.0),
    ),
    (
        "resnet_152_imagenet",
        "timm/resnet152.a1_in1k",
        _RCFG,
        (82.732, 95.720, 288, 1.0),
    ),
    (
        "resnet_v2_50_imagenet",
        "timm/resnetv2_50.a1h_in1k",
        _RESNETV2_A1H,
        (81.398, 95.726, 288, 1.0),
    ),
    (
        "resnet_v2_101_imagenet",
        "timm/resnetv2_101.a1h_in1k",
        _RESNETV2_A1H,
        (83.002, 96.454, 288, 1.0),
    ),
    (
        "efficientnet_b0_ra_imagenet",
        "timm/efficientnet_b0.ra_in1k",
        TimmConfig(224, 0.875, "bicubic"),
        (77.694, 93.532, 224, 0.875),
    ),
    (
        "efficientnet_b0_ra4_e3600_r224_imagenet",
        "timm/efficientnet_b0.ra4_e3600_r224_in1k",
        TimmConfig(224, 0.9, "bicubic", 256, 1.0),
        None,
    ),
    (
        "efficientnet_b1_ft_imagenet",
        "timm/efficientnet_b1.ft_in1k",
        TimmConfig(224, 0.875, "bicubic", 256, 1.0),
        (78.800, 94.342, 256, 1.0),
    ),
    (
        "efficientnet_b1_ra4_e3600_r240_imagenet",
        "timm/efficientnet_b1.ra4_e3600_r240_in1k",
        TimmConfig(240, 0.9, "bicubic", 288, 1.0),
        None,
    ),
    (
        "efficientnet_b2_ra_imagenet",
        "timm/efficientnet_b2.ra_in1k",
        TimmConfig(256, 0.875, "bicubic", 288, 1.0),
        (80.610, 95.314, 288, 1.0),
    ),
    (
        "efficientnet_b3_ra2_imagenet",
        "timm/efficientnet_b3.ra2_in1k",
        TimmConfig(288, 0.875, "bicubic", 320, 1.0),
        (82.242, 96.118, 320, 1.0),
    ),
    (
        "efficientnet_b4_ra2_imagenet",
        "timm/efficientnet_b4.ra2_in1k",
        TimmConfig(320, 0.875, "bicubic", 384, 1.0),
        (83.414, 96.598, 384, 1.0),
    ),
    (
        "efficientnet_b5_sw_ft_imagenet",
        "timm/efficientnet_b5.sw_in12k_ft_in1k",
        TimmConfig(448, 1.0, "bicubic"),
        (85.892, 97.736, 448, 1.0),
    ),
    (
        "mobilenet_v3_small_050_imagenet",
        "timm/mobilenetv3_small_050.lamb_in1k",
        TimmConfig(224, 0.875, "bicubic"),
        (57.910, 80.180, 224, 0.875),
    ),
    (
        "mobilenet_v3_small_100_imagenet",
        "timm/mobilenetv3_small_100.lamb_in1k",
        TimmConfig(224, 0.875, "bicubic"),
        (67.656, 87.636, 224, 0.875),
    ),
    (
        "mobilenet_v3_large_100_imagenet",
        "timm/mobilenetv3_large_100.ra_in1k",
        TimmConfig(224, 0.875, "bicubic"),
        (75.766, 92.538, 224, 0.875),
    ),
    # Despite its name, an ImageNet-1k head: the source is the in21k
    # model fine-tuned on 1k ("ft_in1k"); its timm config keeps 1000
    # classes, keras-hub's timm loader (src/utils/timm/preset_loader.py)
    # builds the head with the config's num_classes, and timm's CSV scores
    # it on ImageNet-1k. The loader checks the real output count anyway.
    (
        "mobilenet_v3_large_100_imagenet_21k",
        "timm/mobilenetv3_large_100.miil_in21k_ft_in1k",
        TimmConfig(224, 0.875, "bilinear"),
        (77.918, 92.914, 224, 0.875),
    ),
    (
        "densenet_121_imagenet",
        "timm/densenet121.tv_in1k",
        _DENSENET_TV,
        (74.764, 92.154, 224, 0.875),
    ),
    (
        "densenet_169_imagenet",
        "timm/densenet169.tv_in1k",
        _DENSENET_TV,
        (75.900, 93.028, 224, 0.875),
    ),
    (
        "densenet_201_imagenet",
        "timm/densenet201.tv_in1k",
        _DENSENET_TV,
        (77.286, 93.480, 224, 0.875),
    ),
    (
        "csp_darknet_53_ra_imagenet",
        "timm/cspdarknet53.ra_in1k",
        _CSPNET_RA,
        (80.062, 95.080, 256, 0.887),
    ),
    (
        "csp_resnext_50_ra_imagenet",
        "timm/cspresnext50.ra_in1k",
        _CSPNET_RA,
        (80.556, 95.322, 256, 0.887),
    ),
    (
        "csp_resnet_50_ra_imagenet",
        "timm/cspresnet50.ra_in1k",
        _CSPNET_RA,
        (79.590, 94.712, 256, 0.887),
    ),
    (
        "darknet_53_imagenet",
        "timm/darknet53.c2ns_in1k",
        TimmConfig(256, 0.887, "bicubic", 288, 1.0),
        (80.536, 95.434, 288, 1.0),
    ),
)

# Presets whose source checkpoint the conversion scripts do not name: no
# figure, crop 0.875. (ViT, DeiT and Swin come from the authors' Hugging
# Face checkpoints, HGNetV2 from PaddlePaddle's.)
_UNTRACED = (
    "resnet_vd_18_imagenet",
    "resnet_vd_34_imagenet",
    "resnet_vd_50_imagenet",
    "resnet_vd_50_ssld_imagenet",
    "resnet_vd_50_ssld_v2_imagenet",
    "resnet_vd_50_ssld_v2_fix_imagenet",
    "resnet_vd_101_imagenet",
    "resnet_vd_101_ssld_imagenet",
    "resnet_vd_152_imagenet",
    "resnet_vd_200_imagenet",
    "vgg_11_imagenet",
    "vgg_13_imagenet",
    "vgg_16_imagenet",
    "vgg_19_imagenet",
    "xception_41_imagenet",
    "efficientnet_lite0_ra_imagenet",
    "efficientnet2_rw_m_agc_imagenet",
    "efficientnet2_rw_s_ra2_imagenet",
    "efficientnet2_rw_t_ra2_imagenet",
    "hgnetv2_b4_ssld_stage2_ft_in1k",
    "hgnetv2_b5_ssld_stage1_in22k_in1k",
    "hgnetv2_b5_ssld_stage2_ft_in1k",
    "hgnetv2_b6_ssld_stage1_in22k_in1k",
    "hgnetv2_b6_ssld_stage2_ft_in1k",
    "vit_base_patch16_224_imagenet",
    "vit_base_patch16_384_imagenet",
    "vit_large_patch16_224_imagenet",
    "vit_large_patch16_384_imagenet",
    "vit_base_patch32_384_imagenet",
    "vit_large_patch32_384_imagenet",
    "deit_base_distilled_patch16_384_imagenet",
    "deit_base_distilled_patch16_224_imagenet",
    "deit_tiny_distilled_patch16_224_imagenet",
    "deit_small_distilled_patch16_224_imagenet",
    "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224",
    "swin_base_patch4_window7_224",
    "swin_base_patch4_window12_384",
    "swin_large_patch4_window7_224",
    "swin_large_patch4_window12_384",
)

# keras-hub 0.32.0 registers these three EdgeTPU presets with the Kaggle
# handle of efficientnet_b1_ft_imagenet: they load its weights.
_ALIASES = {
    "efficientnet_el_ra_imagenet": "efficientnet_b1_ft_imagenet",
    "efficientnet_em_ra2_imagenet": "efficientnet_b1_ft_imagenet",
    "efficientnet_es_ra_imagenet": "efficientnet_b1_ft_imagenet",
}


def _table() -> dict[str, HubPreset]:
    table = {
        name: _timm(name, source, config, row)
        for name, source, config, row in _TIMM_PRESETS
    }
    table.update((name, HubPreset(name)) for name in _UNTRACED)
    # ImageNet-12k head (11,821 outputs): no ImageNet-1k figure.
    # efficientnet.py: efficientnet_b5.sw_in12k is 416 px at crop 0.95.
    table["efficientnet_b5_sw_imagenet"] = _timm(
        "efficientnet_b5_sw_imagenet",
        "timm/efficientnet_b5.sw_in12k",
        TimmConfig(416, 0.95, "bicubic"),
        None,
        num_classes=11821,
    )
    for alias, target in _ALIASES.items():
        table[alias] = dataclasses.replace(
            table[target], name=alias, alias_of=target
        )
    return table


PRESETS = _table()


def names() -> list[str]:
    """The known presets, one per weights file (aliases left out)."""
    return sorted(n for n, p in PRESETS.items() if p.alias_of is None)


def aliases() -> dict[str, str]:
    """{alias: the preset whose weights it loads}."""
    return dict(_ALIASES)


def get(name: str) -> HubPreset | None:
    """The table's entry for preset `name`; None for another name."""
    return PRESETS.get(name)
