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
