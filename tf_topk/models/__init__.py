"""Every ImageNet classifier in `keras.applications`: contracts, ensembles.

A wrong ImageNet number usually comes from pairing a model with the wrong
input size, `preprocess_input` mode, label space or weights file.

- `registry`: `ModelSpec`, each model's contract (`names()`,
  `get_spec(name)`), with the ImageNet weights file Keras fetches for it
  (`weights_files`) and its `Published` figures with their source and
  `Conditions` (size, crop, crops, weights; the sources and tables:
  `figures`).
- `loading`: `load(name, weights=...)` returns the raw Keras model and a
  `WeightsRecord` (the file read and its SHA-256); `build` also wraps it.
- `wrappers`: `predict` runs a model on a (multi-crop) batch;
  `inference_model` wraps any classifier into the one shape the
  rest of tf_topk evaluates: float32 images in 0..255 in, float32 class
  probabilities in the 0-based 1000-class label space out.
- `ensembles`: `ensemble` averages several such models, each with its own
  input size and preprocessing.

>>> from tf_topk import models
>>> spec = models.get_spec("mobilenet")
>>> spec.input_size, spec.preprocess_mode, spec.published(alpha=0.75).top1
(224, 'tf', 0.684)
>>> model, record = models.build("mobilenet", weights=None, alpha=0.25,
...     image_size=128)
>>> model.output_shape, record.path
((None, 1000), None)
"""

from tf_topk.models.ensembles import WeightedAverage, ensemble
from tf_topk.models.figures import Conditions, Published
from tf_topk.models.loading import WeightsRecord, build, load
from tf_topk.models.registry import (
    INTERPOLATIONS,
    OUTPUTS,
    PREPROCESS_MODES,
    ModelSpec,
    get_spec,
    names,
)
from tf_topk.models.weights_files import WeightsFile
from tf_topk.models.wrappers import (
    ClassProbabilities,
    InputPreprocessing,
    inference_model,
    num_classes,
    predict,
)

__all__ = [
    "INTERPOLATIONS",
    "OUTPUTS",
    "PREPROCESS_MODES",
    "ClassProbabilities",
    "Conditions",
    "InputPreprocessing",
    "ModelSpec",
    "Published",
    "WeightedAverage",
    "WeightsFile",
    "WeightsRecord",
    "build",
    "ensemble",
    "get_spec",
    "inference_model",
    "load",
    "names",
    "num_classes",
    "predict",
]
