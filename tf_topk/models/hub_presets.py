"""KerasHub image-classifier presets: their source checkpoints and figures.

KerasHub converted most of its ImageNet classifiers from timm checkpoints
and checked them against timm on single images only; nobody publishes
their ImageNet accuracy. This table keeps, per preset, the timm checkpoint
its weights came from (the `PRESET_MAP` of keras-hub's
tools/checkpoint_conversion/convert_<family>_checkpoints.py) and, where
timm's results CSV has a row for that checkpoint, timm's published
top-1 / top-5 with the size, crop and interpolation they were measured at.
A preset without a traceable source has no figure, and the harness crops
it at 0.875 (`DEFAULT_CROP_FRACTION`).

Data only: reading it never imports keras_hub.

>>> get("resnet_50_imagenet").source
'timm/resnet50.a1_in1k'
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
            ImageNet-12k checkpoint, 21,843 for ImageNet-21k).

    >>> get("densenet_121_imagenet").crop_fraction
    0.875
    """

    name: str
    source: str | None = None
    published: figures.Published | None = None
    alias_of: str | None = None
    num_classes: int = 1000

    @property
    def crop_fraction(self) -> float:
        """timm's crop_pct of the source's figure; 0.875 when unknown."""
        if self.published is None or self.published.conditions is None:
            return DEFAULT_CROP_FRACTION
        return self.published.conditions.crop_fraction or DEFAULT_CROP_FRACTION


def _timm(
    name: str, source: str, row: tuple[float, float, int, float] | None
) -> HubPreset:
    """A preset converted from timm `source`; `row` is its CSV row as
    (top1 %, top5 %, img_size, crop_pct), None where the CSV has none."""
    if row is None:
        return HubPreset(name, source)
    top1, top5, size, crop = row
    conditions = figures.Conditions(
        image_size=size, crop_fraction=crop, weights=source
    )
    published = figures.Published(
        round(top1 / 100, 5), round(top5 / 100, 5), TIMM_RESULTS, conditions
    )
    return HubPreset(name, source, published)


# (preset, timm checkpoint, CSV row (top1, top5, img_size, crop_pct)).
_TIMM_PRESETS = (
    ("resnet_18_imagenet", "timm/resnet18.a1_in1k", (73.158, 91.026, 288, 1.0)),
    ("resnet_50_imagenet", "timm/resnet50.a1_in1k", (81.214, 95.102, 288, 1.0)),
    (
        "resnet_101_imagenet",
        "timm/resnet101.a1_in1k",
        (82.322, 95.632, 288, 1.0),
    ),
    (
        "resnet_152_imagenet",
        "timm/resnet152.a1_in1k",
        (82.732, 95.720, 288, 1.0),
    ),
    (
        "resnet_v2_50_imagenet",
        "timm/resnetv2_50.a1h_in1k",
        (81.398, 95.726, 288, 1.0),
    ),
    (
        "resnet_v2_101_imagenet",
        "timm/resnetv2_101.a1h_in1k",
        (83.002, 96.454, 288, 1.0),
    ),
    (
        "efficientnet_b0_ra_imagenet",
        "timm/efficientnet_b0.ra_in1k",
        (77.694, 93.532, 224, 0.875),
    ),
    (
        "efficientnet_b0_ra4_e3600_r224_imagenet",
        "timm/efficientnet_b0.ra4_e3600_r224_in1k",
        None,
    ),
    (
        "efficientnet_b1_ft_imagenet",
        "timm/efficientnet_b1.ft_in1k",
        (78.800, 94.342, 256, 1.0),
    ),
    (
        "efficientnet_b1_ra4_e3600_r240_imagenet",
        "timm/efficientnet_b1.ra4_e3600_r240_in1k",
        None,
    ),
    (
        "efficientnet_b2_ra_imagenet",
        "timm/efficientnet_b2.ra_in1k",
        (80.610, 95.314, 288, 1.0),
    ),
    (
        "efficientnet_b3_ra2_imagenet",
        "timm/efficientnet_b3.ra2_in1k",
        (82.242, 96.118, 320, 1.0),
    ),
    (
        "efficientnet_b4_ra2_imagenet",
        "timm/efficientnet_b4.ra2_in1k",
        (83.414, 96.598, 384, 1.0),
    ),
    (
        "efficientnet_b5_sw_ft_imagenet",
        "timm/efficientnet_b5.sw_in12k_ft_in1k",
        (85.892, 97.736, 448, 1.0),
    ),
    (
        "mobilenet_v3_small_050_imagenet",
        "timm/mobilenetv3_small_050.lamb_in1k",
        (57.910, 80.180, 224, 0.875),
    ),
    (
        "densenet_121_imagenet",
        "timm/densenet121.tv_in1k",
        (74.764, 92.154, 224, 0.875),
    ),
    (
        "densenet_169_imagenet",
        "timm/densenet169.tv_in1k",
        (75.900, 93.028, 224, 0.875),
    ),
    (
        "densenet_201_imagenet",
        "timm/densenet201.tv_in1k",
        (77.286, 93.480, 224, 0.875),
    ),
    (
        "csp_darknet_53_ra_imagenet",
        "timm/cspdarknet53.ra_in1k",
        (80.062, 95.080, 256, 0.887),
    ),
    (
        "csp_resnext_50_ra_imagenet",
        "timm/cspresnext50.ra_in1k",
        (80.556, 95.322, 256, 0.887),
    ),
    (
        "csp_resnet_50_ra_imagenet",
        "timm/cspresnet50.ra_in1k",
        (79.590, 94.712, 256, 0.887),
    ),
    (
        "darknet_53_imagenet",
        "timm/darknet53.c2ns_in1k",
        (80.536, 95.434, 288, 1.0),
    ),
)

# Presets whose source checkpoint the conversion scripts do not name: no
# figure, crop 0.875. (ViT, DeiT and Swin come from the authors' Hugging
# Face checkpoints, HGNetV2 from PaddlePaddle's.)
_UNTRACED = (
    "mobilenet_v3_small_100_imagenet",
    "mobilenet_v3_large_100_imagenet",
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
        name: _timm(name, source, row) for name, source, row in _TIMM_PRESETS
    }
    table.update((name, HubPreset(name)) for name in _UNTRACED)
    # ImageNet-12k head (11,821 outputs): no ImageNet-1k figure.
    table["efficientnet_b5_sw_imagenet"] = HubPreset(
        "efficientnet_b5_sw_imagenet",
        "timm/efficientnet_b5.sw_in12k",
        num_classes=11821,
    )
    table["mobilenet_v3_large_100_imagenet_21k"] = HubPreset(
        "mobilenet_v3_large_100_imagenet_21k", num_classes=21843
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
