"""tf_topk: correct, reproducible and fast top-k accuracy for Keras models.

The public API:

- `tf_topk.evaluate(model, dataset, *, ks=(1, 5), ..., listeners=[...])
  -> EvalResult`: the one evaluation loop (also behind the `tf-topk`
  command line and the `TopKEvaluation` callback); `tf_topk.Listener` is
  what plugs into it (`tf_topk.listeners`: checkpoints, predictions,
  progress, the input probe, the diagnosis, run metadata).
- `tf_topk.metrics`: streaming Keras metrics (`TopKAccuracy`,
  `TopKAccuracies`, `PerClassTopKAccuracy`, `top_k_correct`).
- `tf_topk.models` (registry, `load`, `ensemble`), `tf_topk.datasets`
  (`build`), `tf_topk.preprocessing`, `tf_topk.runs` (a run's files),
  `tf_topk.testing`.
"""

__version__ = "0.1.0"

from tf_topk.evaluation import evaluate  # noqa: E402
from tf_topk.listeners import Listener  # noqa: E402
from tf_topk.metrics import (  # noqa: E402
    PerClassTopKAccuracy,
    TopKAccuracies,
    TopKAccuracy,
    top_k_correct,
)
from tf_topk.results import EvalResult  # noqa: E402

__all__ = [
    "EvalResult",
    "Listener",
    "PerClassTopKAccuracy",
    "TopKAccuracies",
    "TopKAccuracy",
    "evaluate",
    "top_k_correct",
]
