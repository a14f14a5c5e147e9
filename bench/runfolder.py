"""The names of a sweep or comparison run folder, in one place.

    RUN_DIR/
      study.yaml          what was asked (a study file with the CLI's changes)
      env.json            versions, hardware, git commit, command
      optuna.journal      the Optuna study (sweeps; optuna-dashboard opens it)
      trials.parquet/.csv one row per trial x epoch x metric (sweeps)
      confirm.csv         the top configurations retrained at fresh seeds (--confirm)
      models.yaml         the exported models: name, role, method, seed, group, path
      models/<name>/      config.yaml, checkpoint.pt, metrics.csv
      summary.json        verdict first, then what was run and picked
      robustness/         the suite's tables, suite.json, verdict.json
      report.html         the report
      tune/               Ray Tune's experiments (resume state)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.runs import atomic_write_text

__all__ = ["STUDY", "ENV", "JOURNAL", "TRIALS", "TRIALS_CSV", "CONFIRM", "MODELS", "MODELS_DIR",
           "SUMMARY", "ROBUSTNESS", "REPORT", "TUNE", "write_summary", "read_summary",
           "MARKERS", "is_run_folder"]

STUDY = "study.yaml"
ENV = "env.json"
JOURNAL = "optuna.journal"
TRIALS = "trials.parquet"
TRIALS_CSV = "trials.csv"
CONFIRM = "confirm.csv"
MODELS = "models.yaml"
MODELS_DIR = "models"
SUMMARY = "summary.json"
ROBUSTNESS = "robustness"
REPORT = "report.html"
TUNE = "tune"
# Files that only a run of hdf-bench writes: one of them makes a folder a run folder.
MARKERS = (STUDY, MODELS, SUMMARY, TRIALS, JOURNAL)


def is_run_folder(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / m).is_file() for m in MARKERS)


def write_summary(run_dir: str | Path, summary: dict[str, Any]) -> None:
    """summary.json, atomically (plain JSON: NaN becomes null)."""
    atomic_write_text(Path(run_dir) / SUMMARY, json.dumps(_plain(summary), indent=2) + "\n")


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float) and x != x:
        return None
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):  # numpy scalars
        return _plain(x.item())
    return x
