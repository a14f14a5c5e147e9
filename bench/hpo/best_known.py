"""What the best known configuration scores: the target of `bench.hpo search`.

The best single report of a hundred noisy trials overstates what its
configuration scores (the winner's curse: on ~180 validation clips one clip is
half a point), so a target set there is one the same configuration rarely
reaches again, and counting trial-epochs to it measures luck. Instead the top
configurations of all sweeps are trained again at other training seeds, and the
best mean of those fresh runs (not the selected report itself) is the target.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bench.runs import atomic_write_text
from bench.search.spaces import Study
from bench.search.trainable import RUN_KEY, SEED_KEY

__all__ = ["config_key", "final_values", "top_configs", "confirm_runs", "best_mean",
           "seed_noise", "run_confirm"]


def config_key(params: dict[str, Any]) -> str:
    """One string per searched configuration (Optuna's encoded values, sorted keys)."""
    return json.dumps({k: v for k, v in params.items() if not k.startswith("__")},
                      sort_keys=True)


def final_values(runs: Iterable[pd.DataFrame], epochs: int) -> pd.DataFrame:
    """(config, value) of every trial that reported its last epoch, over all sweeps."""
    finals = [r.loc[r["epoch"] == epochs, ["config", "value"]] for r in runs]
    return pd.concat(finals, ignore_index=True).dropna()


def top_configs(finals: pd.DataFrame, k: int) -> list[str]:
    """The k configurations with the best final value (each counted once)."""
    best = finals.groupby("config", sort=False)["value"].max()
    return list(best.sort_values(ascending=False, kind="stable").index[:k])


def confirm_runs(configs: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """One baselines-phase run per configuration and training seed."""
    return [{**json.loads(c), SEED_KEY: s} for c in configs for s in seeds]


def best_mean(confirm: pd.DataFrame) -> tuple[str, float, list[float]]:
    """(config, mean, values) of the configuration with the best mean over its fresh runs.

    A run that diverged (NaN) makes its configuration's mean NaN: not the best.
    """
    by = confirm.groupby("config", sort=False)["value"]
    means = by.apply(lambda v: v.mean(skipna=False)).dropna()
    if means.empty:
        raise ValueError("no configuration finished every confirming run")
    best = str(means.idxmax())
    return best, float(means[best]), [float(v) for v in by.get_group(best)]


def seed_noise(confirm: pd.DataFrame) -> float | None:
    """How far one configuration's runs differ by training seed alone: the noise floor.

    Median over configurations of the standard deviation of their fresh runs
    (the sweep's own report is left out: it was selected for being high). A
    tolerance below it means reaching the target is mostly a lucky seed. None
    when no configuration has two finished fresh runs.
    """
    # std skips NaN (diverged) runs; a configuration left with one run has NaN std
    stds = confirm.groupby("config", sort=False)["value"].std().dropna()
    return float(stds.median()) if len(stds) else None


def run_confirm(study: Study, raw: dict[str, Any], runs: list[dict[str, Any]], d: Path,
                kept: bool) -> pd.DataFrame:
    """Train the runs as one Tune experiment; (config, seed, value), read back if kept."""
    from bench.search.results import trial_status
    from bench.search.run import records, run_phase

    key = hashlib.sha1(json.dumps({"study": raw, "runs": runs}, sort_keys=True,
                                  default=str).encode()).hexdigest()[:8]
    run_dir = d / f"perf-confirm-{key}"
    done = run_dir / "confirm.csv"
    if done.is_file():
        return pd.read_csv(done)
    shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished one from an interrupted call
    run_dir.mkdir(parents=True)
    grid = run_phase(study, run_dir, "confirm", log=lambda m: None, runs=runs)
    objective = study.objective.reported[0]
    rows = []
    for rec in records(grid):
        run = rec.config.get(RUN_KEY, rec.config)
        finished = trial_status(rec, study.epochs)[0] == "completed"
        value = float(rec.history[objective].iloc[-1]) if finished else math.nan
        rows.append({"config": config_key(run), "seed": int(run[SEED_KEY]), "value": value})
    table = pd.DataFrame(rows, columns=["config", "seed", "value"])
    if kept:
        atomic_write_text(done, table.to_csv(index=False))
    return table
