"""Config builders shared by the files under `configs/`.

Config files are read by path (`--config=configs/x.py:preset`), so the code
they share lives here, importable (as big_vision's configs import
`big_vision.configs.common`). Each builder returns a locked `ConfigDict`
with the sections `model`, `members`, `data`, `preprocess`, `eval` and the
run-level fields; `tf_topk.main.run` is the only reader of a whole config.
"""

from ml_collections import config_dict

from tf_topk import models


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


def imagenet(arg: str | None = None) -> config_dict.ConfigDict:
    """The ILSVRC2012 config of preset `arg` ("resnet50", "a+b" ensembles)."""
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
        # `model` section only names the run, so a model-level override
        # (--config.model.alpha) is refused as an unknown field instead of
        # being silently ignored: set it per member.
        config.model = config_dict.ConfigDict({"name": "+".join(names)})
        config.members = config_dict.ConfigDict()
        for index, name in enumerate(names):
            member = model_section(name)
            member.weights = "imagenet"
            config.members[f"member{index}"] = member
    # Relative ensemble weights, comma-separated ("2,1"); None = equal.
    config.ensemble_weights = config_dict.placeholder(str)

    config.data = data_section()
    config.preprocess = preprocess_section()
    config.eval = eval_section()
    # "none" | "mirrored" | "multi_worker" | "tpu".
    config.distribution = "none"
    config.lock()
    return config


def data_section() -> config_dict.ConfigDict:
    """The `data` section: ILSVRC2012 validation through tfds by default."""
    return config_dict.ConfigDict(
        {
            # One of tf_topk.datasets.SOURCES.
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
            # tfrecord / tfds: the image and label features; None = the
            # source's default (image/encoded, image/class/label; tfds' own
            # supervised keys).
            "image_key": config_dict.placeholder(str),
            "label_key": config_dict.placeholder(str),
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


def preprocess_section() -> config_dict.ConfigDict:
    """The `preprocess` section: overrides of the model spec's values."""
    return config_dict.ConfigDict(
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


def eval_section() -> config_dict.ConfigDict:
    """The `eval` section: what the loop counts and reports."""
    return config_dict.ConfigDict(
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
            # Save the counts and the input position under
            # <workdir>/checkpoint every this many examples (and on SIGTERM
            # / SIGINT); 0 saves only on a signal. Cheap: the state is the
            # metric counters.
            "checkpoint_every_n_examples": 5000,
            # Resume from <workdir>/checkpoint when it holds this run's
            # state; False starts afresh (and replaces it).
            "resume": True,
            # Write every example's id, labels, top-10 classes and scores
            # under <workdir>/predictions/ (for `tf-topk compare` and
            # `tf-topk report`).
            "save_predictions": False,
        }
    )


def tfds_variant(
    arg: str | None, *, name: str, split: str, class_subset: str | None = None
) -> config_dict.ConfigDict:
    """`imagenet(arg)` on another tfds evaluation set.

    Args:
        arg: the preset (a registry model, "+" joins an ensemble).
        name: the tfds dataset, e.g. "imagenet_v2/matched-frequency".
        split: its split.
        class_subset: set on every model section, e.g. "labels_in_data"
            (score on the classes the data holds, as for ImageNet-A / R).

    Returns:
        The locked config.
    """
    config = imagenet(arg)
    config.data.source = "tfds"
    config.data.name = name
    config.data.split = split
    # Published ILSVRC2012 figures do not apply to another set.
    config.eval.shortfall_tolerance = 1.0
    if class_subset is not None:
        for section in model_sections(config).values():
            section.class_subset = class_subset
    return config


def model_sections(config: config_dict.ConfigDict) -> dict:
    """{config path: section} of the models a config evaluates."""
    if config.members:
        return {f"config.members.{k}": v for k, v in config.members.items()}
    return {"config.model": config.model}
