"""The old home of `load_predictions`, kept importable.

`tf_topk.analysis.load_predictions(workdir)` is the old name of
`tf_topk.runs.predictions.load(workdir)`: the paired comparison moved to
`tf_topk.runs.compare` and the predictions reader to
`tf_topk.runs.predictions`. New code imports those.
"""

from tf_topk.runs.predictions import load as load_predictions

__all__ = ["load_predictions"]
