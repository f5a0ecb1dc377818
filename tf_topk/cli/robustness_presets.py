"""Config builders of the robustness commands (configs/imagenet_c.py and
configs/robustness.py).

Each builds on `tf_topk.cli.presets.imagenet` (one model per command, "+"
joins an ensemble) and adds the `robustness` section read by
`tf_topk.cli.robustness`: ImageNet-C's cells under `config.data.path`, or
the suite's datasets, each through its tfds builder or a local copy.
"""

from ml_collections import config_dict

from tf_topk.cli import presets

# results.json's preprocessing `protocol` of an ImageNet-C cell.
IMAGENET_C_PROTOCOL = (
    "imagenet_c_as_released: the released 224x224 centre crops are fed as "
    "they are (crop_fraction 1.0, no second resize-and-crop); resized "
    "without a crop only when the model's input size differs"
)
# The suite's datasets: {name: (tfds name, split, class subset)}.
SUITE_DATASETS = {
    "clean": ("imagenet2012", "validation", None),
    "v2": ("imagenet_v2/matched-frequency", "test", None),
    "real": ("imagenet2012_real", "validation", None),
    "sketch": ("imagenet_sketch", "test", None),
    "a": ("imagenet_a", "test", "labels_in_data"),
    "r": ("imagenet_r", "test", "labels_in_data"),
}


def robustness_section(kind: str) -> config_dict.ConfigDict:
    """The `robustness` section of configs/imagenet_c.py and
    configs/robustness.py (read by `tf_topk.cli.robustness`)."""
    section = config_dict.ConfigDict(
        {
            # "imagenet_c" (the cells under config.data.path) or "suite".
            "kind": kind,
            # A clean run's workdir: its top-1 gives the relative mCE
            # (the suite's own clean run does when it has one).
            "clean_results": config_dict.placeholder(str),
            # The suite: an ImageNet-C ROOT to evaluate as well; None:
            # none. (configs/imagenet_c.py reads config.data.path.)
            "imagenet_c": config_dict.placeholder(str),
        }
    )
    if kind == "suite":
        section.datasets = config_dict.ConfigDict(
            {
                name: _suite_dataset(*entry)
                for name, entry in SUITE_DATASETS.items()
            }
        )
    return section


def _suite_dataset(name: str, split: str, subset) -> config_dict.ConfigDict:
    """One dataset of the suite: tfds, or a local copy."""
    section = config_dict.ConfigDict(
        {
            # False leaves the dataset out of the suite.
            "enabled": True,
            # None: "folder" when `path` is set, else "tfds".
            "source": config_dict.placeholder(str),
            "name": name,
            "split": split,
            # tfds' data folder holding the prepared dataset (offline).
            "data_dir": config_dict.placeholder(str),
            # A local copy: a folder of synset folders (or files /
            # tfrecord with `source`).
            "path": config_dict.placeholder(str),
            "labels_file": config_dict.placeholder(str),
            # "labels_in_data" scores on the classes the data holds (A, R)
            # and adds the clean run restricted to them ("<name>_clean200").
            "class_subset": config_dict.placeholder(str),
        }
    )
    section.class_subset = subset
    return section


def as_released(config: config_dict.ConfigDict) -> None:
    """Sets ImageNet-C's input protocol on a config whose `preprocess` has
    a `protocol` field: the released crops fed as they are."""
    config.preprocess.crop_fraction = 1.0
    config.preprocess.crop_mode = "crop_then_resize"
    config.preprocess.protocol = IMAGENET_C_PROTOCOL


def _one_model(arg: str | None, file: str) -> config_dict.ConfigDict:
    """`presets.imagenet(arg)`, refusing several runs: a robustness
    command evaluates one model (configs/<file>)."""
    if arg and "," in arg:
        raise ValueError(
            f"configs/{file} evaluates one model per command (a "
            "registry model, '+' joins an ensemble). Received: "
            f"{arg!r}; run one command per model."
        )
    config = presets.imagenet(arg)
    with config.unlocked():
        config.preprocess.protocol = config_dict.placeholder(str)
    return config


def imagenet_c(arg: str | None = None) -> config_dict.ConfigDict:
    """configs/imagenet_c.py: one model on every ImageNet-C cell."""
    config = _one_model(arg, "imagenet_c.py")
    config.data.source = "folder"
    as_released(config)
    # Published ILSVRC2012 figures do not apply to corrupted images.
    config.eval.shortfall_tolerance = 1.0
    with config.unlocked():
        config.robustness = robustness_section("imagenet_c")
    config.lock()
    return config


def robustness(arg: str | None = None) -> config_dict.ConfigDict:
    """configs/robustness.py: one model on the robustness suite (the
    ImageNet-C cells, if any, get `as_released`)."""
    config = _one_model(arg, "robustness.py")
    with config.unlocked():
        config.robustness = robustness_section("suite")
    config.lock()
    return config
