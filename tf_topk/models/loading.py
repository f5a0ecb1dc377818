"""Loading: a classifier and a record of the weights it was given.

`load` returns the raw classifier (a registry architecture with ImageNet
weights, a weights file or random weights; a whole saved model; a
factory's model) together with a `WeightsRecord`: what was asked for, the
file actually read and its SHA-256, so a result can say which weights it
measured. `build` adds the wrapper of `tf_topk.models.inference_model`.

ImageNet weights are fetched with the public `keras.utils.get_file`, from
the Keras cache resolved when `load` runs (`$KERAS_HOME/models/`, default
`~/.keras/models/`) or downloaded; the file name and URL come from the
registry (`ModelSpec.imagenet_weights`).

>>> model, record = load("mobilenet", weights=None, alpha=0.25,
...     input_shape=(32, 32, 3), classes=5)
>>> model.output_shape, record
((None, 5), WeightsRecord(source=None, path=None, sha256=None, origin=None))
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
from absl import logging

from tf_topk.models import registry, weights_files, wrappers

_FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclasses.dataclass(frozen=True)
class WeightsRecord:
    """Which weights a loaded model holds.

    Attributes:
        source: what was asked for: "imagenet", a path (as a string), a
            "package.module:factory" string, or None (random weights).
        path: the file read: the Keras cache file for "imagenet", the
            weights file, the `.keras` file or the SavedModel directory;
            None for random weights and factories.
        sha256: hex SHA-256 of `path` (of its `saved_model.pb` for a
            SavedModel directory); None without a file.
        origin: the URL Keras publishes the file at, for "imagenet".

    >>> load("mobilenet", weights=None, alpha=0.25, input_shape=(32, 32, 3),
    ...     classes=5)[1]
    WeightsRecord(source=None, path=None, sha256=None, origin=None)
    """

    source: str | None
    path: str | None = None
    sha256: str | None = None
    origin: str | None = None


def sha256(path: str) -> str:
    """Hex SHA-256 of a file, or of a SavedModel directory's saved_model.pb."""
    if os.path.isdir(path):
        path = os.path.join(path, "saved_model.pb")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load(
    name: str | None,
    *,
    weights: str | os.PathLike | None = "imagenet",
    **kwargs: Any,
) -> tuple[keras.Model, WeightsRecord]:
    """The raw classifier (inputs after its preprocessing) and its weights.

    Args:
        name: a registry key (see `names()`), or None / "custom" when
            `weights` is a whole saved model or a factory.
        weights: one of
            - "imagenet": Keras' pretrained weights, from the Keras cache
              (`$KERAS_HOME/models/`, default `~/.keras/models/`; the
              variable is read when this function runs) or downloaded;
            - a Keras 2 `.h5` / `.hdf5` weights file (the layout Keras
              downloads) or a Keras 3 `.weights.h5` file, loaded into the
              registry architecture built with `kwargs`;
            - a whole saved model: a `.keras` file or a TF SavedModel
              directory (wrapped in `keras.layers.TFSMLayer`);
            - None: random initialisation;
            - "package.module:factory": `factory(**kwargs)` returning a
              `keras.Model`.
        **kwargs: passed to the constructor, e.g. `alpha`, `input_shape`,
            `classes`, `include_top`.

    Returns:
        `(model, record)`: a `keras.Model` and its `WeightsRecord`.

    Raises:
        FileNotFoundError: `weights` names a missing path, or "imagenet"
            weights are neither cached nor downloadable (the message names
            the file to place in the cache).
        ValueError: unknown `name`, a weights form that does not fit the
            other arguments, no ImageNet weights for these `kwargs`.
        TypeError: `weights` of the wrong type, a factory returning no
            `keras.Model`.
    """
    if weights is not None and not isinstance(weights, str | os.PathLike):
        raise TypeError(
            "Argument `weights` must be 'imagenet', None, a path or "
            f"'package.module:factory'. Received: weights={weights!r} of "
            f"type {type(weights).__name__}"
        )
    spec = None if name is None or name == "custom" else registry.get_spec(name)
    if isinstance(weights, str) and _FACTORY_PATTERN.match(weights):
        if not os.path.exists(weights):
            return _load_factory(weights, kwargs), WeightsRecord(weights)
    if weights is not None and weights != "imagenet":
        path = os.fspath(weights)
        if not os.path.exists(path):
            raise FileNotFoundError(
                "Argument `weights` names a path that does not exist. "
                f"Received: weights={path!r}"
            )
        if os.path.isdir(path) or path.endswith(".keras"):
            if kwargs:
                raise ValueError(
                    f"Arguments {sorted(kwargs)} configure a constructor "
                    "and cannot apply to a whole saved model. Received: "
                    f"weights={path!r} with {kwargs}"
                )
            model = _load_whole_model(path)
            return model, WeightsRecord(path, path, sha256(path))
    if spec is None:
        raise ValueError(
            "Argument `name` must be a registry model when `weights` is "
            "'imagenet', None or a weights file (a whole saved model or a "
            f"factory may go without). Received: name={name!r}, "
            f"weights={weights!r}"
        )
    if weights is None:
        return spec.constructor(weights=None, **kwargs), WeightsRecord(None)
    if weights == "imagenet":
        return _load_imagenet(spec, kwargs)
    return _load_weights_file(spec, os.fspath(weights), kwargs)


