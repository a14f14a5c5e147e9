"""A replayed sweep on a virtual clock: Tune's own searcher and scheduler, no Ray runtime.

`bench.hpo replay --engine tune` runs each replayed sweep as a real Tune
experiment whose trials sleep a little per epoch; which trial reports first
then depends on timing, so a TPE + ASHA sweep gives a different count each
time it is run (one seed found the best cell at 114, then at 383), and
30 seeds take half an hour. Here the same objects decide, in the order Tune's
controller (ray.tune's TuneController) calls them: the sweep's OptunaSearch (its
sampler, seed and journal) behind a ConcurrencyLimiter, and its ASHA or FIFO
scheduler. Every trial-epoch lasts one tick; `concurrency` trials run at once;
a trial that stops frees its slot for the next suggestion at once; reports
that fall on the same tick go in trial order. So a seed's count is a
function of the seed (in one environment: the same seeds can give other TPE sweeps
with another venv and machine), a sweep takes seconds, and a thousand seeds take minutes.
What it leaves out is Tune's timing: start-up costs and uneven epochs.
"""
from __future__ import annotations

import heapq
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pandas as pd

from bench.search.spaces import Study

__all__ = ["simulate_sweep"]

# (tune_config) -> (cell, curve): the trial's cell and the stored curve it replays
Pick = Callable[[dict[str, Any]], tuple[str, list[float]]]


def simulate_sweep(study: Study, pick: Pick) -> pd.DataFrame:
    """Every report (trial, t, epoch, cell, value) of one sweep, in the order Tune gets them."""
    from ray.tune.result import TRAINING_ITERATION
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import ConcurrencyLimiter

    from bench.search.run import JOURNAL, asha_scheduler, optuna_searcher

    metric, epochs = study.objective.reported[0], study.epochs
    scheduler = asha_scheduler(study, epochs)
    rows: list[tuple[int, float, int, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        searcher = ConcurrencyLimiter(optuna_searcher(study, Path(tmp) / JOURNAL),
                                      max_concurrent=study.concurrency)
        running: list[tuple[float, int]] = []  # heap of (time of the next report, trial)
        trials: dict[int, SimpleNamespace] = {}
        started = 0

        def start(now: float) -> None:
            nonlocal started
            while started < study.trials and len(running) < study.concurrency:
                tid = f"sim_{started:05d}"
                config = searcher.suggest(tid)
                if config is None:  # the limiter's cap, which equals ours: not reached
                    return
                cell, curve = pick(config)
                trials[started] = SimpleNamespace(trial_id=tid, cell=cell, curve=curve, epoch=0)
                scheduler.on_trial_add(None, trials[started])
                heapq.heappush(running, (now + 1.0, started))
                started += 1

        start(0.0)
        while running:
            now, n = heapq.heappop(running)
            trial = trials[n]
            trial.epoch += 1
            value = trial.curve[trial.epoch - 1]
            rows.append((n, now, trial.epoch, trial.cell, value))
            result = {"epoch": trial.epoch, metric: value, TRAINING_ITERATION: trial.epoch,
                      "trial_id": trial.trial_id}
            decision = scheduler.on_trial_result(None, trial, result)
            if decision != TrialScheduler.STOP:
                searcher.on_trial_result(trial.trial_id, result)
            if decision == TrialScheduler.STOP or trial.epoch == len(trial.curve):
                scheduler.on_trial_complete(None, trial, result)
                searcher.on_trial_complete(trial.trial_id, result=result)
                start(now)
            else:
                heapq.heappush(running, (now + 1.0, n))
    return pd.DataFrame(rows, columns=["trial", "t", "epoch", "cell", "value"])
