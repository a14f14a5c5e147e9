"""The suite as a SLURM job array: one task per model x shift group, merged in the driver.

A task returns its predictions (no file I/O); the driver merges them with
`bench.launch.merge_tidy` (which refuses a condition reported twice) and
scores them exactly as the in-process suite does, so both paths give the same
tables. The clean condition is its own group, evaluated once per model.

Every task scores on the device the driver chose (robustness.device.array_device),
resolved on the node the task runs on; the array asks SLURM for a GPU per task
when that device is cuda (SlurmOptions.gpus).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from bench.engine import resolve_device
from robustness import runs
from robustness.suite import predict_conditions

__all__ = ["evaluate_group", "shift_groups", "PREDICTION_KEYS"]

PREDICTION_KEYS = ["model", "shift", "severity", "seed", "clip"]


def shift_groups(shifts: Sequence[str]) -> list[tuple[str, ...]]:
    """One task per shift, plus the clean pass."""
    return [("clean",)] + [(s,) for s in shifts]


def evaluate_group(run_dir: str, model: str, shifts: tuple[str, ...], severities: Sequence[int],
                   seeds: Sequence[int], batch_size: int, limit: int | None,
                   threads: int | None, device: str = "cpu") -> pd.DataFrame:
    """Predictions of one model under one shift group (runs inside an array task)."""
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)  # on the task's node: its GPUs are the ones SLURM gave it
    # The driver checked the manifest (paths inside the run folder unless --allow-outside)
    # before it submitted this task.
    entries = runs.read_manifest(run_dir, allow_outside=True)
    loaded = runs.load_models([e for e in entries if e.name == model], dev)
    dataset = runs.test_set({model: loaded[model][0]})
    if limit:
        dataset.records = dataset.records[:limit]
    conds = [("clean", 0, 0)] if tuple(shifts) == ("clean",) else \
        [(s, int(v), int(seed)) for s in shifts for v in severities for seed in seeds]
    preds, _ = predict_conditions({model: loaded[model][1]}, dataset, conds,
                                  batch_size=batch_size, device=dev)
    return preds


def run_on_launcher(run_dir: Path, names: list[str], shifts: Sequence[str],
                    severities: Sequence[int], seeds: Sequence[int], *, batch_size: int,
                    limit: int | None, threads: int | None, launcher: str, options,
                    device: str = "cpu") -> pd.DataFrame:
    """Every model x shift group as one array task on `device` (`options.gpus` GPUs each)."""
    from bench.launch.array import plan_tasks, run_array

    tasks = plan_tasks(names, shift_groups(shifts))
    args = [(str(Path(run_dir).resolve()), t.model, t.shifts, list(severities), list(seeds),
             batch_size, limit, threads, device) for t in tasks]
    return run_array(evaluate_group, args, PREDICTION_KEYS, launcher=launcher, options=options)
