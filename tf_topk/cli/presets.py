"""Config builders shared by the files under `configs/`.

Config files are read by path (`--config=configs/x.py:preset`), so the code
they share lives here, importable (as big_vision's configs import
`big_vision.configs.common`). Each builder returns a locked `ConfigDict`
with the sections `model`, `members`, `data`, `preprocess`, `eval` and the
run-level fields; `tf_topk.cli.requests.from_config` turns one into typed
records.
"""

import copy
import difflib

from ml_collections import config_dict

from tf_topk import models


def model_section(name: str) -> config_dict.ConfigDict:
    """The `model` section for one registry model (also an ensemble member)."""
    return config_dict.ConfigDict(
        {
            "name": name,
            # "imagenet" (Keras cache / download), a path to a .h5,
            # .weights.h5, .keras or SavedModel, "package.module:factory",
            # or None for random weights.
            "weights": config_dict.placeholder(str),
            # Width multiplier (MobileNet family); None = Keras' default.
            "alpha": config_dict.placeholder(float),
            # Square input size; None = the spec's.
            "image_size": config_dict.placeholder(int),
            # "tf" | "caffe" | "torch" | "none"; None = the spec's.
            "preprocess_mode": config_dict.placeholder(str),
            # "softmax" | "logits"; None = the spec's.
            "output": config_dict.placeholder(str),
            # True for 1001-output checkpoints (index 0 = background).
            "has_background_class": False,
            # Comma-separated class indices / synsets, a file of them (one a
            # line), or "labels_in_data" (the classes the data holds, as for
            # ImageNet-A / ImageNet-R); None = all classes.
            "class_subset": config_dict.placeholder(str),
        }
    )


def hub_section(name: str) -> config_dict.ConfigDict:
    """The `model` section of one KerasHub preset (tf_topk.models.hub)."""
    return config_dict.ConfigDict(
        {
            "name": name,
            # Any handle ImageClassifier.from_preset takes: a preset name,
            # kaggle://..., hf://... or a local directory written by
            # save_to_preset; None = `name`.
            "preset": config_dict.placeholder(str),
            # Square input size; None = the preset's image converter's.
            "image_size": config_dict.placeholder(int),
            # True for 1001-output heads (index 0 = background).
            "has_background_class": False,
            # As for keras.applications models (see model_section).
            "class_subset": config_dict.placeholder(str),
        }
    )


def keras_hub(arg: str | None = None) -> config_dict.ConfigDict:
    """The ILSVRC2012 config of KerasHub preset `arg` (configs/keras_hub.py).

    As `imagenet(arg)`: "a+b" is an ensemble, "a,b" a bulk run. A name
    outside `tf_topk.models.hub_presets.names()` (and its aliases) is
    refused with the close matches; `--config.model.preset=<handle>`
    overrides the name with any handle, a local directory included.
    """
    from tf_topk.models import hub_presets

    valid = sorted(hub_presets.PRESETS)
    return imagenet(
        arg,
        valid=valid,
        member=hub_section,
        file="keras_hub.py",
        example="resnet_50_imagenet",
    )


