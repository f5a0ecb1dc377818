r"""The tf-topk command line: evaluate a Keras classifier from a config file.

  tf-topk --config=configs/imagenet.py:resnet50 --workdir=/tmp/resnet50
  tf-topk --flagfile=runs/mobilenet_075.flags
  python -m tf_topk --config=configs/imagenet.py:mobilenet \
      --config.model.alpha=0.75 --config.data.source=folder \
      --config.data.path=/data/val --workdir=/tmp/out

This module reads the flags: the config (ml_collections' config file flag,
with a clear message for an unknown override field), the workdir and the
`compare` / `report` subcommands; it prints the summary of a run. The run
itself is `tf_topk.cli.run.run(config, workdir)`, a plain function the
tests call directly.
"""

from __future__ import annotations

import signal

from absl import app, flags, logging
from ml_collections import config_dict, config_flags
from ml_collections.config_flags import config_flags as config_files

from tf_topk import backoff, checkpoints, datasets, imagenet, results
from tf_topk.cli import bulk, leaderboard_files, robustness, run
from tf_topk.runs import robustness as robustness_files
from tf_topk.runs import summary

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Config file and preset, e.g. configs/imagenet.py:resnet50. Override "
    "any field with --config.section.field=value.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder for results.json, per_class.csv, ..."
)


def main(argv: list[str]) -> None:
    """Runs the config of --config, or a subcommand; prints the summary.

    Raises:
        app.UsageError: a bad argument, config value or path (absl prints
            the message without a traceback).
        SystemExit: a signal stopped the run (128 + its number), or a bulk
            command's run failed.
    """
    if len(argv) > 1 and argv[1] in COMMANDS:
        _command(argv[1], argv[2:])
        return
    if len(argv) > 1:
        raise app.UsageError(
            f"Unexpected arguments: {argv[1:]}. Pass options as flags, e.g. "
            "--config.data.path=..., and check flag spellings."
        )
    if _CONFIG.value is None:
        raise app.UsageError(
            "--config is required, e.g. --config=configs/imagenet.py:resnet50"
        )
    try:
        result = run.run(_CONFIG.value, _WORKDIR.value)
    except (ValueError, FileNotFoundError, datasets.DataUnavailableError) as e:
        raise app.UsageError(str(e)) from e
    except backoff.OutOfMemory as e:
        raise SystemExit(str(e)) from e
    except checkpoints.Interrupted as e:
        logging.warning("%s", e)
        # 128 + the signal number, as a shell reports a killed command.
        raise SystemExit(128 + signal.Signals[e.signal_name].value) from e
    if isinstance(result, (bulk.BulkResult, robustness.RobustnessResult)):
        if isinstance(result, robustness.RobustnessResult):
            print(robustness_files.to_markdown(result.record))
            result = result.bulk
        else:
            print(leaderboard_files.to_markdown(result.rows))
        if result.failed:
            failed = [r.run for r in result.rows if r.status != "ok"]
            raise SystemExit(f"Failed runs: {failed} (see the log).")
        return
    print(printed_summary(result, _CONFIG.value.model.name))


COMMANDS = {
    "compare": "tf-topk compare RUN_A RUN_B --workdir=OUT: a paired "
    "comparison of two finished runs saved with "
    "--config.eval.save_predictions=True (writes OUT/comparison.json).",
    "report": "tf-topk report RUN: writes RUN/report.html, one "
    "self-contained page of plots and tables (and the plots to the run's "
    "TensorBoard log); for a robustness command's workdir, its table and "
    "the ImageNet-C heatmap.",
}


def _command(name: str, args: list[str]) -> None:
    """`tf-topk compare A B --workdir=C` and `tf-topk report A`."""
    wanted = 2 if name == "compare" else 1
    if len(args) != wanted or (name == "compare" and not _WORKDIR.value):
        raise app.UsageError(
            f"Usage: {COMMANDS[name]} Received: {[name, *args]} with "
            f"--workdir={_WORKDIR.value!r}"
        )
    # Lazy: matplotlib and the analysis are not needed to evaluate.
    from tf_topk.runs import compare, report

    try:
        if name == "compare":
            comparison = compare.compare_runs(*args, _WORKDIR.value)
            print(compare.format_comparison(comparison))
        else:
            print(f"Wrote {report.write(args[0])}")
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e


def printed_summary(result: results.EvalResult, name: str) -> str:
    """The printed summary of a run: its table and the likely causes of a
    shortfall.

    Args:
        result: the run's result, with its metadata.
        name: what was evaluated, for the title.
    """
    published = result.metadata.get("published") or {}
    table = summary.format_table(
        result,
        title=f"tf_topk: {name}",
        published={1: published.get("top1"), 5: published.get("top5")},
        class_names=imagenet.class_names()
        if len(result.per_class_count or ()) == imagenet.NUM_CLASSES
        else None,
    )
    causes = result.metadata.get("diagnostics") or []
    return "\n".join([table] + [f"  likely cause: {c}" for c in causes])


class _ConfigFileParser(config_files.ConfigFileFlagParser):
    """Keeps the config it loaded, to name an unknown override field."""

    loaded: config_dict.ConfigDict | None = None

    def parse(self, path):
        self.loaded = super().parse(path)
        return self.loaded


def _unknown_override(argv: list[str], config) -> str | None:
    """Names the first `--config.a.b=...` override that is not a field.

    ml_collections reports an unknown field as a bare AttributeError; this
    walks the loaded config and says which override is wrong and what the
    valid fields are.
    """
    args = flags.FLAGS.read_flags_from_files(argv[1:], force_gnu=False)
    for arg in args:
        if config is None or not arg.startswith("--config."):
            continue
        field = arg[len("--config.") :].split("=", 1)[0]
        node, walked = config, "config"
        for part in field.split("."):
            keys = list(node.keys()) if hasattr(node, "keys") else []
            if part not in keys:
                return (
                    f"Unknown config field in --config.{field}: {walked} has "
                    f"no field {part!r}. Valid fields of {walked}: "
                    f"{sorted(keys)}"
                )
            node, walked = node[part], f"{walked}.{part}"
    return None


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with the config's own errors said plainly."""
    parser = _ConfigFileParser(name="config")
    flags.FLAGS["config"].parser = parser
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        text = str(e)
        if "Error whilst parsing config file" in text:
            # The config's own error (e.g. an unknown preset), without the
            # traceback ml_collections wraps around it.
            last = text.strip().splitlines()[-1]
            raise SystemExit(last.split(": ", 1)[-1]) from e
        raise SystemExit(
            f"FATAL Flags parsing error: {text}\nPass --helpshort or "
            "--helpfull to see help on flags."
        ) from e
    except (AttributeError, KeyError) as e:
        message = _unknown_override(argv, parser.loaded)
        if message is None:
            raise
        raise SystemExit(message) from e


def entrypoint() -> None:
    """The `tf-topk` console script."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    entrypoint()
