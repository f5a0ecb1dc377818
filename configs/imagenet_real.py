r"""ImageNet-ReaL: the ILSVRC2012 validation images with the reassessed
multi-label ground truth (Beyer et al. 2020).

An example is correct when any of its true labels is in the top k; the
examples with no label (3,163 of 50,000) are left out. tfds prepares it from
the same manually placed ILSVRC2012_img_val.tar as imagenet2012. Expect a
few points above the original labels, e.g. resnet50 about 82 top-1.

  tf-topk --config=configs/imagenet_real.py:resnet50 --workdir=/tmp/real

Presets are those of configs/imagenet.py (any registry model, "+" joins an
ensemble); every field can be overridden as there.
"""

from tf_topk.cli import presets


def get_config(arg=None):
    return presets.tfds_variant(
        arg, name="imagenet2012_real", split="validation"
    )
