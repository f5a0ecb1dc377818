"""KerasHub image classifiers: a preset loaded, guarded and wrapped.

`load(preset)` returns a KerasHub `ImageClassifier` with its trained head,
in float32, with its `WeightsRecord` (the handle; for a local directory
the SHA-256 of `task.weights.h5`) and its `PresetSpec` (the converter's
size, interpolation, `scale` and `offset`, and the source checkpoint's
crop fraction and figure from `tf_topk.models.hub_presets`). `build` wraps
it into the model tf_topk evaluates (`tf_topk.models.inference_model`):
0..255 images, the converter's `scale` / `offset` as the normalisation,
softmax over the logits.

The harness does the resize and crop itself (`tf_topk.preprocessing`), so
the preset's `ImageConverter` (largest centred square, resize without
antialias) is not used: its settings are read, never run.

keras-hub is optional (`pip install -e ".[hub]"`) and imported only here,
when a preset is loaded (about 7 s).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import socket
from collections.abc import Sequence
from typing import Any

import keras
from absl import logging

from tf_topk.models import figures, hub_presets, loading, wrappers

INSTALL = 'pip install -e ".[hub]"'
TASK_CONFIG = "task.json"
TASK_WEIGHTS = "task.weights.h5"
# Hosts that serve remote handles, per scheme; built-in names are Kaggle's.
_HOSTS = {"kaggle": "www.kaggle.com", "hf": "huggingface.co"}
# Seconds to wait for a host before declaring the machine offline.
CONNECT_TIMEOUT_S = 3.0


@dataclasses.dataclass(frozen=True)
class PresetSpec:
    """The evaluation contract of one loaded preset.

    Read by `tf_topk.preprocessing.resolve` as a model spec (`input_size`,
    `crop_fraction`, `interpolation`).

    Attributes:
        preset: the handle loaded (a name, `kaggle://`, `hf://` or a local
            directory).
        name: the table's preset name, or the handle.
        input_size: the converter's square image size.
        crop_fraction: timm's crop fraction of the source checkpoint at
            `input_size` (`crop_pct`, or `test_crop_pct` at timm's test
            size); 0.875 when unknown.
        interpolation: the converter's interpolation.
        scale: the converter's scale (a number or one per channel).
        offset: the converter's offset (a number or one per channel).
        source: the source checkpoint (e.g. "timm/resnet50.a1_in1k").
        alias_of: the preset whose weights were loaded, for an alias.
        published: the source's published figure, or None.
        num_classes: the classifier's outputs.
        output: "logits" (KerasHub's default head) or "softmax".
    """

    preset: str
    name: str
    input_size: int
    crop_fraction: float
    interpolation: str
    scale: Any
    offset: Any
    source: str | None = None
    alias_of: str | None = None
    published: figures.Published | None = None
    num_classes: int = 1000
    output: str = "logits"


def import_keras_hub():
    """keras_hub, or an ImportError naming the command that installs it."""
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "KerasHub presets need the keras-hub package (Python >= 3.11), "
            f"which is not installed ({error}). Install it with: {INSTALL}"
        ) from error
    return keras_hub


def _scheme(preset: str) -> str | None:
    return preset.split("://")[0].lower() if "://" in preset else None


def check_reachable(host: str) -> bool:
    """Whether `host`:443 accepts a connection within CONNECT_TIMEOUT_S."""
    try:
        socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def _offline_error(preset: str, host: str) -> ConnectionError:
    return ConnectionError(
        f"Preset {preset!r} must be downloaded from {host}, which does not "
        f"answer within {CONNECT_TIMEOUT_S:g} s (no network?). Offline, "
        "load a local preset directory: on a machine with network, run "
        f"keras_hub.models.ImageClassifier.from_preset({preset!r})"
        ".save_to_preset('/path/dir'), copy the directory here and pass "
        "--config.model.preset=/path/dir (Python: hub.load('/path/dir'))."
    )


def _check_local(preset: str) -> None:
    """A local directory holds a classifier task with trained head weights."""
    config = os.path.join(preset, TASK_CONFIG)
    if not os.path.exists(config):
        raise ValueError(
            f"Preset {preset!r} is backbone-only: it has no {TASK_CONFIG}, so "
            "it holds no trained classification head, and loading it as a "
            "classifier would add a random one. Received: preset="
            f"{preset!r}. Save an ImageClassifier with "
            "classifier.save_to_preset(dir), or pass a classifier preset."
        )
    with open(config) as f:
        task = json.load(f)
    class_name = str(task.get("class_name", ""))
    if not class_name.endswith("ImageClassifier"):
        raise ValueError(
            f"Preset {preset!r} holds a {class_name or 'task'} in "
            f"{TASK_CONFIG}, not an ImageClassifier. Received: preset="
            f"{preset!r}. Pass an image classifier preset."
        )
    if not os.path.exists(os.path.join(preset, TASK_WEIGHTS)):
        raise ValueError(
            f"Preset {preset!r} has a classifier task but no {TASK_WEIGHTS}: "
            "its head would be randomly initialised. Received: preset="
            f"{preset!r}. Save it again with classifier.save_to_preset(dir) "
            "from a classifier with trained weights."
        )


def _known_names(keras_hub) -> list[str]:
    builtin = keras_hub.models.ImageClassifier.presets
    return sorted(set(builtin) | set(hub_presets.PRESETS))


def _check_handle(preset: str, keras_hub) -> None:
    """Local directory, remote handle or known name; else an error."""
    if os.path.isdir(preset):
        _check_local(preset)
        return
    scheme = _scheme(preset)
    if scheme is None:
        known = _known_names(keras_hub)
        if preset not in known:
            close = difflib.get_close_matches(preset, known, n=5, cutoff=0.5)
            raise ValueError(
                f"Unknown KerasHub preset {preset!r}: not a local directory, "
                "not a kaggle:// or hf:// handle and not a preset name. "
                f"Close matches: {close}. Known presets: "
                "tf_topk.models.hub_presets.names()."
            )
        host = _HOSTS["kaggle"]
    else:
        host = _HOSTS.get(scheme)
    if host is not None and not check_reachable(host):
        raise _offline_error(preset, host)


def _jsonable(value):
    if value is None or isinstance(value, int | float):
        return value
    return [float(v) for v in value]


def _spec(preset: str, classifier, num_classes: int) -> PresetSpec:
    converter = classifier.preprocessor.image_converter
    size = converter.image_size
    if size is None or size[0] != size[1]:
        raise ValueError(
            f"Preset {preset!r} has an image converter of size {size}; "
            "tf_topk evaluates square inputs. Received: preset="
            f"{preset!r}"
        )
    activation = getattr(classifier, "activation", None)
    softmax = activation in ("softmax", keras.activations.softmax)
    entry = hub_presets.get(os.path.basename(os.path.normpath(preset)))
    if entry is None and not os.path.isdir(preset):
        entry = hub_presets.get(preset)
    return PresetSpec(
        preset=preset,
        name=entry.name if entry else preset,
        input_size=int(size[0]),
        crop_fraction=(
            entry.crop_fraction_at(int(size[0]))
            if entry
            else hub_presets.DEFAULT_CROP_FRACTION
        ),
        interpolation=converter.interpolation,
        scale=_jsonable(converter.scale),
        offset=_jsonable(converter.offset),
        source=entry.source if entry else None,
        alias_of=entry.alias_of if entry else None,
        published=entry.published if entry else None,
        num_classes=num_classes,
        output="softmax" if softmax else "logits",
    )


def load(
    preset: str,
    *,
    num_classes: int = 1000,
    has_background_class: bool = False,
) -> tuple[keras.Model, loading.WeightsRecord, PresetSpec]:
    """A KerasHub image classifier with its trained head, in float32.

    Never passes `num_classes` to `from_preset` (that swaps the trained
    head for a random one): the head's size is checked instead.

    Args:
        preset: a preset name, a `kaggle://` / `hf://` handle or a local
            directory written by `save_to_preset`.
        num_classes: the label space the run scores (1000 for ImageNet).
        has_background_class: the head has `num_classes + 1` outputs,
            index 0 the background.

    Returns:
        `(classifier, record, spec)`.

    Raises:
        ImportError: keras-hub is not installed (names the command).
        ValueError: an unknown preset (with close matches), a backbone-only
            preset, a task without trained head weights, an output count
            other than the label space's.
        ConnectionError: a remote preset without network (names the
            offline route).
    """
    if not isinstance(preset, str) or not preset:
        raise TypeError(
            "Argument `preset` must be a preset name, handle or directory. "
            f"Received: preset={preset!r}"
        )
    keras_hub = import_keras_hub()
    _check_handle(preset, keras_hub)
    entry = hub_presets.get(preset)
    if entry is not None and entry.alias_of is not None:
        logging.warning(
            "KerasHub preset %s loads the weights of %s (same Kaggle handle); "
            "results are those of %s.",
            preset,
            entry.alias_of,
            entry.alias_of,
        )
    # dtype="float32": whatever the global policy, the weights and the
    # activations stay float32 (bf16 scores tie in top-k).
    classifier = keras_hub.models.ImageClassifier.from_preset(
        preset, dtype="float32"
    )
    outputs = int(classifier.output_shape[-1])
    expected = num_classes + int(bool(has_background_class))
    if outputs != expected:
        raise ValueError(
            f"Preset {preset!r} outputs {outputs} classes; the label space "
            f"has {expected}"
            f"{' (1000 + background)' if has_background_class else ''}. "
            f"Received: preset={preset!r}. Pass a preset trained on this "
            "label space (an ImageNet-1k head), or set "
            "--config.model.has_background_class / --config.data.num_classes "
            "to match its head."
        )
    weights_file = os.path.join(preset, TASK_WEIGHTS)
    local = os.path.isdir(preset)
    record = loading.WeightsRecord(
        source=preset,
        path=weights_file if local else None,
        sha256=loading.sha256(weights_file) if local else None,
    )
    return classifier, record, _spec(preset, classifier, outputs)


@keras.saving.register_keras_serializable(package="tf_topk")
class ScaleOffset(keras.layers.Layer):
    """x * scale + offset in float32: a KerasHub converter's normalisation.

    >>> import numpy as np
    >>> float(ScaleOffset(1 / 255.0, -0.5)(np.full((1, 1, 1, 3), 255.0))[
    ...     0, 0, 0, 0])
    0.5
    """

    def __init__(self, scale=None, offset=None, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def call(self, images):
        images = keras.ops.cast(images, "float32")
        if self.scale is not None:
            images = images * keras.ops.convert_to_tensor(self.scale, "float32")
        if self.offset is not None:
            images = images + keras.ops.convert_to_tensor(
                self.offset, "float32"
            )
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, offset=self.offset)
        return config


def build(
    preset: str,
    *,
    image_size: int | None = None,
    num_classes: int = 1000,
    has_background_class: bool = False,
    class_subset: Sequence[int | str] | None = None,
) -> tuple[keras.Model, loading.WeightsRecord, PresetSpec]:
    """`load` + the inference model tf_topk evaluates.

    Args:
        preset: see `load`.
        image_size: square input size; None = the converter's.
        num_classes, has_background_class: see `load`.
        class_subset: see `tf_topk.models.inference_model`.

    Returns:
        `(model, record, spec)`: 0..255 float32 images in, float32 class
        probabilities out.
    """
    classifier, record, spec = load(
        preset,
        num_classes=num_classes,
        has_background_class=has_background_class,
    )
    model = wrappers.inference_model(
        classifier,
        preprocess_input=ScaleOffset(
            spec.scale, spec.offset, name="preprocess"
        ),
        output=spec.output,
        image_size=image_size or spec.input_size,
        has_background_class=has_background_class,
        class_subset=class_subset,
        name=_model_name(spec.name),
    )
    return model, record, spec


def _model_name(name: str) -> str:
    base = os.path.basename(os.path.normpath(name)) or "preset"
    return "".join(c if c.isalnum() or c == "_" else "_" for c in base)
