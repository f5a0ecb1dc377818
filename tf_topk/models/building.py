"""One model of a run, built from a typed request: `build` and `combine`.

A run evaluates one model, or an ensemble of several. `build` turns one
`ModelRequest` (a registry name or a custom model, its weights and the
values that override the spec) into a `BuiltModel`: the inference model,
the preprocessing resolved for it (`preprocessing.resolve`: the request's
values, then the model spec's, then the defaults), the record results.json
keeps of it and the published figure to compare with. `combine` then gives
the one model to evaluate: the model itself, or the ensemble of several.

>>> request = ModelRequest(name="mobilenet", alpha=0.25, image_size=128)
>>> built = build(request)
>>> built.options.image_size, built.record.name, built.model.output_shape
(128, 'mobilenet', (None, 1000))

The command line makes the requests from a config (`tf_topk.cli.requests`);
`path` names the config section in error messages.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from tf_topk import datasets, models, preprocessing, provenance

# `weights` values that mean random weights.
NONE_WEIGHTS = ("none", "random", "")
# The `class_subset` value for the classes the evaluation data holds.
LABELS_IN_DATA = "labels_in_data"


@dataclasses.dataclass(frozen=True)
class ModelRequest:
    """What to build of one model (a run's model or an ensemble member).

    None leaves a value to the model's spec (or, outside the registry, to
    the model itself).

    Attributes:
        name: a registry name (`tf_topk.models.names()`, any case), or
            another name for a custom model read from `weights`.
        weights: "imagenet", a path to a .h5, .weights.h5, .keras or
            SavedModel, "package.module:factory", or None / "none" /
            "random" for random weights.
        alpha: width multiplier (MobileNet family); None = Keras' default.
        image_size: square input size; None = the spec's.
        preprocess_mode: "tf" | "caffe" | "torch" | "none"; None = the
            spec's ("none" for a custom model).
        output: "softmax" | "logits"; None = the spec's ("softmax" for a
            custom model).
        has_background_class: True for 1001-output checkpoints (index 0 =
            background).
        class_subset: comma-separated class indices / synsets, a file of
            them (one a line), or "labels_in_data" (the classes the data
            holds); None = all classes.
        kwargs: further keyword arguments of the model's constructor or
            factory.
        path: where the request came from, for error messages, e.g.
            "config.model" or "config.members.member1".
        preset: a KerasHub preset (name, `kaggle://` / `hf://` handle or
            local directory, see `tf_topk.models.hub`); None for a
            `keras.applications` or custom model.
    """

    name: str | None
    weights: str | None = None
    alpha: float | None = None
    image_size: int | None = None
    preprocess_mode: str | None = None
    output: str | None = None
    has_background_class: bool = False
    class_subset: str | None = None
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    path: str = "model"
    preset: str | None = None

    @property
    def spec(self) -> models.ModelSpec | None:
        """The registry's spec of `name`; None for a custom model or a
        KerasHub preset."""
        if self.preset is not None:
            return None
        name = (self.name or "").lower()
        return models.get_spec(name) if name in models.names() else None


@dataclasses.dataclass(frozen=True)
class BuiltModel:
    """One built inference model and what results.json says of it.

    Attributes:
        model: the inference model (float32 images in 0..255 in, float32
            class probabilities out; see `models.inference_model`).
        options: the preprocessing resolved for it.
        record: the model's record in results.json.
        published: the spec's published figure at this width, input size
            and number of crops, with its source and conditions; None when
            unknown.
    """

    model: Any
    options: preprocessing.Options
    record: provenance.ModelRecord
    published: models.Published | None


def weights_argument(value: str | None) -> str | None:
    """The `models.load` weights of a request: None for random weights."""
    if value is None or value.strip().lower() in NONE_WEIGHTS:
        return None
    return value


def class_subset(value: str | None, path: str) -> list | str | None:
    """None, a list of indices / synsets, or the string "labels_in_data".

    Args:
        value: a request's `class_subset`.
        path: its name in error messages, e.g. "config.model.class_subset".

    Returns:
        The classes: ints for indices, strings for synsets.

    Raises:
        ValueError: `value` lists nothing.
    """
    if value is None or value == LABELS_IN_DATA:
        return value
    if os.path.exists(value):
        with open(value) as f:
            items = [line.strip() for line in f if line.strip()]
    else:
        items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ValueError(
            f"`{path}` must list class indices or synsets, or name a file of "
            f"them. Received: {value!r}"
        )
    return [int(item) if item.isdigit() else item for item in items]


def labels_in_data(data: Mapping[str, Any]) -> list[int]:
    """The sorted classes a dataset holds (ImageNet-A / R).

    Args:
        data: `datasets.build` keyword arguments of the evaluation data.
    """
    dataset, _ = datasets.build(**data)
    present = set()
    for _, labels in dataset:
        present.update(int(x) for x in labels.numpy().reshape(-1))
    return sorted(present)


def build(
    request: ModelRequest,
    *,
    overrides: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> BuiltModel:
    """Builds one inference model.

    Args:
        request: what to build.
        overrides: `preprocessing.resolve` overrides besides the input size
            (crop_fraction, interpolation, antialias, crop_mode, num_crops;
            None values leave the spec's).
        data: `datasets.build` keyword arguments of the evaluation data;
            needed only for `class_subset="labels_in_data"`.

    Returns:
        The `BuiltModel`.

    Raises:
        ValueError: a bad class subset, or "labels_in_data" without `data`.
    """
    subset = class_subset(request.class_subset, f"{request.path}.class_subset")
    if subset == LABELS_IN_DATA:
        if data is None:
            raise ValueError(
                f"`{request.path}.class_subset`='labels_in_data' needs the "
                "evaluation data: pass `data` (datasets.build arguments). "
                "Received: data=None"
            )
        subset = labels_in_data(data)
    if request.preset is not None:
        return _build_preset(request, subset, overrides, data)
    model, weights = _inference_model(request, subset)
    image_size = int(model.inputs[0].shape[1] or request.image_size or 224)
    spec = request.spec
    options = preprocessing.resolve(
        spec, {**(overrides or {}), "image_size": image_size}
    )
    published = None
    if spec is not None:
        published = spec.published(
            alpha=request.alpha or 1.0,
            image_size=image_size,
            num_crops=options.num_crops,
        )
    record = _record(request, weights, image_size, subset)
    return BuiltModel(model, options, record, published)


def _build_preset(request: ModelRequest, subset, overrides, data) -> BuiltModel:
    """A KerasHub preset: its converter's size, interpolation and
    normalisation, its source checkpoint's crop fraction and figure."""
    from tf_topk.models import hub

    for field in ("weights", "alpha", "preprocess_mode", "output"):
        if getattr(request, field) is not None:
            raise ValueError(
                f"`{request.path}.{field}` does not apply to a KerasHub "
                f"preset (the preset holds its weights, normalisation and "
                f"head). Received: {getattr(request, field)!r}"
            )
    if "num_classes" in request.kwargs:
        raise ValueError(
            f"`{request.path}` must not pass num_classes to a KerasHub "
            "preset: from_preset would replace the trained head with a "
            f"random one. Received: kwargs={dict(request.kwargs)!r}"
        )
    model, weights, spec = hub.build(
        request.preset,
        image_size=request.image_size,
        num_classes=int((data or {}).get("num_classes") or 1000),
        has_background_class=request.has_background_class,
        class_subset=subset,
    )
    image_size = int(model.inputs[0].shape[1])
    options = preprocessing.resolve(
        spec, {**(overrides or {}), "image_size": image_size}
    )
    record = provenance.ModelRecord(
        name=spec.name,
        weights=request.preset,
        weights_file=weights.path,
        weights_sha256=weights.sha256,
        alpha=None,
        image_size=image_size,
        preprocess_mode="scale_offset",
        output=spec.output,
        has_background_class=request.has_background_class,
        class_subset_size=None if subset is None else len(subset),
        preset=request.preset,
        source=spec.source,
        alias_of=spec.alias_of,
        scale=spec.scale,
        offset=spec.offset,
    )
    return BuiltModel(model, options, record, spec.published)


def _inference_model(request: ModelRequest, subset):
    """(the inference model, its `models.WeightsRecord`)."""
    kwargs = dict(request.kwargs)
    if request.alpha is not None:
        kwargs["alpha"] = request.alpha
    wrapper = {
        "image_size": request.image_size,
        "output": request.output,
        "has_background_class": request.has_background_class,
        "class_subset": subset,
    }
    weights = weights_argument(request.weights)
    spec = request.spec
    if spec is not None:
        return models.build(
            spec.name,
            weights=weights,
            preprocess_input=request.preprocess_mode,
            **wrapper,
            **kwargs,
        )
    raw, record = models.load(None, weights=weights, **kwargs)
    wrapper["output"] = request.output or "softmax"
    model = models.inference_model(
        raw, preprocess_input=request.preprocess_mode or "none", **wrapper
    )
    return model, record


def _record(
    request: ModelRequest, weights, image_size: int, subset
) -> provenance.ModelRecord:
    """What results.json keeps of a built model."""
    spec = request.spec
    if spec is None:
        name = request.name or "custom"
        preprocess_mode = request.preprocess_mode or "none"
        output = request.output or "softmax"
    else:
        name = spec.name
        preprocess_mode = request.preprocess_mode or spec.preprocess_mode
        output = request.output or spec.output
    return provenance.ModelRecord(
        name=name,
        weights=request.weights,
        weights_file=weights.path,
        weights_sha256=weights.sha256,
        alpha=request.alpha,
        image_size=image_size,
        preprocess_mode=preprocess_mode,
        output=output,
        has_background_class=request.has_background_class,
        class_subset_size=None if subset is None else len(subset),
    )


def planned_options(
    requests: Sequence[ModelRequest],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[preprocessing.Options, ...] | None:
    """The preprocessing `build` will resolve, without building a model.

    Args:
        requests: the models of one run.
        overrides: as for `build`.

    Returns:
        One `Options` per request; None when a model is not in the
        registry (its input size is known only once it is built).
    """
    options = []
    for request in requests:
        spec = request.spec
        if spec is None:
            return None
        resolved = preprocessing.resolve(
            spec, {**(overrides or {}), "image_size": request.image_size}
        )
        options.append(resolved)
    return tuple(options)


def combine(
    built: Sequence[BuiltModel], weights: Sequence[float] | None = None
):
    """The one model to evaluate: the model, or the members' average.

    Args:
        built: the built models of one run (several: an ensemble).
        weights: an ensemble's relative member weights; None = equal.

    Returns:
        The `keras.Model` to evaluate.

    Raises:
        ValueError: `weights` for one model.
    """
    if len(built) == 1:
        if weights is not None:
            raise ValueError(
                "Argument `weights` applies to ensembles only. Received: "
                f"weights={weights!r} for one model"
            )
        return built[0].model
    return models.ensemble(
        [member.model for member in built],
        weights=None if weights is None else list(weights),
    )
