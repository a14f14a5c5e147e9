"""Search efficiency: trial-epochs to get within 1 point WAR of the best known config.

Runs the same study (default: search_spaces/adamw.yaml, whose x3d_ce trials
learn on 2 CPUs, so there is a best worth finding; CLI overrides apply) as
real sweeps, Optuna TPE + ASHA against random search + FIFO, for several
seeds, all in one process and one Ray instance. "Best known": the top
`--confirm` configurations of all runs are trained again at `--confirm-seeds`
and the best mean of those fresh runs is the target (bench/hpo/best_known.py
says why; `--confirm 0`: the best single report; or `--target`). For each
run, trial-epochs are counted in the order Tune received the reports (all
trials, early-stopped ones included) until the first report within
`--tolerance` of the target. Prints the median per method and the ratio
(goal: TPE+ASHA needs at most a third of random+FIFO's), and, from the FIFO
runs (every trial runs every epoch), how well epoch k ranks the trials' final
values: what a sensible ASHA grace period is on this study.

With `--keep DIR` finished sweeps are kept and read again by a later call with
the same study (so a second ASHA setting reruns only the ASHA sweeps). Too few
real sweeps fit on 2 CPUs to settle the ratio under training-seed noise;
`bench.hpo replay` runs many replayed ones on a measured grid instead.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.config import read_yaml
from bench.errors import ConfigError
from bench.hpo.best_known import (
    best_mean, config_key, confirm_runs, final_values, run_confirm, seed_noise, top_configs)
from bench.hpo.flags import DEFAULT_SPACE, number_list
from bench.hpo.methods import METHODS, with_method
from bench.hpo.stats import median_bounds, median_text, rank_agreement, ratio_text
from bench.runs import atomic_write_text
from bench.search.spaces import decode_params, study_from_dict, with_base_sets


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--space", default=str(DEFAULT_SPACE))
    ap.add_argument("--trials", type=int, help="trials per sweep (default: the study's)")
    ap.add_argument("--seeds", default="0,1,2", help="searcher seeds (median over them)")
    ap.add_argument("--tolerance", type=float, default=0.01, help="WAR points / 100")
    ap.add_argument("--target", type=float, help="best known objective (default: --confirm's)")
    ap.add_argument("--confirm", type=int, default=3, metavar="K",
                    help="retrain the top K configurations at --confirm-seeds; the best mean "
                    "is the target (0: the best single report)")
    ap.add_argument("--confirm-seeds", default="1,2", help="training seeds of those reruns "
                    "(the sweeps train at seed 0)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="base config overrides, e.g. --set train.epochs=3")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--method", help="base method instead of the space's (e.g. x3d_sam)")
    ap.add_argument("--startup-trials", type=int, help="TPE's random start (default: the space's)")
    ap.add_argument("--grace-period", type=int, help="ASHA's grace period (default: the space's)")
    ap.add_argument("--keep", metavar="DIR", help="keep the sweeps' run folders here and reuse "
                    "finished ones (default: a temporary folder, removed)")


def _study_raw(args: argparse.Namespace, sampler: str, scheduler: str, seed: int) -> dict:
    raw = with_method(with_base_sets(read_yaml(args.space), args.overrides), sampler, scheduler,
                      seed, startup_trials=args.startup_trials, grace_period=args.grace_period)
    raw.update(concurrency=args.concurrency, baselines=[], seeds=[0])
    if args.trials is not None:
        raw["trials"] = args.trials
    if args.method:
        raw["base"]["method"] = args.method
    return raw


def _study(args: argparse.Namespace, sampler: str, scheduler: str, seed: int):
    raw = _study_raw(args, sampler, scheduler, seed)
    grace = f"-g{raw['scheduler'].get('grace_period', 1)}" if scheduler == "asha" else ""
    name = f"perf-{sampler}-{scheduler}{grace}-{seed}"
    return study_from_dict(raw, name=name, source=args.space), raw


def reports_in_order(run_dir: Path, objective: str) -> pd.DataFrame:
    """Every epoch report of every trial, in the order Tune received them."""
    from bench.search.run import phase_path

    rows = []
    for f in phase_path(run_dir, "sweep").glob("*/result.json"):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            rows.append({"trial": f.parent.name, "t": float(r["timestamp"]),
                         "epoch": int(r["epoch"]), "value": float(r.get(objective, float("nan"))),
                         "config": config_key(r.get("config") or {})})
    return pd.DataFrame(rows).sort_values(["t", "trial"], ignore_index=True)


def epochs_to_reach(reports: pd.DataFrame, target: float, tolerance: float) -> int | None:
    """1-based count of trial-epochs spent when a report first comes within tolerance."""
    hit = (reports["value"] >= target - tolerance).to_numpy().nonzero()[0]
    return int(hit[0]) + 1 if len(hit) else None


def _sweep(args, sampler: str, scheduler: str, seed: int, d: Path, kept: bool) -> pd.DataFrame:
    """The sweep's reports in order: run it, or read it from a kept folder of the same study."""
    from bench.engine import build_split
    from bench.search.run import run_phase

    study, raw = _study(args, sampler, scheduler, seed)
    run_dir = d / study.name
    done = run_dir / "reports.csv"
    if done.is_file():
        if read_yaml(run_dir / "study.yaml") != raw:
            raise ConfigError(f"--keep: {run_dir} holds another study (other options); "
                              "use another folder")
        reports = pd.read_csv(done)
        # written before reports carried the trial's configuration: the folder has it
        return reports if "config" in reports else reports_in_order(
            run_dir, study.objective.reported[0])
    shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished sweep from an interrupted call
    build_split(study.base_config(), "train")
    run_dir.mkdir(parents=True)
    atomic_write_text(run_dir / "study.yaml", yaml.safe_dump(raw, sort_keys=False))
    run_phase(study, run_dir, "sweep", log=lambda m: None)
    reports = reports_in_order(run_dir, study.objective.reported[0])
    if kept:
        atomic_write_text(done, reports.to_csv(index=False))
    return reports


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _confirmed_target(args, runs, d: Path, seeds: list[int], confirm_seeds: list[int]
                      ) -> tuple[float, float | None]:
    """Retrain the top configurations at other seeds: (best mean = target, seed noise)."""
    study, raw = _study(args, "random", "fifo", seeds[0])
    finals = final_values(runs.values(), study.epochs)
    configs = top_configs(finals, args.confirm)
    if not configs:
        raise ConfigError("no trial finished every epoch: nothing to confirm (give --target)")
    t0 = time.perf_counter()
    runs_again = confirm_runs(configs, confirm_seeds)
    table = run_confirm(study, raw, runs_again, d, bool(args.keep))
    try:
        best, mean, _ = best_mean(table)
    except ValueError as e:
        raise ConfigError(f"--confirm: {e} (give --target)") from None
    print(f"best known configuration: the top {len(configs)} configurations of all runs "
          f"trained again at seeds {args.confirm_seeds} ({time.perf_counter() - t0:.0f} s):")
    for c in configs:
        vals = table.loc[table["config"] == c, "value"]
        params = ", ".join(f"{k} {_fmt(v)}" for k, v in
                           decode_params(study, json.loads(c)).items())
        swept = finals.loc[finals["config"] == c, "value"].max()
        again = ", ".join(f"{v:.3f}" for v in vals)
        print(f"  {'*' if c == best else ' '} sweep {swept:.3f}, again {again}: "
              f"mean {vals.mean():.3f}  ({params})")
    noise = seed_noise(table)
    if noise is not None:
        print(f"training-seed noise: one configuration's fresh runs differ by a standard "
              f"deviation of {noise:.3f} (median over the {len(configs)} configurations)")
    return mean, noise


