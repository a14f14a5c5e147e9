"""Ray Tune's overhead: the same training loop bare and as a Tune trial, one process.

The trial is the sweep's own (`trial_epochs` inside `run_trial`: per-epoch
val + test evaluation, a checkpoint per epoch, one report per epoch), sized to
about a minute on one thread. Ratio = Tune trial wall time / bare loop wall
time (goal <= 1.10); fixed cost per trial = the difference; Ray start-up is
printed apart (once per sweep, not per trial). Order: bare, Tune, bare, ...
so drift hits both.
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
    ap.add_argument("--epochs", type=int, default=6, help="epochs of the timed trial")
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


def _tuned(study, runs_dir: Path, k: int) -> tuple[float, float]:
    from bench.search.run import records, run_phase
    from bench.search.trainable import METHOD_KEY, SEED_KEY

    run_dir = runs_dir / f"round{k}"
    run_dir.mkdir()
    t0 = time.perf_counter()
    grid = run_phase(study, run_dir, "baselines", log=lambda m: None,
                     runs=[{METHOD_KEY: study.method, SEED_KEY: 0}])
    wall = time.perf_counter() - t0
    rec = records(grid)[0]
    if rec.error:
        raise RuntimeError(rec.error)
    return wall, float(rec.history["wall_s"].iloc[-1])


def run(args: argparse.Namespace) -> int:
    from bench.engine import build_split
    from bench.search.run import init_ray

    study = _study(args)
    build_split(study.base_config(), "train")  # data generated before timing
    t0 = time.perf_counter()
    init_ray(address=None, num_cpus=2, num_gpus=0)
    ray_start = time.perf_counter() - t0
    bare, tuned, inside = [_bare(study)], [], []
    with tempfile.TemporaryDirectory() as d:
        for k in range(args.rounds):
            wall, loop = _tuned(study, Path(d), k)
            tuned.append(wall)
            inside.append(loop)
            bare.append(_bare(study))
    b, t = statistics.median(bare), statistics.median(tuned)
    print(f"trial: {args.method}, {args.epochs} epochs on the ci synthetic set, 8x64x64, 1 thread")
    print(f"bare loop        {b:7.1f} s   (runs: {', '.join(f'{x:.1f}' for x in bare)})")
    print(f"as a Tune trial  {t:7.1f} s   (runs: {', '.join(f'{x:.1f}' for x in tuned)}; "
          f"loop inside the worker {statistics.median(inside):.1f} s)")
    print(f"ratio Tune/bare  {t / b:7.3f}   (goal <= 1.10: {'met' if t / b <= 1.10 else 'MISSED'})")
    print(f"fixed cost per trial {t - b:5.1f} s; Ray start-up (once per sweep) {ray_start:.1f} s")
    return 0
