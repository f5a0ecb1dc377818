r"""The robustness suite: one model on clean ImageNet, V2, ReaL, Sketch, A, R.

Runs, one each under <workdir>/<dataset>/: clean ILSVRC2012 validation,
ImageNetV2 (matched-frequency), ImageNet-ReaL, ImageNet-Sketch,
ImageNet-A and ImageNet-R (scored on their 200 classes), and for A and R
the clean validation set restricted to the same 200 classes
(`a_clean200`, `r_clean200`): the baseline their drop is measured
against. <workdir>/robustness.json and robustness.md hold the table
(top-1 / top-5, counts, 95% intervals, the drop from clean and from
clean-200); with --config.robustness.imagenet_c=ROOT the ImageNet-C
cells run too and the relative mCE uses this command's clean run.

  tf-topk --config=configs/robustness.py:resnet50 --workdir=/tmp/suite

Each dataset comes through its tfds builder, or from a local copy:
--config.robustness.datasets.<name>.data_dir=DIR (a prepared tfds
folder) or .path=DIR (a folder of synset folders). Offline without one,
the command stops before any evaluation, naming the offline route.
Leave a dataset out with --config.robustness.datasets.<name>.enabled=False.
"""

from tf_topk.cli import robustness_presets


def get_config(arg=None):
    """The suite config of preset `arg` ("resnet50")."""
    return robustness_presets.robustness(arg)
