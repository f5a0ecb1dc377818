r"""ImageNet (ILSVRC2012 validation) top-1 / top-5 of a Keras Application.

One preset per model of the registry (`tf_topk.models.names()`), named by the
registry key; join keys with "+" for an ensemble whose softmax outputs are
averaged. Input size, preprocess_input mode, crop fraction and interpolation
come from the model's spec unless a field here overrides them.

Run (ILSVRC2012 prepared once by tfds, see README):

  tf-topk --config=configs/imagenet.py:resnet50 --workdir=/tmp/resnet50

Local data instead of tfds:

  tf-topk --config=configs/imagenet.py:mobilenet \
    --config.model.alpha=0.75 \
    --config.model.weights=/path/mobilenet_0.75_224.weights.h5 \
    --config.data.source=files --config.data.path=/data/val \
    --config.data.labels_file=/data/validation_labels.txt \
    --workdir=/tmp/mobilenet_075

Several models on the same data, one run each, a leaderboard in the
workdir (a comma separates runs; a preset may repeat; override a run as
--config.runs.run<i>.<field>):

  tf-topk --config=configs/imagenet.py:mobilenet,resnet50,efficientnet_b0 \
    --workdir=/tmp/bulk

Expected numbers: each preset's published top-1 / top-5 (Keras Applications
table; TF-slim tables for MobileNet / MobileNetV2 at every width and
resolution) are compared with the result at the end of the run, e.g.
resnet50 74.9 / 92.1, mobilenet (alpha 1.0) 70.9 / 89.9, mobilenet_v2
71.3 / 90.1, efficientnet_b0 77.1 / 93.3.
"""

from tf_topk.cli import presets


def get_config(arg=None):
    """The config of preset `arg` ("resnet50", "mobilenet+mobilenet_v2",
    "mobilenet,resnet50")."""
    return presets.imagenet(arg)