def _format_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


def _load_weights_file(
    spec: registry.ModelSpec, path: str, kwargs: dict[str, Any]
) -> tuple[keras.Model, WeightsRecord]:
    if not path.endswith((".h5", ".hdf5")):
        raise ValueError(
            "Argument `weights` must be a `.weights.h5`, `.h5`, `.hdf5` or "
            "`.keras` file or a SavedModel directory. Received: "
            f"weights={path!r}"
        )
    model = spec.constructor(weights=None, **kwargs)
    try:
        model.load_weights(path)
    except Exception as error:
        raise ValueError(
            f"Could not load weights {path!r} into {spec.keras_name}"
            f"({_format_kwargs(kwargs)}): {error}. Check that the file was "
            "saved from the same architecture and width (e.g. `alpha`)."
        ) from error
    logging.info("Loaded %s weights from %s", spec.name, path)
    return model, WeightsRecord(path, path, sha256(path))


def _keras_home() -> str:
    """Keras' cache folder as of now: `$KERAS_HOME`, else `~/.keras`.

    Keras reads `KERAS_HOME` once, at import, and offers no public accessor;
    reading it here lets a value set later count.
    """
    home = os.environ.get("KERAS_HOME")
    if home:
        return home
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):  # Keras' own fallback.
        base = "/tmp"
    return os.path.join(base, ".keras")


def _fetch(name: str, weights_file: weights_files.WeightsFile) -> str:
    """The local path of an ImageNet weights file, downloaded if needed."""
    cache_dir = os.path.expanduser(_keras_home())
    target = os.path.join(cache_dir, "models", weights_file.fname)
    cached = os.path.exists(target)
    try:
        # Keras falls back to /tmp/.keras for a cache folder that does not
        # exist yet; creating it keeps the file where $KERAS_HOME says.
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError:
        pass
    try:
        return keras.utils.get_file(
            weights_file.fname,
            weights_file.origin,
            cache_subdir="models",
            cache_dir=cache_dir,
            file_hash=weights_file.file_hash,
        )
    except Exception as error:
        if cached:
            raise
        raise FileNotFoundError(
            f"The ImageNet weights of {name!r} are not in the Keras "
            "cache and could not be downloaded from "
            f"{weights_file.origin} ({error}). Offline, place the file as "
            f"{target} (the Keras cache is $KERAS_HOME/models/, default "
            f"~/.keras/models/), or pass the local file: load({name!r}, "
            f"weights='/path/to/{weights_file.fname}')."
        ) from error


