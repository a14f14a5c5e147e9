"""Ray Tune's overhead: the same training loops bare and as a sweep's Tune trials, one process.

A trial is the sweep's own (`trial_epochs` inside `run_trial`: per-epoch val +
test evaluation, a checkpoint per epoch, one report per epoch), sized to about
a minute on one thread. `--trials` of them run one after another as one Tune
experiment (actors reused, as in a sweep) and as bare loops in this process.
Ratio = Tune wall time / bare wall time (goal <= 1.10); fixed cost per trial =
the difference / trials, split into the first trial's start (Tuner set-up, a
fresh Ray worker importing torch) and the later trials' hand-over. Ray start-up
is printed apart (once per sweep). Order: bare, Tune, bare, so drift hits both.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from bench.search.spaces import study_from_dict, trial_config

ROOT = Path(__file__).resolve().parents[2]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--epochs", type=int, default=10, help="epochs per trial (10: about a minute)")
    ap.add_argument("--trials", type=int, default=3, help="trials per Tune run, one at a time")
    ap.add_argument("--rounds", type=int, default=1, help="Tune runs (bare runs: rounds + 1)")
    ap.add_argument("--method", default="x3d_ce")


def _study(args: argparse.Namespace):
    raw = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    raw["base"] = {"method": args.method,
                   "set": {"data.preset": "ci", "data.num_frames": 8, "data.size": 64,
                           "data.batch_size": 8, "train.epochs": args.epochs}}
    raw.update(trials=1, concurrency=1, baselines=[], resources={"cpu": 1, "gpu": 0},
               params={"optim.weight_decay": {"type": "uniform", "low": 0.04, "high": 0.06}})
    return study_from_dict(raw, name="perf-tune", source="perf tune")


def _bare(study) -> float:
    from bench.search.trainable import trial_epochs

    torch.set_num_threads(1)
    cfg = trial_config(study, {}, method=study.method, seed=0)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for _, save in trial_epochs(cfg, study):
            save(Path(d))
    return time.perf_counter() - t0


def _tuned(study, runs_dir: Path, k: int, trials: int) -> tuple[float, list[float], list[float]]:
    """Wall time of one Tune run of `trials` trials; per trial: when it started and last reported."""
    from bench.search.run import records, run_phase
    from bench.search.trainable import METHOD_KEY, SEED_KEY

    run_dir = runs_dir / f"round{k}"
    run_dir.mkdir()
    t0 = time.time()
    grid = run_phase(study, run_dir, "baselines", log=lambda m: None,
                     runs=[{METHOD_KEY: study.method, SEED_KEY: s} for s in range(trials)])
    wall = time.time() - t0
    recs = records(grid)
    for rec in recs:
        if rec.error:
            raise RuntimeError(rec.error)
    starts = [float(r.history["entered_at"].iloc[0]) - t0 for r in recs]
    ends = [float(r.history["reported_at"].iloc[-1]) - t0 for r in recs]
    return wall, starts, ends


def run(args: argparse.Namespace) -> int:
    from bench.engine import build_split
    from bench.search.run import init_ray

    study = _study(args)
    build_split(study.base_config(), "train")  # data generated before timing
    t0 = time.perf_counter()
    init_ray(address=None, num_cpus=2, num_gpus=0)
    ray_start = time.perf_counter() - t0
    bare, tuned, first, handover = [_bare(study)], [], [], []
    with tempfile.TemporaryDirectory() as d:
        for k in range(args.rounds):
            wall, starts, ends = _tuned(study, Path(d), k, args.trials)
            tuned.append(wall)
            first.append(starts[0])
            handover += [s - e for e, s in zip(ends, starts[1:])]
            bare.append(_bare(study))
    n = args.trials
    b, t = n * statistics.median(bare), statistics.median(tuned)
    print(f"trial: {args.method}, {args.epochs} epochs on the ci synthetic set, 8x64x64, 1 thread; "
          f"{n} trials one after another")
    print(f"bare loops       {b:7.1f} s   ({n} x median of {', '.join(f'{x:.1f}' for x in bare)})")
    print(f"as Tune trials   {t:7.1f} s   (runs: {', '.join(f'{x:.1f}' for x in tuned)})")
    print(f"ratio Tune/bare  {t / b:7.3f}   (goal <= 1.10: {'met' if t / b <= 1.10 else 'MISSED'})")
    print(f"fixed cost per trial {(t - b) / n:5.1f} s: first trial starts after "
          f"{statistics.median(first):.1f} s (Tuner, fresh worker, imports); later trials "
          f"{statistics.median(handover) if handover else float('nan'):.1f} s after the one "
          f"before ended (reused actor)")
    print(f"Ray start-up (once per sweep) {ray_start:.1f} s")
    return 0
