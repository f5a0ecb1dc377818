r"""ImageNet-R: 30,000 renditions (art, cartoons, ...) of 200 ImageNet classes.

Scored on the 200 classes only (class_subset=labels_in_data). tfds
downloads it itself. Expect about 36% top-1 for resnet50 (Hendrycks et
al. 2021, 63.9% error).

  tf-topk --config=configs/imagenet_r.py:resnet50 --workdir=/tmp/imagenet_r

Presets are those of configs/imagenet.py (any registry model, "+" joins an
ensemble); every field can be overridden as there.
"""

from tf_topk.cli import presets


def get_config(arg=None):
    return presets.tfds_variant(
        arg, name="imagenet_r", split="test", class_subset="labels_in_data"
    )
