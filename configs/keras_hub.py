r"""ImageNet (ILSVRC2012 validation) top-1 / top-5 of a KerasHub preset.

One preset per KerasHub image classifier that tf_topk knows
(`tf_topk.models.hub_presets.names()`; aliases too), named as KerasHub
names it; "+" joins an ensemble, "," separates runs. Needs keras-hub:
pip install -e ".[hub]".

By default the harness applies its standard single crop at the preset's
image size (shorter side to size / crop fraction, centre crop,
antialiased resize) with the converter's interpolation and scale / offset;
the crop fraction is timm's crop_pct of the source checkpoint (0.875 when
unknown). KerasHub's own predict (largest centred square, no antialias):

  --config.preprocess.crop_fraction=1.0 \
  --config.preprocess.crop_mode=crop_then_resize \
  --config.preprocess.antialias=False

Offline: save the preset on a machine with network
(keras_hub.models.ImageClassifier.from_preset(name).save_to_preset(dir)),
copy the directory and pass it:

  tf-topk --config=configs/keras_hub.py:resnet_50_imagenet \
    --config.model.preset=/presets/resnet_50_imagenet \
    --config.data.source=folder --config.data.path=/data/val_by_synset \
    --workdir=/tmp/hub_resnet50

Expected numbers: nobody publishes the presets' own accuracy; for the
presets converted from timm, timm's figure for the source checkpoint
(tf_topk/models/hub_presets.py, with the size and crop it was measured at),
e.g. resnet_50_imagenet 81.2 / 95.1 (timm/resnet50.a1_in1k at 288 px,
crop 1.0), efficientnet_b0_ra_imagenet 77.7 / 93.5 (224 px, crop 0.875).
"""

from tf_topk.cli import presets


def get_config(arg=None):
    """The config of preset `arg` ("resnet_50_imagenet",
    "resnet_18_imagenet+densenet_121_imagenet", "a,b")."""
    return presets.keras_hub(arg)
