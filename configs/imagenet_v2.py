r"""ImageNetV2 (matched-frequency), 10,000 new test images.

tfds downloads it itself (about 1.2 GB), so this runs end to end on a
machine with internet. Expect 8-12 points below ILSVRC2012 (Recht et al.
2019), e.g. resnet50 about 63 / 84.

  tf-topk --config=configs/imagenet_v2.py:resnet50 --workdir=/tmp/v2

Presets are those of configs/imagenet.py (any registry model, "+" joins an
ensemble); every field can be overridden as there.
"""

from tf_topk.cli import presets


def get_config(arg=None):
    return presets.tfds_variant(
        arg, name="imagenet_v2/matched-frequency", split="test"
    )
