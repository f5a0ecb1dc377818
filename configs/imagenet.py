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

Expected numbers: each preset's published top-1 / top-5 (Keras Applications
table; TF-slim tables for MobileNet / MobileNetV2 at every width and
resolution) are compared with the result at the end of the run, e.g.
resnet50 74.9 / 92.1, mobilenet (alpha 1.0) 70.9 / 89.9, mobilenet_v2
71.3 / 90.1, efficientnet_b0 77.1 / 93.3.
"""

from ml_collections import config_dict

DATA_SOURCES = ("files", "folder", "tfds", "tfrecord")


def model_section(name: str) -> config_dict.ConfigDict:
    """The `model` section for one registry model (also an ensemble member)."""
    return config_dict.ConfigDict(
        {
            "name": name,
            # "imagenet" (Keras cache / download), a path to a .h5,
            # .weights.h5, .keras or SavedModel, "package.module:factory",
            # or None for random weights.
            "weights": config_dict.placeholder(str),
            # Width multiplier (MobileNet family); None = Keras' default.
            "alpha": config_dict.placeholder(float),
            # Square input size; None = the spec's.
            "image_size": config_dict.placeholder(int),
            # "tf" | "caffe" | "torch" | "none"; None = the spec's.
            "preprocess_mode": config_dict.placeholder(str),
            # "softmax" | "logits"; None = the spec's.
            "output": config_dict.placeholder(str),
            # True for 1001-output checkpoints (index 0 = background).
            "has_background_class": False,
            # Comma-separated class indices / synsets, a file of them (one a
            # line), or "labels_in_data" (the classes the data holds, as for
            # ImageNet-A / ImageNet-R); None = all classes.
            "class_subset": config_dict.placeholder(str),
        }
    )


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
    """The config of preset `arg` ("resnet50", "mobilenet+mobilenet_v2")."""
    from tf_topk import models  # Lazy: keeps `--helpfull` light.

    valid = models.names()
    if not arg:
        raise ValueError(
            "configs/imagenet.py needs a preset, e.g. "
            f"--config=configs/imagenet.py:resnet50. Valid presets: {valid} "
            "(join with '+' for an ensemble)."
        )
    names = [part.strip().lower() for part in arg.split("+")]
    for name in names:
        if name not in valid:
            raise ValueError(
                f"Unknown preset {name!r} in configs/imagenet.py:{arg}. Valid "
                f"presets: {valid} (join with '+' for an ensemble)."
            )

    config = config_dict.ConfigDict()
    config.preset = arg
    if len(names) == 1:
        config.model = model_section(names[0])
        config.model.weights = "imagenet"
        config.members = config_dict.ConfigDict()
    else:
        # Ensembles: one section per member, member0, member1, ...; the
        # `model` section stays for naming only.
        config.model = model_section("+".join(names))
        config.members = config_dict.ConfigDict()
        for index, name in enumerate(names):
            member = model_section(name)
            member.weights = "imagenet"
            config.members[f"member{index}"] = member
    # Relative ensemble weights, comma-separated ("2,1"); None = equal.
    config.ensemble_weights = config_dict.placeholder(str)

    config.data = config_dict.ConfigDict(
        {
            # One of DATA_SOURCES.
            "source": "tfds",
            # tfds: dataset name, split and data_dir (None = tfds default).
            "name": "imagenet2012",
            "split": "validation",
            "data_dir": config_dict.placeholder(str),
            # tfds: download and prepare the dataset when it is not prepared
            # yet (ImageNetV2 downloads itself; imagenet2012 needs
            # `manual_dir` holding ILSVRC2012_img_val.tar).
            "download": True,
            "manual_dir": config_dict.placeholder(str),
            # files / folder / tfrecord: the folder or glob of the data.
            "path": config_dict.placeholder(str),
            # files: the ground truth (ILSVRC line-per-image or a TSV).
            "labels_file": config_dict.placeholder(str),
            # Subtracted from stored labels; None = the source's default
            # (1 for tfrecord, 0 otherwise).
            "label_offset": config_dict.placeholder(int),
            "num_classes": 1000,
            # Skip (and list) unreadable images instead of stopping.
            "skip_corrupt": False,
            "batch_size": 64,
            # 1 (centre crop) or 10 (corners + centre, and their mirrors).
            "num_crops": 1,
        }
    )
    config.preprocess = config_dict.ConfigDict(
        {
            # None = the model spec's value.
            "crop_fraction": config_dict.placeholder(float),
            "interpolation": config_dict.placeholder(str),
            # Antialiased resize (the Keras / timm reference path).
            "antialias": True,
            # "resize_then_crop" (Keras / timm) or "crop_then_resize"
            # (Model Garden).
            "crop_mode": "resize_then_crop",
        }
    )
    config.eval = config_dict.ConfigDict(
        {
            "ks": (1, 5),
            # "inclusive" (tf.math.in_top_k) or "exclusive".
            "ties": "inclusive",
            "jit_compile": False,
            # "auto" | "bar" | "log" | "none".
            "progress": "auto",
            "log_every_n_examples": 12800,
            # Published fractions to compare with; None = the spec's.
            "published_top1": config_dict.placeholder(float),
            "published_top5": config_dict.placeholder(float),
            # Shortfall (fraction) past which likely causes are diagnosed,
            # when the published top-1 is also above the 95% interval.
            "shortfall_tolerance": 0.02,
        }
    )
    # "none" | "mirrored" | "multi_worker" | "tpu".
    config.distribution = "none"
    config.lock()
    return config
