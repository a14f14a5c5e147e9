"""Search efficiency: trial-epochs to get within 1 point WAR of the best known config.

Runs the same study (default: search_spaces/adamw.yaml, where trials learn on
2 CPUs; dsm.yaml is flat at chance at that budget; CLI overrides apply) as
real sweeps, Optuna TPE + ASHA against random search + FIFO, for several
seeds, all in one process and one Ray instance. "Best known" is the best
final objective any run of either method reached (or `--target`). For each
run, trial-epochs are counted in the order Tune received the reports (all
trials, early-stopped ones included) until the first report within
`--tolerance` of the target. Prints the median per method and the ratio
(goal: TPE+ASHA needs at most a third of random+FIFO's).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.config import read_yaml
from bench.errors import ConfigError
from bench.search.spaces import study_from_dict, with_base_sets

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"tpe+asha": ("tpe", "asha"), "random+fifo": ("random", "fifo")}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--space", default=str(ROOT / "search_spaces" / "adamw.yaml"))
    ap.add_argument("--trials", type=int, help="trials per sweep (default: the study's)")
    ap.add_argument("--seeds", default="0,1,2", help="searcher seeds (median over them)")
    ap.add_argument("--tolerance", type=float, default=0.01, help="WAR points / 100")
    ap.add_argument("--target", type=float, help="best known objective (default: best seen)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="base config overrides, e.g. --set train.epochs=3")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--method", help="base method instead of the space's (e.g. x3d_sam)")
    ap.add_argument("--startup-trials", type=int, help="TPE's random start (default: the space's)")
    ap.add_argument("--keep", metavar="DIR", help="keep the sweeps' run folders here (default: "
                    "a temporary folder, removed)")


def _study(args: argparse.Namespace, sampler: str, scheduler: str, seed: int):
    raw = with_base_sets(read_yaml(args.space), args.overrides)
    raw["search"] = {**(raw.get("search") or {}), "sampler": sampler, "seed": seed}
    if args.startup_trials is not None:
        raw["search"]["startup_trials"] = args.startup_trials
    raw["scheduler"] = {**(raw.get("scheduler") or {}), "name": scheduler}
    raw.update(concurrency=args.concurrency, baselines=[], seeds=[0])
    if args.trials is not None:
        raw["trials"] = args.trials
    if args.method:
        raw["base"]["method"] = args.method
    return study_from_dict(raw, name=f"perf-{sampler}-{scheduler}-{seed}", source=args.space)


def reports_in_order(run_dir: Path, objective: str) -> pd.DataFrame:
    """Every epoch report of every trial, in the order Tune received them."""
    from bench.search.run import phase_path

    rows = []
    for f in phase_path(run_dir, "sweep").glob("*/result.json"):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            rows.append({"trial": f.parent.name, "t": float(r["timestamp"]),
                         "value": float(r.get(objective, float("nan")))})
    return pd.DataFrame(rows).sort_values(["t", "trial"], ignore_index=True)


def epochs_to_reach(reports: pd.DataFrame, target: float, tolerance: float) -> int | None:
    """1-based count of trial-epochs spent when a report first comes within tolerance."""
    hit = (reports["value"] >= target - tolerance).to_numpy().nonzero()[0]
    return int(hit[0]) + 1 if len(hit) else None


def run(args: argparse.Namespace) -> int:
    from bench.engine import build_split
    from bench.search.run import init_ray, run_phase

    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 0,1,2") \
            from None
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        raise ConfigError(f"--keep {args.keep}: folder is not empty")
    init_ray(address=None, num_cpus=None, num_gpus=None)
    runs: dict[tuple[str, int], pd.DataFrame] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.keep).absolute() if args.keep else Path(tmp)
        for seed in seeds:  # both methods per seed, so drift on the machine hits both
            for name, (sampler, scheduler) in METHODS.items():
                study = _study(args, sampler, scheduler, seed)
                build_split(study.base_config(), "train")
                run_dir = d / study.name
                run_dir.mkdir(parents=True)
                t0 = time.perf_counter()
                run_phase(study, run_dir, "sweep", log=lambda m: None)
                runs[(name, seed)] = reports_in_order(run_dir, study.objective.reported[0])
                print(f"{name} seed {seed}: {len(runs[(name, seed)])} trial-epochs, best "
                      f"{runs[(name, seed)]['value'].max():.3f} ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    target = args.target if args.target is not None else \
        max(r["value"].max() for r in runs.values())
    print(f"target: {target:.3f} (within {args.tolerance:.3f})")
    medians = {}
    for name in METHODS:
        needed = [epochs_to_reach(runs[(name, s)], target, args.tolerance) for s in seeds]
        spent = [len(runs[(name, s)]) for s in seeds]
        # a run that never got there counts as "more than it spent" (its whole budget + 1)
        counted = [n if n is not None else b + 1 for n, b in zip(needed, spent)]
        medians[name] = statistics.median(counted)
        print(f"{name:<12} trial-epochs to target per seed: "
              f"{', '.join(str(n) if n is not None else f'>{b}' for n, b in zip(needed, spent))}"
              f"  median {medians[name]:g}")
    ratio = medians["tpe+asha"] / medians["random+fifo"]
    print(f"ratio tpe+asha / random+fifo: {ratio:.2f} (goal <= 0.33: "
          f"{'met' if ratio <= 1 / 3 else 'MISSED'})")
    return 0
