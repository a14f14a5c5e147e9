"""Two engines replay one sweep: a real Tune experiment, or the same searcher on a virtual clock.

`tune`: the sweep's own Tune experiment (its searcher, early stopping and
concurrency, from `bench.search.run.sweep_tune_config`) over trials that report
their replayed curve, sleeping `--epoch-s` per epoch; which trial reports first
then follows timing. `sim` (simulate.py): the sweep's OptunaSearch and ASHA
driven on a virtual clock, deterministic, seconds per sweep; one trial at a
time, where timing decides nothing, it gives the `tune` sweep report for report.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.hpo.draws import pick_curve
from bench.hpo.grid import Grid
from bench.hpo.grid_folder import with_concurrency
from bench.hpo.methods import with_method
from bench.search.spaces import Study, study_from_dict

__all__ = ["replay_trial", "replay_sweep"]


def replay_trial(tune_config: dict[str, Any], *, study: Study, grid: Grid,
                 curves: dict[str, list[list[float]]], epoch_s: float, salt: int,
                 fresh: bool = False) -> None:
    """Tune entry point: report the curve `pick_curve` gives the trial, epoch by epoch."""
    from ray import tune

    cell, curve = pick_curve(tune_config, study=study, grid=grid, curves=curves, salt=salt,
                             fresh=fresh)
    for epoch, value in enumerate(curve, 1):
        time.sleep(epoch_s)
        tune.report({"epoch": epoch, study.objective.reported[0]: value, "cell": cell,
                     "t": time.time()})


def replay_sweep(raw: dict[str, Any], grid: Grid, curves: dict[str, list[list[float]]],
                 sampler: str, scheduler: str, seed: int, args: argparse.Namespace
                 ) -> pd.DataFrame:
    """One sweep over replayed trials: every report (trial, t, epoch, cell, value) in order.

    `args.engine` "tune": a real Tune experiment; "sim": the same searcher and scheduler
    on a virtual clock (simulate.py), deterministic and seconds per sweep.
    """
    raw = with_method(dict(with_concurrency(raw, args.concurrency), trials=args.trials),
                      sampler, scheduler, seed, startup_trials=args.startup_trials,
                      grace_period=args.grace_period)
    study = study_from_dict(raw, name=f"replay-{sampler}-{scheduler}-{seed}", source=args.space)
    fresh = args.draws == "fresh"
    if args.engine == "sim":
        from bench.hpo.simulate import simulate_sweep

        return simulate_sweep(study, lambda config: pick_curve(
            config, study=study, grid=grid, curves=curves, salt=seed, fresh=fresh))
    from ray import tune

    fn = tune.with_parameters(replay_trial, study=study, grid=grid, curves=curves,
                              epoch_s=args.epoch_s, salt=seed, fresh=fresh)
    reports = _tune_sweep(study, tune.with_resources(fn, {"cpu": study.cpus_per_trial}))
    return reports.rename(columns={study.objective.reported[0]: "value"})[
        ["trial", "t", "epoch", "cell", "value"]]


def _tune_sweep(study: Study, trainable: Any) -> pd.DataFrame:
    """Every report of one Tune sweep of `trainable`, in the order of their clock `t`: the
    production sweep's TuneConfig, in a folder that lives as long as the sweep (nothing
    to resume, nothing to keep)."""
    from ray import tune

    from bench.search.run import records, sweep_tune_config

    with tempfile.TemporaryDirectory() as tmp:
        tuner = tune.Tuner(trainable, tune_config=sweep_tune_config(study, Path(tmp)),
                           run_config=tune.RunConfig(name="sweep", storage_path=tmp, verbose=0))
        frames = [rec.history.assign(trial=rec.trial) for rec in records(tuner.fit())]
    return pd.concat(frames, ignore_index=True).sort_values(["t", "trial"], ignore_index=True)
