r"""A tiny synthetic run for tests and for checking an installation.

The oracle model (`tf_topk.testing.oracle_model`) predicts the class painted
into an image, so on data written by `tf_topk.testing` the exact accuracy is
known (e.g. 7 of 10). Nothing is downloaded.

  tf-topk --config=configs/smoke.py --config.data.path=/tmp/smoke_images \
    --workdir=/tmp/smoke
"""

from ml_collections import config_dict

from tf_topk import presets


def get_config(arg=None):
    if arg:
        raise ValueError(
            f"configs/smoke.py has no presets. Received: {arg!r}; use "
            "--config=configs/smoke.py"
        )
    config = presets.imagenet("mobilenet")
    with config.unlocked():
        config.preset = "smoke"
        config.model.name = "oracle"
        config.model.weights = "tf_topk.testing:oracle_model"
        config.model.kwargs = config_dict.ConfigDict({"num_classes": 5})
        config.model.preprocess_mode = "none"
        config.model.output = "logits"
        config.model.image_size = 32
    config.data.source = "folder"
    config.data.num_classes = 5
    config.data.batch_size = 4
    config.eval.ks = (1, 3, 5)
    config.eval.progress = "none"
    return config