def imagenet(
    arg: str | None = None,
    *,
    valid: list[str] | None = None,
    member=None,
    file: str = "imagenet.py",
    example: str = "resnet50",
) -> config_dict.ConfigDict:
    """The ILSVRC2012 config of preset `arg`.

    `arg` names a registry model ("resnet50"), an ensemble ("a+b": the
    members' softmax outputs averaged), or several runs separated by
    commas ("mobilenet,resnet50,mobilenet" — a preset may repeat): a bulk
    run evaluates each entry as its own run on the same data, one section
    `config.runs.run<i>` each (see `run_config`).

    `valid`, `member`, `file` and `example` make the same config for
    another family of models (`keras_hub`): its names (an unknown one is
    refused with the close matches), the section of one model, the config
    file and the preset named in errors.
    """
    member = member or _member
    if not arg:
        valid = models.names() if valid is None else valid
        raise ValueError(
            f"configs/{file} needs a preset, e.g. "
            f"--config=configs/{file}:{example}. Valid presets: {valid} "
            "(join with '+' for an ensemble, ',' for several runs)."
        )
    close = valid is not None
    valid = models.names() if valid is None else valid
    entries = [
        _entry_names(entry, arg, valid, file, close) for entry in arg.split(",")
    ]
    config = config_dict.ConfigDict()
    config.preset = arg
    # Bulk runs: one model section per run; `model` only names the command
    # and `members` stays empty, so a model-level override is refused as
    # an unknown field instead of being silently ignored.
    config.runs = config_dict.ConfigDict()
    if len(entries) == 1:
        _set_model(config, entries[0], member)
    else:
        config.model = config_dict.ConfigDict({"name": arg})
        config.members = config_dict.ConfigDict()
        for index, names in enumerate(entries):
            config.runs[f"run{index}"] = _run_section(names, member)
    # Relative ensemble weights, comma-separated ("2,1"); None = equal.
    # Bulk runs set it per run (config.runs.run<i>.ensemble_weights).
    config.ensemble_weights = config_dict.placeholder(str)

    config.data = data_section()
    config.preprocess = preprocess_section()
    config.eval = eval_section()
    # "none" | "mirrored" | "multi_worker" | "tpu".
    config.distribution = "none"
    config.lock()
    return config


def _entry_names(
    entry: str, arg: str, valid, file: str, close: bool = False
) -> list[str]:
    """The registry names of one run ("a" or the members of "a+b")."""
    names = [part.strip().lower() for part in entry.split("+")]
    for name in names:
        if name not in valid:
            matches = ""
            if close:
                found = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
                matches = f" Close matches: {found}."
            raise ValueError(
                f"Unknown preset {name!r} in configs/{file}:{arg}.{matches} "
                f"Valid presets: {valid} (join with '+' for an ensemble, ',' "
                "for several runs)."
            )
    return names


def _member(name: str) -> config_dict.ConfigDict:
    section = model_section(name)
    section.weights = "imagenet"
    return section


def _set_model(
    config: config_dict.ConfigDict, names: list[str], member=_member
) -> None:
    """The `model` and `members` sections of one run."""
    if len(names) == 1:
        config.model = member(names[0])
        config.members = config_dict.ConfigDict()
        return
    # Ensembles: one section per member, member0, member1, ...; the `model`
    # section only names the run, so a model-level override
    # (--config.model.alpha) is refused as an unknown field: set it per
    # member.
    config.model = config_dict.ConfigDict({"name": "+".join(names)})
    config.members = config_dict.ConfigDict(
        {f"member{i}": member(name) for i, name in enumerate(names)}
    )


def _run_section(names: list[str], member=_member) -> config_dict.ConfigDict:
    """`config.runs.run<i>`: a model section, or an ensemble's members."""
    if len(names) == 1:
        return member(names[0])
    return config_dict.ConfigDict(
        {
            "name": "+".join(names),
            "ensemble_weights": config_dict.placeholder(str),
            "members": {
                f"member{i}": member(name) for i, name in enumerate(names)
            },
        }
    )


def run_config(
    config: config_dict.ConfigDict, run: str
) -> config_dict.ConfigDict:
    """The one-run config of bulk run `run` (`config.runs.<run>`).

    Its `model` (or `members` and `ensemble_weights`) come from the run's
    section; every other section is the bulk config's.
    """
    if run not in config.runs:
        raise ValueError(
            f"`config.runs` has no run {run!r}. Valid runs: {list(config.runs)}"
        )
    section = copy.deepcopy(config.runs[run])
    single = copy.deepcopy(config)
    with single.unlocked():
        single.runs = config_dict.ConfigDict()
        # The run's name in the bulk config, for error messages.
        single.bulk_run = run
        if "members" in section:
            single.model = config_dict.ConfigDict({"name": section.name})
            single.members = section.members
            single.ensemble_weights = section.ensemble_weights
        else:
            single.model = section
            single.members = config_dict.ConfigDict()
    single.lock()
    return single


