"""Test helpers users can reuse: an oracle model and tiny generated data.

The oracle reads a class from an image's mean intensity, so an evaluation
of images painted with known classes has an exact expected accuracy (e.g.
7/10), whatever the preprocessing. Three modules:

- `tf_topk.testing.oracle`: the oracle model, the pixel value of each class,
  labels that agree with it on exactly n images, batched datasets of
  painted images and a hand-checkable `EvalResult`.
- `tf_topk.testing.files`: encoded images, image files, ILSVRC-style files,
  class folders and TFRecords of such images, written to a directory.
- `tf_topk.testing.failures`: a model that runs out of memory (a real
  `ResourceExhaustedError`) above a batch size.

Every public name of both is also reachable here (`testing.oracle_model`,
`testing.write_tfrecords`, ...), and `"tf_topk.testing:oracle_model"` names
the oracle as model weights in configs.
"""

from tf_topk.testing.failures import OutOfMemoryAbove, out_of_memory_above
from tf_topk.testing.files import (
    FORMATS,
    cmyk_jpeg,
    encoded_image,
    write_class_folders,
    write_ilsvrc_files,
    write_image_files,
    write_photo_jpegs,
    write_tfrecords,
)
from tf_topk.testing.oracle import (
    OracleLogits,
    class_intensity,
    constant_image,
    eval_result,
    oracle_dataset,
    oracle_labels,
    oracle_model,
    painted_dataset,
)

__all__ = [
    "FORMATS",
    "OutOfMemoryAbove",
    "out_of_memory_above",
    "OracleLogits",
    "class_intensity",
    "cmyk_jpeg",
    "constant_image",
    "encoded_image",
    "eval_result",
    "oracle_dataset",
    "oracle_labels",
    "oracle_model",
    "painted_dataset",
    "write_class_folders",
    "write_ilsvrc_files",
    "write_image_files",
    "write_photo_jpegs",
    "write_tfrecords",
]
