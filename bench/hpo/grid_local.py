"""Train a grid without Ray: N local processes, each run's curve kept when it ends.

The grid's usual path is one resumable Ray Tune experiment. This one is for a
machine where that is not worth it or not possible: a GPU box without Ray, say,
where many small runs share one accelerator (`train.device: auto` puts each
on it). A run's curve is the same loop as a Tune trial's (`trial_epochs`),
written atomically to `DIR/local/` when the run ends, so a grid cut short
resumes with the runs it lacks and never keeps half a curve.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from bench.hpo.grid import Grid, run_cell
from bench.runs import atomic_write_text
from bench.search.spaces import Study
from bench.search.trainable import SEED_KEY, config_of_trial, trial_epochs

__all__ = ["run_curve", "train_local", "LOCAL_DIR"]

LOCAL_DIR = "local"


def run_curve(study: Study, run: dict[str, Any]) -> list[tuple[int, float]]:
    """(epoch, objective) of one grid run; a diverged run ends with its NaN epoch."""
    import torch

    torch.set_num_threads(max(1, int(study.cpus_per_trial)))
    objective = study.objective.reported[0]
    cfg = config_of_trial(study, run)
    return [(int(r["epoch"]), float(r.get(objective, math.nan)))
            for r, _ in trial_epochs(cfg, study)]


def _run_file(d: Path, run: dict[str, Any]) -> Path:
    h = hashlib.sha1(json.dumps(run, sort_keys=True).encode()).hexdigest()[:16]
    return d / LOCAL_DIR / f"seed{run[SEED_KEY]}-{h}.json"


def _train_one(study: Study, run: dict[str, Any], path: str) -> str:
    atomic_write_text(Path(path), json.dumps({"run": run, "curve": run_curve(study, run)}))
    return path


def train_local(study: Study, grid: Grid, runs: list[dict[str, Any]], d: Path, *,
                workers: int, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Train the runs that have no curve in d yet, `workers` at a time; every run's curve."""
    (d / LOCAL_DIR).mkdir(parents=True, exist_ok=True)
    todo = [r for r in runs if not _run_file(d, r).is_file()]
    if len(todo) < len(runs):
        log(f"{len(runs) - len(todo)} of {len(runs)} grid runs already done in {d / LOCAL_DIR}")
    if todo:
        t0 = time.perf_counter()
        # spawn, not fork: a forked child must not inherit a CUDA context
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        try:
            futures = [pool.submit(_train_one, study, r, str(_run_file(d, r))) for r in todo]
            for n, f in enumerate(as_completed(futures), 1):
                f.result()
                log(f"grid run {n + len(runs) - len(todo)}/{len(runs)} done "
                    f"({time.perf_counter() - t0:.0f} s)")
        finally:
            # on an error or Ctrl-C, start no more runs; the running ones end and are kept
            pool.shutdown(wait=True, cancel_futures=True)
    rows = []
    for run in runs:
        kept = json.loads(_run_file(d, run).read_text())
        cell, seed = run_cell(study, grid, run)
        rows += [{"cell": cell, "seed": seed, "epoch": e, "value": v} for e, v in kept["curve"]]
    return pd.DataFrame(rows, columns=["cell", "seed", "epoch", "value"])