def as_bulk(config: config_dict.ConfigDict, sections) -> config_dict.ConfigDict:
    """A bulk config of one run per model section, on `config`'s data.

    >>> config = as_bulk(imagenet("mobilenet"), [model_section("mobilenet")])
    >>> list(config.runs)
    ['run0']
    """
    bulk = copy.deepcopy(config)
    with bulk.unlocked():
        bulk.runs = config_dict.ConfigDict(
            {f"run{i}": copy.deepcopy(s) for i, s in enumerate(sections)}
        )
        names = ",".join(section.name for section in bulk.runs.values())
        bulk.model = config_dict.ConfigDict({"name": names})
        bulk.members = config_dict.ConfigDict()
    bulk.lock()
    return bulk


def run_overrides(section: config_dict.ConfigDict) -> dict:
    """The fields of a run section that differ from its preset's defaults,
    e.g. {"alpha": 0.25} (members as "member1.alpha")."""
    if "members" in section:
        changed = {}
        for member, values in section.members.items():
            for field, value in run_overrides(values).items():
                changed[f"{member}.{field}"] = value
        if section.ensemble_weights is not None:
            changed["ensemble_weights"] = section.ensemble_weights
        return changed
    member = hub_section if "preset" in section else _member
    defaults = member(section.name).to_dict()
    return {
        field: value
        for field, value in section.to_dict().items()
        if field != "name" and defaults.get(field) != value
    }


def data_section() -> config_dict.ConfigDict:
    """The `data` section: ILSVRC2012 validation through tfds by default."""
    return config_dict.ConfigDict(
        {
            # One of tf_topk.datasets.SOURCES.
            "source": "tfds",
            # tfds: dataset name, split and data_dir (None = tfds default).
            "name": "imagenet2012",
            "split": "validation",
            "data_dir": config_dict.placeholder(str),
            # tfds: download and prepare the dataset when it is not prepared
            # yet (ImageNetV2 downloads itself; imagenet2012 needs
            # `manual_dir` holding ILSVRC2012_img_val.tar).
            "download": True,
            "manual_dir": config_dict.placeholder(str),
            # files / folder / tfrecord: the folder or glob of the data.
            "path": config_dict.placeholder(str),
            # files: the ground truth (ILSVRC line-per-image or a TSV).
            "labels_file": config_dict.placeholder(str),
            # tfrecord / tfds: the image and label features; None = the
            # source's default (image/encoded, image/class/label; tfds' own
            # supervised keys).
            "image_key": config_dict.placeholder(str),
            "label_key": config_dict.placeholder(str),
            # Subtracted from stored labels; None = the source's default
            # (1 for tfrecord, 0 otherwise).
            "label_offset": config_dict.placeholder(int),
            "num_classes": 1000,
            # Skip (and list) unreadable images instead of stopping.
            "skip_corrupt": False,
            "batch_size": 64,
            # 1 (centre crop) or 10 (corners + centre, and their mirrors).
            "num_crops": 1,
            # Bulk runs: keep the decoded images for the runs that share a
            # preprocessing: "auto" (memory within the budget, else disk
            # under <workdir>/cache), "memory", "disk" or "none". The
            # cache is removed when the command ends; one run alone reads
            # its input once and uses none.
            "cache": "auto",
            # Memory the caches may take, GiB; None = half of the memory
            # available when the command starts.
            "cache_budget_gb": config_dict.placeholder(float),
            # Comma-separated class indices: evaluate only the examples of
            # these classes (configs/robustness.py sets it for the clean
            # 200-class baselines of ImageNet-A and -R); None = all.
            "classes": config_dict.placeholder(str),
        }
    )


