r"""ImageNet-A: 7,500 natural adversarial images of 200 ImageNet classes.

Scored on the 200 classes only: the other logits are masked
(class_subset=labels_in_data, found by one pass over the labels). tfds
downloads it itself. Expect very low numbers for Keras Applications, e.g.
resnet50 near 0-2% top-1 (Hendrycks et al. 2021).

  tf-topk --config=configs/imagenet_a.py:resnet50 --workdir=/tmp/imagenet_a

Presets are those of configs/imagenet.py (any registry model, "+" joins an
ensemble); every field can be overridden as there.
"""

from tf_topk.cli import presets


def get_config(arg=None):
    return presets.tfds_variant(
        arg, name="imagenet_a", split="test", class_subset="labels_in_data"
    )
