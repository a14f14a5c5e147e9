"""Run a study with Ray Tune + OptunaSearch (+ ASHA), then its baselines.

Two Tune experiments live in the run folder, `tune/sweep` and `tune/baselines`;
both are restored (not restarted) when they exist, which is what `--resume`
does after a killed driver: Tune's experiment state is saved after every
controller step, so finished trials are never rerun and running ones restart
from their last epoch checkpoint. The Optuna study is stored in
`optuna.journal` (optuna-dashboard opens it).
"""
from __future__ import annotations

import os
import re
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.cli import keeps_stop_signals
from bench.errors import ConfigError
from bench.launch.command import check_ray_address
from bench.search.spaces import DefineByRun, Study
from bench.search.gpus import trial_gpus
from bench.search.trainable import (CELL_KEY, METHOD_KEY, RUN_KEY, SEED_KEY, TRIAL_KEY,
                                   run_trial)

__all__ = ["init_ray", "run_phase", "SweepInterrupted", "widen", "check_resources", "records",
           "baseline_runs", "TrialRecord", "JOURNAL", "RUNGS", "phase_path",
           "optuna_searcher", "asha_scheduler", "sweep_searcher", "sweep_scheduler",
           "sweep_tune_config"]

JOURNAL = "optuna.journal"
RUNGS = "rungs.json"  # the ordered halving's rung values, beside the sweep's Tune experiment
Log = Callable[[str], None]


class SweepInterrupted(Exception):
    """The driver was asked to stop (SIGINT/SIGTERM); the run folder can be resumed."""


def phase_path(run_dir: Path, phase: str) -> Path:
    return run_dir / "tune" / phase


@keeps_stop_signals
def init_ray(*, address: str | None, num_cpus: int | None, num_gpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our own progress lines, not Tune's tables
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                  configure_logging=True, logging_level="ERROR")
    if address:
        if address not in ("auto", "local") and not address.startswith("ray://"):
            check_ray_address(address)  # fail in seconds, not minutes
        token = Path.home() / ".ray" / "auth_token"
        if token.is_file():  # `ray start --head` turned token authentication on
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        kwargs.pop("include_dashboard")
        try:
            ray.init(address=address, **kwargs)
        except Exception as e:  # ConnectionError, RuntimeError, auth errors
            raise ConfigError(f"cannot join the Ray cluster at {address}: "
                              f"{str(e).splitlines()[0]}") from None
    else:
        _init_loopback(ray, num_cpus=num_cpus or os.cpu_count(), num_gpus=num_gpus, **kwargs)


def _init_loopback(ray: Any, **kwargs: Any) -> None:
    """Start a local Ray whose node address is 127.0.0.1, so no sweep traffic leaves loopback.

    `ray.init(_node_ip_address="127.0.0.1")` alone is not enough: Ray swaps a
    loopback address for the machine's routable one unless it believes clusters
    are off (its Windows/macOS mode), which only changes that choice.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(_node_ip_address="127.0.0.1", **kwargs)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


class _Progress:
    """A Tune callback printing one line per epoch and per finished trial."""

    def __new__(cls, log: Log, epochs: int, objective: str, runs_label: str):
        from ray.tune import Callback

        def label(trial) -> str:
            run = trial.config.get(RUN_KEY) or {}
            if CELL_KEY in run:
                return f"{run[CELL_KEY]} (seed {run.get(SEED_KEY, 0)})"
            if METHOD_KEY in run:
                return f"{run[METHOD_KEY]} (seed {run.get(SEED_KEY, 0)})"
            if TRIAL_KEY in run:
                return f"{run[TRIAL_KEY]}'s config (seed {run.get(SEED_KEY, 0)})"
            if run:
                return f"{runs_label} (seed {run.get(SEED_KEY, 0)})"
            return trial_name(trial.experiment_tag)

        class Lines(Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                if result.get("diverged"):
                    log(f"  {label(trial)} diverged: {result.get('reason')}")
                    return
                scores = [(name, result[key]) for name, key in ((objective, objective),
                                                                ("test WAR", "test_war"))
                          if key in result and not (name == "test WAR" and key == objective)
                          and result[key] == result[key]]  # nan: not scored this epoch
                text = "".join(f"{name} {v:.3f}  " for name, v in scores)
                log(f"  {label(trial)} epoch {result.get('epoch')}/{epochs}  {text}"
                    f"({result.get('epoch_s', 0):.0f}s)")

            def on_trial_error(self, iteration, trials, trial, **info):
                log(f"  {label(trial)} failed ({trial.num_failures} failure(s))")

        return Lines()


def trial_name(experiment_tag: str) -> str:
    """Tune's experiment tag "3_loss.tau=..." (1-based creation order) -> "t003"."""
    head = str(experiment_tag).split("_", 1)[0]
    return f"t{int(head):03d}" if head.isdigit() else f"t{head}"


