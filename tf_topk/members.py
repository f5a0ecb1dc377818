"""The models a run evaluates, built from the config's model sections.

`tf_topk.main.run` calls `build` once per model section (`config.model`,
or each `config.members.<name>` of an ensemble) and `combine` on the
results: each `Member` is an inference model with the preprocessing
resolved for it (`preprocessing.resolve`: the config's values, then the
model spec's, then the defaults) and the record results.json keeps of it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from tf_topk import datasets, models, preprocessing, provenance

_NONE_WEIGHTS = ("none", "random", "")


@dataclasses.dataclass(frozen=True)
class Member:
    """One built inference model and what results.json says of it."""

    model: Any
    options: preprocessing.Options
    record: provenance.ModelRecord
    published: tuple[float, float] | None


def _weights(value: str | None) -> str | None:
    if value is None or value.strip().lower() in _NONE_WEIGHTS:
        return None
    return value


def _class_subset(value: str | None, path: str):
    """None, a list of indices / synsets, or the string "labels_in_data"."""
    if value is None or value == "labels_in_data":
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


def _labels_in_data(data_kwargs: dict[str, Any]) -> list[int]:
    """The sorted classes the evaluation data holds (ImageNet-A / R)."""
    dataset, _ = datasets.build(**data_kwargs)
    present = set()
    for _, labels in dataset:
        present.update(int(x) for x in labels.numpy().reshape(-1))
    return sorted(present)


def build(section, preprocess, data, data_kwargs, path: str) -> Member:
    """Builds one inference model from a model section of the config."""
    kwargs = dict(section.get("kwargs", {}) or {})
    if section.alpha is not None:
        kwargs["alpha"] = section.alpha
    subset = _class_subset(section.class_subset, f"{path}.class_subset")
    if subset == "labels_in_data":
        subset = _labels_in_data(data_kwargs)
    name = (section.name or "").lower()
    spec = models.get_spec(name) if name in models.names() else None
    wrapper = dict(
        image_size=section.image_size,
        output=section.output,
        has_background_class=section.has_background_class,
        class_subset=subset,
    )
    if spec is not None:
        model, weights = models.build(
            spec.name,
            weights=_weights(section.weights),
            preprocess_input=section.preprocess_mode,
            **wrapper,
            **kwargs,
        )
    else:
        raw, weights = models.load(
            None, weights=_weights(section.weights), **kwargs
        )
        wrapper["output"] = section.output or "softmax"
        model = models.inference_model(
            raw, preprocess_input=section.preprocess_mode or "none", **wrapper
        )
    image_size = int(model.inputs[0].shape[1] or section.image_size or 224)
    options = preprocessing.resolve(
        spec, _overrides(image_size, preprocess, data)
    )
    record = provenance.ModelRecord(
        name=spec.name if spec else (section.name or "custom"),
        weights=section.weights,
        weights_file=weights.path,
        weights_sha256=weights.sha256,
        alpha=section.alpha,
        image_size=image_size,
        preprocess_mode=section.preprocess_mode
        or (spec.preprocess_mode if spec else "none"),
        output=section.output or (spec.output if spec else "softmax"),
        has_background_class=section.has_background_class,
        class_subset_size=None if subset is None else len(subset),
    )
    published = (
        spec.published(alpha=section.alpha or 1.0, image_size=image_size)
        if spec
        else None
    )
    return Member(model, options, record, published)


def planned_options(
    sections, preprocess, data
) -> tuple[preprocessing.Options, ...] | None:
    """The preprocessing `build` will resolve for these model sections,
    without building them; None when a model is not in the registry (its
    input size is known only once it is built)."""
    options = []
    for section in sections:
        name = (section.name or "").lower()
        if name not in models.names():
            return None
        options.append(
            preprocessing.resolve(
                models.get_spec(name),
                _overrides(section.image_size, preprocess, data),
            )
        )
    return tuple(options)


def _overrides(image_size, preprocess, data) -> dict:
    """The config's preprocessing values (None: the spec's)."""
    return dict(
        image_size=image_size,
        crop_fraction=preprocess.crop_fraction,
        interpolation=preprocess.interpolation,
        antialias=preprocess.antialias,
        crop_mode=preprocess.crop_mode,
        num_crops=data.num_crops,
    )


def combine(members: list[Member], ensemble_weights: str | None):
    """The one model to evaluate: a member, or their weighted average."""
    if len(members) == 1:
        if ensemble_weights is not None:
            raise ValueError(
                "`config.ensemble_weights` applies to ensembles only (a "
                "preset such as 'mobilenet+resnet50'). Received: "
                f"{ensemble_weights!r} for one model"
            )
        return members[0].model
    weights = None
    if ensemble_weights is not None:
        try:
            weights = [float(v) for v in ensemble_weights.split(",")]
        except ValueError as e:
            raise ValueError(
                "`config.ensemble_weights` must be comma-separated numbers, "
                f"one per member. Received: {ensemble_weights!r}"
            ) from e
        if len(weights) != len(members):
            raise ValueError(
                f"`config.ensemble_weights` must have {len(members)} values, "
                f"one per member. Received: {ensemble_weights!r}"
            )
    return models.ensemble([m.model for m in members], weights=weights)
