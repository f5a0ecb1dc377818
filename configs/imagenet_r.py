r"""ImageNet-R: 30,000 renditions (art, cartoons, ...) of 200 ImageNet classes.

Scored on the 200 classes only (class_subset=labels_in_data). tfds
downloads it itself. Expect about 36% top-1 for resnet50 (Hendrycks et
al. 2021, 63.9% error).

  tf-topk --config=configs/imagenet_r.py:resnet50 --workdir=/tmp/imagenet_r

Presets are those of configs/imagenet.py (any registry model, "+" joins an
ensemble); every field can be overridden as there.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _base  # noqa: E402


def get_config(arg=None):
    return _base.tfds_variant(
        arg, name="imagenet_r", split="test", class_subset="labels_in_data"
    )
