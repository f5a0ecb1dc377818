"""The tf-topk application: the only code that reads flags or a ConfigDict.

- `main`: the absl entry point (`tf-topk`, `python -m tf_topk`): flags,
  the `compare` / `report` subcommands, the printed summary.
- `presets`: the config builders `configs/*.py` import.
- `requests`: a config's sections as typed records (`RunRequest`, ...).
- `run`: `run(config, workdir)`, and `run_one(request, workdir)`, the one
  path of a single run.
- `bulk`, `leaderboard`: several runs in one command, and their table.

Importing this package defines no flags: `main` does, when imported.
"""