def _tag_of_path(path: str) -> str:
    """A trial folder "run_trial_4e8a1912_3_loss.tau=..." -> its experiment tag."""
    m = re.search(r"_[0-9a-f]{5,}_(\d+)(?:_|$)", Path(path).name)
    return m.group(1) if m else Path(path).name


def optuna_searcher(study: Study, storage_path: Path):
    """Ray's OptunaSearch for the study (TPE or random, seeded), journal at `storage_path`."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if study.searcher.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=study.searcher.seed,
                                             n_startup_trials=study.searcher.startup_trials,
                                             multivariate=True, group=True)
    else:
        sampler = optuna.samplers.RandomSampler(seed=study.searcher.seed)
    storage = JournalStorage(JournalFileBackend(str(storage_path)))
    obj = study.objective
    metric = obj.reported if len(obj.reported) > 1 else obj.reported[0]
    mode = list(obj.modes) if len(obj.modes) > 1 else obj.modes[0]
    return OptunaSearch(space=DefineByRun(study.params), metric=metric, mode=mode,
                        sampler=sampler, study_name=study.name, storage=storage)


def asha_scheduler(study: Study, epochs: int):
    """Ray's ASHA (or FIFO): what `bench.hpo replay --engine sim` measures searchers with."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if study.scheduler.name == "fifo" or epochs <= study.scheduler.grace_period:
        return FIFOScheduler()
    return ASHAScheduler(time_attr="epoch", metric=study.objective.reported[0],
                         mode=study.objective.modes[0], max_t=epochs,
                         grace_period=study.scheduler.grace_period,
                         reduction_factor=study.scheduler.reduction_factor)


def sweep_searcher(study: Study, storage_path: Path):
    """The sweep's searcher: OptunaSearch behind the ordering rule (bench/search/ordered.py)."""
    from bench.search.ordered import OrderedSearcher

    return OrderedSearcher(optuna_searcher(study, storage_path), concurrency=study.concurrency,
                           total=study.trials, epochs=study.epochs,
                           metrics=study.objective.reported)


def sweep_scheduler(study: Study, epochs: int, state_path: Path):
    """The sweep's early stopping: ordered successive halving, or none (FIFO)."""
    from ray.tune.schedulers import FIFOScheduler

    from bench.search.ordered import OrderedHalving

    if study.scheduler.name == "fifo" or epochs <= study.scheduler.grace_period:
        return FIFOScheduler()
    return OrderedHalving(metric=study.objective.reported[0], mode=study.objective.modes[0],
                          max_t=epochs, grace_period=study.scheduler.grace_period,
                          reduction_factor=study.scheduler.reduction_factor,
                          concurrency=study.concurrency, state_path=state_path)


def sweep_tune_config(study: Study, run_dir: Path):
    """The sweep phase's TuneConfig: `study.trials` trials from the ordered searcher, stopped by
    the ordered halving, `study.concurrency` at a time. Public so that a replayed sweep
    (`bench.hpo replay --engine tune`) runs under the very rules a real one does."""
    from ray import tune

    return tune.TuneConfig(
        search_alg=sweep_searcher(study, run_dir / JOURNAL),
        scheduler=sweep_scheduler(study, study.epochs, phase_path(run_dir, "sweep") / RUNGS),
        num_samples=study.trials, max_concurrent_trials=study.concurrency, reuse_actors=True)


def _runs_label(phase: str) -> str:
    """What the progress lines call a run of a fixed list that has no method or trial: the
    best configuration at its extra seeds in "baselines", else a run of the phase."""
    return "best config" if phase == "baselines" else f"{phase} run"


def _trainable(study: Study):
    from ray import tune

    fn = tune.with_parameters(run_trial, study=study)
    resources = {"cpu": study.cpus_per_trial, "gpu": _gpus(study)}
    return tune.with_resources(fn, resources)


