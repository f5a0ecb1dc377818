"""Loads configs/imagenet.py by path, so the other config files can reuse it.

Config files are read by path (`--config=configs/x.py:preset`), not imported
as a package, hence the explicit load.
"""

import importlib.util
import os


def imagenet_module():
    path = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "imagenet.py"
    )
    spec = importlib.util.spec_from_file_location(
        "tf_topk_configs_imagenet", path
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tfds_variant(
    arg: str | None, *, name: str, split: str, class_subset: str | None = None
):
    """configs/imagenet.py's preset `arg` on another tfds evaluation set.

    Args:
        arg: the preset (a registry model, "+" joins an ensemble).
        name: the tfds dataset, e.g. "imagenet_v2/matched-frequency".
        split: its split.
        class_subset: set on every model section, e.g. "labels_in_data"
            (score on the classes the data holds, as for ImageNet-A / R).

    Returns:
        The locked config.
    """
    config = imagenet_module().get_config(arg)
    config.data.source = "tfds"
    config.data.name = name
    config.data.split = split
    # Published ILSVRC2012 figures do not apply to another set.
    config.eval.shortfall_tolerance = 1.0
    if class_subset is not None:
        sections = config.members.values() if config.members else [config.model]
        for section in sections:
            section.class_subset = class_subset
    return config
