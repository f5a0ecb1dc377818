r"""ImageNet-C: one model on every (corruption, severity) cell, with mCE.

`--config.data.path=ROOT` is the release as extracted:
`ROOT/<corruption>/<severity>/<synset>/<image>.JPEG`, the corruptions
possibly below the group folders noise/, blur/, weather/, digital/,
extra/. The images are already 224 x 224 centre crops: they are fed as
they are (crop_fraction 1.0, crop_then_resize: a plain resize only when
the model's input size differs), and results.json's preprocessing record
says so. The model is built once; each cell is a run of the bulk
machinery under <workdir>/<corruption>/<severity>/ (a failed cell is
recorded, an interrupted command resumes). <workdir>/robustness.json
holds the cells, each corruption's CE (against AlexNet's published
errors, Hendrycks & Dietterich 2019), the mCE of the 15 benchmark
corruptions present, and the relative mCE given a clean run's workdir.

  tf-topk --config=configs/imagenet_c.py:resnet50 \
    --config.data.path=/data/imagenet-c \
    --config.robustness.clean_results=/tmp/resnet50 --workdir=/tmp/resnet50_c

Presets are those of configs/imagenet.py (one model per command; "+"
joins an ensemble); override the model as in a single run
(--config.model.alpha=0.75 --config.model.weights=...). Expect about
76.7% mCE for ResNet-50 (Hendrycks & Dietterich 2019, Table 1).
"""

from tf_topk.cli import robustness_presets


def get_config(arg=None):
    """The ImageNet-C config of preset `arg` ("resnet50")."""
    return robustness_presets.imagenet_c(arg)