def preprocess_section() -> config_dict.ConfigDict:
    """The `preprocess` section: overrides of the model spec's values."""
    return config_dict.ConfigDict(
        {
            # None = the model spec's value.
            "crop_fraction": config_dict.placeholder(float),
            "interpolation": config_dict.placeholder(str),
            # Antialiased resize (the Keras / timm reference path).
            "antialias": True,
            # "resize_then_crop" (Keras / timm) or "crop_then_resize"
            # (Model Garden).
            "crop_mode": "resize_then_crop",
        }
    )


def eval_section() -> config_dict.ConfigDict:
    """The `eval` section: what the loop counts and reports."""
    return config_dict.ConfigDict(
        {
            "ks": (1, 5),
            # "inclusive" (tf.math.in_top_k) or "exclusive".
            "ties": "inclusive",
            "jit_compile": False,
            # "auto" | "bar" | "log" | "none".
            "progress": "auto",
            "log_every_n_examples": 12800,
            # Published fractions to compare with; None = the spec's.
            "published_top1": config_dict.placeholder(float),
            "published_top5": config_dict.placeholder(float),
            # Shortfall (fraction) past which likely causes are diagnosed,
            # when the published top-1 is also above the 95% interval.
            "shortfall_tolerance": 0.02,
            # Save the counts and the input position under
            # <workdir>/checkpoint every this many examples (and on SIGTERM
            # / SIGINT); 0 saves only on a signal. Cheap: the state is the
            # metric counters.
            "checkpoint_every_n_examples": 5000,
            # Resume from <workdir>/checkpoint when it holds this run's
            # state; False starts afresh (and replaces it).
            "resume": True,
            # Write every example's id, labels, top-10 classes and scores
            # under <workdir>/predictions/ (for `tf-topk compare` and
            # `tf-topk report`).
            "save_predictions": False,
            # A step that runs out of memory halves its batch and the run
            # goes on from the last counted batch (tf_topk.backoff); False
            # stops with the advice.
            "oom_backoff": True,
            # Batches the input probe times with the model out of the loop
            # (decoded again: the rate in results.json's throughput); 0
            # measures nothing. The robustness commands probe one cell.
            "input_probe_batches": 4,
        }
    )


def tfds_variant(
    arg: str | None, *, name: str, split: str, class_subset: str | None = None
) -> config_dict.ConfigDict:
    """`imagenet(arg)` on another tfds evaluation set.

    Args:
        arg: the preset (a registry model, "+" joins an ensemble).
        name: the tfds dataset, e.g. "imagenet_v2/matched-frequency".
        split: its split.
        class_subset: set on every model section, e.g. "labels_in_data"
            (score on the classes the data holds, as for ImageNet-A / R).

    Returns:
        The locked config.
    """
    config = imagenet(arg)
    config.data.source = "tfds"
    config.data.name = name
    config.data.split = split
    # Published ILSVRC2012 figures do not apply to another set.
    config.eval.shortfall_tolerance = 1.0
    if class_subset is not None:
        for section in _every_model_section(config):
            section.class_subset = class_subset
    return config


def _every_model_section(config: config_dict.ConfigDict) -> list:
    """The model sections of one run, or of every run of a bulk config."""
    if not config.runs:
        return list(model_sections(config).values())
    sections = []
    for run in config.runs.values():
        sections.extend(run.members.values() if "members" in run else [run])
    return sections


def model_sections(config: config_dict.ConfigDict) -> dict:
    """{config path: section} of the models a one-run config evaluates.

    A run of a bulk config (`run_config`) names the paths a user sets,
    `config.runs.<run>...`.
    """
    run = config.get("bulk_run")
    prefix = f"config.runs.{run}" if run else "config"
    if config.members:
        members = f"{prefix}.members" if run else "config.members"
        return {f"{members}.{k}": v for k, v in config.members.items()}
    return {prefix if run else "config.model": config.model}