def run(args: argparse.Namespace) -> int:
    from bench.search.run import init_ray

    seeds = number_list("--seeds", args.seeds)
    if args.keep and Path(args.keep).exists() and not Path(args.keep).is_dir():
        raise ConfigError(f"--keep {args.keep}: not a folder")
    confirm_seeds = number_list("--confirm-seeds", args.confirm_seeds)  # fails now, not after sweeps
    if args.confirm < 0:
        raise ConfigError(f"--confirm {args.confirm}: give 0 or more configurations")
    init_ray(address=None, num_cpus=None, num_gpus=None)
    noise = None
    runs: dict[tuple[str, int], pd.DataFrame] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.keep).absolute() if args.keep else Path(tmp)
        for seed in seeds:  # both methods per seed, so drift on the machine hits both
            for name, (sampler, scheduler) in METHODS.items():
                t0 = time.perf_counter()
                r = runs[(name, seed)] = _sweep(args, sampler, scheduler, seed, d, bool(args.keep))
                print(f"{name} seed {seed}: {len(r)} trial-epochs, best {r['value'].max():.3f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if args.target is not None:
            target = args.target
        elif args.confirm == 0:
            target = max(r["value"].max() for r in runs.values())
        else:
            target, noise = _confirmed_target(args, runs, d, seeds, confirm_seeds)
    print(f"target: {target:.3f} (within {args.tolerance:.3f})")
    bounds = {}
    for name in METHODS:
        needed = [epochs_to_reach(runs[(name, s)], target, args.tolerance) for s in seeds]
        spent = [len(runs[(name, s)]) for s in seeds]
        bounds[name] = median_bounds(needed, spent)
        med = median_text(*bounds[name])
        print(f"{name:<12} trial-epochs to target per seed: "
              f"{', '.join(str(n) if n is not None else f'>{b}' for n, b in zip(needed, spent))}"
              f"  median {med} ({sum(n is not None for n in needed)} of {len(seeds)} reached it)")
    print(ratio_text(bounds["tpe+asha"], bounds["random+fifo"]))
    if noise is not None and noise > args.tolerance:
        print(f"caution: the tolerance ({args.tolerance:.3f}) is below the training-seed noise "
              f"({noise:.3f}): whether a sweep's single run comes within it of the target is "
              "mostly a lucky seed, and more trials alone need not settle the ratio")
    agree = pd.concat([rank_agreement(runs[("random+fifo", s)]) for s in seeds], axis=1)
    if len(agree):
        print("does epoch k rank the trials as their last epoch does? Spearman (FIFO runs, "
              "median over seeds): " + ", ".join(
                  f"k={k} {v:+.2f}" for k, v in agree.median(axis=1).items()))
    return 0
