"""The names of a sweep or comparison run folder, in one place.

    RUN_DIR/
      study.yaml          what was asked (a study file with the CLI's changes)
      env.json            versions, hardware, git commit, command
      optuna.journal      the Optuna study (sweeps; optuna-dashboard opens it)
      trials.parquet/.csv one row per trial x epoch x metric (sweeps)
      confirm.csv         the top configurations retrained at fresh seeds (--confirm)
      effects.csv         an ablation's main effects and interactions with intervals
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

__all__ = ["STUDY", "ENV", "JOURNAL", "TRIALS", "TRIALS_CSV", "CONFIRM", "EFFECTS", "MODELS",
           "MODELS_DIR",
           "SUMMARY", "ROBUSTNESS", "REPORT", "TUNE", "write_summary", "read_summary",
           "MARKERS", "TRAIN_FILES", "is_run_folder", "is_train_run", "RESULTS", "RESULTS_CSV",
           "PREDICTIONS", "SCORES", "GAIN", "SUITE", "VERDICT", "CHECKPOINT", "MODEL_CONFIG",
           "MODEL_METRICS", "EFFECTS"]

STUDY = "study.yaml"
ENV = "env.json"
JOURNAL = "optuna.journal"
TRIALS = "trials.parquet"
TRIALS_CSV = "trials.csv"
CONFIRM = "confirm.csv"
EFFECTS = "effects.csv"
MODELS = "models.yaml"
MODELS_DIR = "models"
SUMMARY = "summary.json"
ROBUSTNESS = "robustness"
REPORT = "report.html"
# inside ROBUSTNESS/ (robustness.pipeline writes them, the report reads them)
RESULTS, RESULTS_CSV = "results.parquet", "results.csv"
PREDICTIONS = "predictions.parquet"
SCORES = "scores.csv"
GAIN = "gain.csv"
SUITE = "suite.json"
VERDICT = "verdict.json"
# inside MODELS_DIR/<name>/
CHECKPOINT, MODEL_CONFIG, MODEL_METRICS = "checkpoint.pt", "config.yaml", "metrics.csv"
TUNE = "tune"
# What the run writers leave in a folder: bench.tune's and bench.compare's files, a models/
# folder of per-model folders, the suite's robustness/ folder, or bench.train's config.yaml
# beside its metrics.csv. A folder with none of them is not a run folder.
MARKERS = (STUDY, MODELS, SUMMARY, JOURNAL, TRIALS, TRIALS_CSV)
TRAIN_FILES = ("config.yaml", "metrics.csv")


def is_train_run(root: str | Path) -> bool:
    """A bench.train run folder (its config beside its metrics)."""
    return all((Path(root) / n).is_file() for n in TRAIN_FILES)


def is_run_folder(root: str | Path) -> bool:
    """Whether `root` holds anything a run writer writes (see MARKERS)."""
    p = Path(root)
    return p.is_dir() and (any((p / n).is_file() for n in MARKERS)
                           or any(d.is_dir() for d in (p / MODELS_DIR).glob("*/"))
                           or (p / ROBUSTNESS).is_dir() or is_train_run(p))


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