def run_phase(study: Study, run_dir: Path, phase: str, *, log: Log,
              runs: list[dict[str, Any]] | None = None):
    """Run (or restore and finish) one Tune experiment; returns its ResultGrid.

    phase "sweep": `study.trials` trials from the searcher. Any other phase
    ("baselines", "confirm", ...): one trial per entry of `runs` ({"__method",
    "__seed", searched values}), FIFO.
    """
    from ray import tune

    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "0"  # save experiment state after every step
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    run_dir = Path(run_dir).resolve()  # Tune's storage needs an absolute path (a URI otherwise)
    path = phase_path(run_dir, phase)
    epochs = study.epochs
    objective = study.objective.reported[0]
    run_config = tune.RunConfig(
        name=phase, storage_path=str(run_dir / "tune"), verbose=0,
        failure_config=tune.FailureConfig(max_failures=study.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[_Progress(log, epochs, objective, _runs_label(phase))])
    trainable = _trainable(study)
    # reuse_actors: one Ray worker (torch and the data code imported) serves trial after trial;
    # a fresh one costs seconds per trial (`python -m bench.perf tune`).
    if phase == "sweep":
        tune_config = sweep_tune_config(study, run_dir)
        param_space: dict[str, Any] = {}
    else:
        tune_config = tune.TuneConfig(num_samples=1, max_concurrent_trials=study.concurrency,
                                      reuse_actors=True)
        param_space = {RUN_KEY: tune.grid_search(runs or [])}
    if tune.Tuner.can_restore(str(path)):
        log(f"resuming {phase} from {path}")
        tuner = tune.Tuner.restore(str(path), trainable=trainable, param_space=param_space or None,
                                   resume_unfinished=True, resume_errored=True,
                                   restart_errored=False)
    else:
        tuner = tune.Tuner(trainable, param_space=param_space, tune_config=tune_config,
                           run_config=run_config)
    stop = {"flag": False}

    def on_term(signum, frame):  # SLURM's pre-emption signal arrives as SIGTERM/SIGUSR1
        stop["flag"] = True
        os.kill(os.getpid(), signal.SIGINT)  # Tune's own handler saves state and stops
        _exit_if_stuck(signum, run_dir)

    old = {s: signal.signal(s, on_term) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        grid = tuner.fit()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if stop["flag"] or _interrupted(grid):
        raise SweepInterrupted(f"{phase} interrupted; finish it with the same command's "
                               f"--resume {run_dir}")
    return grid


STOP_GRACE_S = 60.0


def _exit_if_stuck(signum: int, run_dir: Path) -> None:
    """Leave anyway if Tune cannot stop in time.

    A signal sent to the whole process group (`kill -- -PGID`, some job
    schedulers) also ends Ray's own processes, and Tune then waits on them for
    ever. Its state is saved after every step, so the run still resumes.
    """
    import sys
    import threading

    def leave() -> None:
        print(f"error: stopping took over {STOP_GRACE_S:.0f} s (Ray's processes were stopped "
              f"too); finish it with the same command's --resume {run_dir}", file=sys.stderr,
              flush=True)
        os._exit(128 + signum)

    timer = threading.Timer(STOP_GRACE_S, leave)
    timer.daemon = True
    timer.start()


def _interrupted(grid) -> bool:
    """Tune stopped early (SIGINT) when a trial is neither terminated nor errored.

    By status, not by a result's `done` flag: a trial that finished just before
    a killed driver's last save is restored terminated with `done` still false.
    """
    return grid.num_terminated + grid.num_errors < len(grid)


@dataclass
class TrialRecord:
    """What the trials table needs of one Tune result."""

    trial: str
    config: dict[str, Any]
    history: Any            # DataFrame of every report
    error: str
    checkpoint: Path | None
    path: Path


def records(grid) -> list[TrialRecord]:
    out = []
    for r in grid:
        df = r.metrics_dataframe
        err = "" if r.error is None else str(r.error).strip().splitlines()[-1][:500]
        ck = Path(r.checkpoint.path) if r.checkpoint is not None else None
        out.append(TrialRecord(trial_name(_tag_of_path(r.path)), dict(r.config or {}), df, err, ck,
                               Path(r.path)))
    return sorted(out, key=lambda t: t.trial)


def widen(study: Study, n_runs: int) -> Study:
    """Runs of a fixed list go FIFO with nothing after them: spread the idle CPUs over them."""
    import dataclasses

    import ray

    if _gpus(study):
        return study
    cpus = int(ray.cluster_resources().get("CPU", 1))
    per = max(study.cpus_per_trial, float(cpus // max(1, min(n_runs, study.concurrency))))
    return dataclasses.replace(study, cpus_per_trial=per)


def _gpus(study: Study) -> float:
    """GPUs per trial on the running Ray cluster (resources.gpu may say "auto")."""
    import ray

    return trial_gpus(study.gpus_per_trial, ray.cluster_resources().get("GPU", 0))[0]


def check_resources(study: Study) -> Study:
    """A trial that asks for more than the cluster has would wait forever: refuse it now.

    Returns the study with its GPUs per trial resolved ("auto" -> a number); a study
    that leaves a GPU cluster's GPUs idle gets one warning line on stderr.
    """
    import dataclasses
    import sys

    import ray

    have = ray.cluster_resources()
    gpus, warning = trial_gpus(study.gpus_per_trial, have.get("GPU", 0))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    study = dataclasses.replace(study, gpus_per_trial=gpus)
    for key, need, flag in (("CPU", study.cpus_per_trial, "--cpus-per-trial"),
                            ("GPU", study.gpus_per_trial, "--gpus-per-trial")):
        if need > have.get(key, 0):
            raise ConfigError(f"each trial asks for {need:g} {key} but the Ray cluster has "
                              f"{have.get(key, 0):g}; lower it with {flag}")
    return study


def baseline_runs(study: Study, best_values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Baselines x seeds, plus the best HDF config at the extra seeds."""
    runs = [{METHOD_KEY: m, SEED_KEY: s} for m in study.baselines for s in study.seeds]
    if best_values is not None:
        runs += [{**best_values, SEED_KEY: s} for s in study.seeds[1:]]
    return runs
