"""The Ray Tune function trainable: one trial = one `Trainer`, one report per epoch.

Each report carries the epoch's metrics (train loss, `val_*` and test scores)
and a checkpoint of the full training state (`state.pt`, loadable with
weights_only=True), so a trial whose worker dies restarts from its last epoch.
A loss that turns NaN/inf ends the trial with `diverged=1` and its reason as
the last report; the sweep goes on.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch

from bench.config import Config
from bench.errors import TrainingDiverged
from bench.launch.stage import STAGED_ENV, parse_staged, restage
from bench.search.preempt import Preempt
from bench.search.spaces import Study, decode_params, trial_config

__all__ = ["run_trial", "trial_epochs", "STATE_FILE", "config_of_trial", "RUN_KEY", "METHOD_KEY",
           "SEED_KEY", "TRIAL_KEY", "CELL_KEY", "SET_KEY", "searched"]

STATE_FILE = "state.pt"
# Keys of a Tune config that are not searched parameters. Runs of a fixed list (baselines,
# confirmations, comparisons) come as a grid over RUN_KEY of dicts holding the others.
RUN_KEY = "__run"
METHOD_KEY = "__method"
SEED_KEY = "__seed"
TRIAL_KEY = "__trial"  # the sweep trial whose configuration a confirming run retrains
CELL_KEY = "__cell"    # an ablation cell's name ("dam+sam")
SET_KEY = "__set"      # dotted config overrides of a fixed run (an ablation cell's factors)


def searched(tune_config: Mapping[str, Any]) -> dict[str, Any]:
    """The searched values of a Tune config (Optuna's encoding), without the run keys."""
    return {k: v for k, v in tune_config.items() if not k.startswith("__")}


def config_of_trial(study: Study, tune_config: Mapping[str, Any]):
    """The Config a trial trains: searched values, or a baseline's method and seed."""
    tune_config = tune_config.get(RUN_KEY, tune_config)
    values = {**decode_params(study, searched(tune_config)), **(tune_config.get(SET_KEY) or {})}
    return trial_config(study, values, method=tune_config.get(METHOD_KEY),
                        seed=tune_config.get(SEED_KEY, study.seeds[0]))


def _scores(prefix: str, metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()}


def trial_epochs(cfg: Config, study: Study, *, state: dict[str, Any] | None = None,
                 should_stop: Callable[[], bool] | None = None
                 ) -> Iterator[tuple[dict[str, Any] | None, Any]]:
    """Train epoch by epoch: yields (result, save) where save(folder) writes the state.

    When `should_stop()` ends an epoch early it yields (None, state_dict) once and stops.

    The bare loop `bench.perf tune` times against the same loop inside Tune.
    """
    from bench.engine import Trainer, test_due

    t_setup = time.perf_counter()
    trainer = Trainer(cfg)
    if state is not None:
        trainer.load_state_dict(state)
    t_start = time.perf_counter()
    setup_s = t_start - t_setup  # data set and model built (not in wall_s)
    while trainer.epoch < cfg.train.epochs:
        try:
            stats = trainer.train_epoch(should_stop=should_stop)
        except TrainingDiverged as e:
            nan = {f"{study.objective.split}_{m}": math.nan for m in study.objective.metrics}
            yield {"epoch": trainer.epoch + 1, "diverged": 1, "reason": str(e), **nan}, None
            return
        if stats is None:  # asked to stop mid-epoch
            yield None, trainer.state_dict()
            return
        result: dict[str, Any] = {"epoch": trainer.epoch, "diverged": 0, "reason": "",
                                  "train_loss": stats["loss"], "epoch_s": stats["seconds"],
                                  "clips_per_s": stats["clips_per_s"], "lr": stats["lr"],
                                  "pid": os.getpid()}
        # the loss's parts and gradient probe (DSM: ce, dsc, ib, lambda_ce, lambda_sc, g,
        # pairs, grad_share_*, grad_cos_*), as bench.train's metrics.csv has them
        result.update({f"train_{k}": float(v) for k, v in stats.items()
                       if k not in ("loss", "seconds", "clips_per_s", "lr")})
        if trainer.val_loader is not None:
            result.update(_scores("val_", trainer.evaluate(split="val").metrics))
        if test_due(cfg, trainer.epoch):
            result.update(_scores("test_", trainer.evaluate().metrics))  # nothing picks by it
        result["wall_s"] = time.perf_counter() - t_start
        result["setup_s"] = setup_s

        def save(folder: Path) -> None:
            torch.save(trainer.state_dict(), Path(folder) / STATE_FILE)

        yield result, save


def run_trial(tune_config: dict[str, Any], *, study: Study) -> None:
    """Tune entry point (wrapped with tune.with_parameters by the sweep)."""
    entered = time.time()  # bench.perf tune splits a trial's fixed cost at this instant
    from ray import tune

    # sweep.sh --stage-data: read the node-local copy of the data root
    cfg = restage(config_of_trial(study, tune_config), parse_staged(os.environ.get(STAGED_ENV)))
    torch.set_num_threads(max(1, int(study.cpus_per_trial)))
    state = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=True)
    import ray

    node = ray.get_runtime_context().get_node_id()  # which Ray node ran it (multi-node runs)
    preempt = Preempt.from_env(tune.get_context().get_trial_id())
    if preempt is None:
        _report_epochs(trial_epochs(cfg, study, state=state), node, entered)
        return
    mid = preempt.newer_state(state)
    preempt.start()
    try:
        epochs = trial_epochs(cfg, study, state=mid or state, should_stop=preempt.requested)
        saved = _report_epochs(epochs, node, entered, resumed_batch=mid["batch"] if mid else 0,
                               after_report=preempt.clear)
        if saved is not None:  # the job ends soon: save mid-epoch, wait for the driver to stop
            preempt.save(saved)
            preempt.idle()
    finally:
        preempt.done()


def _report_epochs(epochs, node: str, entered: float, *, resumed_batch: int = 0,
                   after_report: Callable[[], None] = lambda: None) -> dict[str, Any] | None:
    """Report each epoch with its checkpoint; returns a mid-epoch state if one came."""
    from ray import tune

    for result, save in epochs:
        if result is None:
            return save
        if resumed_batch:  # the first epoch after a mid-epoch resume started at this batch
            result["resumed_batch"] = resumed_batch
            resumed_batch = 0
        result["node_id"] = node
        result["entered_at"] = entered
        result["reported_at"] = time.time()
        if save is None:  # diverged: the last report, no checkpoint
            tune.report(result)
            return None
        with tempfile.TemporaryDirectory() as d:
            save(Path(d))
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(d))
        after_report()
    return None
