"""tf_topk: correct, reproducible and fast top-k accuracy for Keras models."""

__version__ = "0.1.0"