def _load_imagenet(
    spec: registry.ModelSpec, kwargs: dict[str, Any]
) -> tuple[keras.Model, WeightsRecord]:
    weights_file = spec.imagenet_weights(**kwargs)
    path = _fetch(spec.name, weights_file)
    model = spec.constructor(weights=path, **kwargs)
    logging.info("Loaded %s weights from %s", spec.name, path)
    record = WeightsRecord("imagenet", path, sha256(path), weights_file.origin)
    return model, record


def _load_factory(target: str, kwargs: dict[str, Any]) -> keras.Model:
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"Argument `weights` names a factory whose module cannot be "
            f"imported: {error}. Received: weights={target!r}"
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(
            f"Argument `weights` names no callable {attribute!r} in module "
            f"{module_name!r}. Received: weights={target!r}"
        )
    model = factory(**kwargs)
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"The factory {target!r} must return a keras.Model. Received: "
            f"{type(model).__name__}"
        )
    return model


def _load_whole_model(path: str) -> keras.Model:
    if not os.path.isdir(path):
        return keras.saving.load_model(path, compile=False)
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise ValueError(
            "Argument `weights` is a directory without saved_model.pb, so "
            f"not a TF SavedModel. Received: weights={path!r}"
        )
    return _load_saved_model(path)


def _load_saved_model(path: str) -> keras.Model:
    """A TF SavedModel's serving signature as a one-input Keras model."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    endpoint = (
        "serving_default"
        if "serving_default" in loaded.signatures
        else next(iter(loaded.signatures), None)
    )
    if endpoint is None:
        raise ValueError(
            "Argument `weights` is a SavedModel without a serving "
            f"signature. Received: weights={path!r}"
        )
    args, named = loaded.signatures[endpoint].structured_input_signature
    input_specs = list(args) + list(named.values())
    if len(input_specs) != 1:
        raise ValueError(
            "Argument `weights` is a SavedModel whose signature "
            f"{endpoint!r} takes {len(input_specs)} inputs; tf_topk needs "
            f"one image batch. Received: weights={path!r}"
        )
    input_spec = input_specs[0]
    layer = keras.layers.TFSMLayer(path, call_endpoint=endpoint)
    inputs = keras.Input(
        shape=tuple(input_spec.shape[1:]), dtype=input_spec.dtype.name
    )
    outputs = layer(inputs)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ValueError(
                f"Argument `weights` is a SavedModel whose signature "
                f"{endpoint!r} returns {sorted(outputs)}; tf_topk needs one "
                f"output. Received: weights={path!r}"
            )
        outputs = next(iter(outputs.values()))
    return keras.Model(inputs, outputs, name=Path(path).name or "saved_model")


def build(
    name: str,
    *,
    weights: str | os.PathLike | None = "imagenet",
    image_size: int | None = None,
    preprocess_input: Callable[[Any], Any] | str | None = None,
    output: str | None = None,
    has_background_class: bool = False,
    class_subset: Sequence[int | str] | None = None,
    **kwargs: Any,
) -> tuple[keras.Model, WeightsRecord]:
    """`get_spec` + `load` + `inference_model` for a registry model.

    Args:
        name: registry key.
        weights: see `load`.
        image_size: square input size; defaults to the spec's. A size other
            than the spec's is passed to the constructor as `input_shape`
            (unless given).
        preprocess_input: overrides the spec's `preprocess_mode`.
        output: overrides the spec's `output`.
        has_background_class: see `inference_model`.
        class_subset: see `inference_model`.
        **kwargs: constructor options (`alpha`, `classes`, ...).

    Returns:
        `(model, record)`: the inference model, named after the spec, and
        the `WeightsRecord` of `load`.
    """
    spec = registry.get_spec(name)
    size = spec.input_size if image_size is None else image_size
    if size != spec.input_size and "input_shape" not in kwargs:
        kwargs["input_shape"] = (size, size, 3)
    model, record = load(spec.name, weights=weights, **kwargs)
    wrapped = wrappers.inference_model(
        model,
        preprocess_input=preprocess_input or spec.preprocess_mode,
        output=spec.output if output is None else output,
        image_size=size,
        has_background_class=has_background_class,
        class_subset=class_subset,
        name=spec.name,
    )
    return wrapped, record
