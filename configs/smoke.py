r"""A tiny synthetic run for tests and for checking an installation.

The oracle model (`tf_topk.testing.oracle_model`) predicts the class painted
into an image, so on data written by `tf_topk.testing` the exact accuracy is
known (e.g. 7 of 10). Nothing is downloaded.

  tf-topk --config=configs/smoke.py --config.data.path=/tmp/smoke_images \
    --workdir=/tmp/smoke

`configs/smoke.py:N` makes a bulk run of N oracle runs (`config.runs.run0`
... `run<N-1>`), each overridable, written with a leaderboard:

  tf-topk --config=configs/smoke.py:2 --config.data.path=/tmp/smoke_images \
    --config.runs.run1.image_size=16 --workdir=/tmp/smoke_bulk
"""

from ml_collections import config_dict

from tf_topk.cli import presets


def get_config(arg=None):
    num_runs = _num_runs(arg)
    config = presets.imagenet("mobilenet")
    with config.unlocked():
        config.preset = "smoke" if arg is None else f"smoke:{arg}"
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
    if num_runs:
        config = presets.as_bulk(config, [config.model] * num_runs)
    return config


def _num_runs(arg) -> int:
    """0 for one run, else the number of bulk runs `arg` asks for."""
    if arg is None:
        return 0
    if not str(arg).isdigit() or int(arg) < 1:
        raise ValueError(
            f"configs/smoke.py takes no preset, or a number of runs. "
            f"Received: {arg!r}; use --config=configs/smoke.py or "
            "--config=configs/smoke.py:2"
        )
    return int(arg)
