"""Robustness suite cost: corruption time / model time in one run, and the default suite's wall time.

Goal: corrupting a clip costs <= 25 % of running the models on it,
and the whole default suite (data + models + every default shift, severities
1,3,5, scores and bootstrap) takes <= 3 minutes on 2 cores for 3-4 tiny models
on the default synthetic test split (318 clips, 8x64x64). Weights are untrained:
the cost of a forward pass does not depend on them.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench.cli import positive_int
from bench.config import load_config
from bench.engine import build_split, model_from_config


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--methods", default="hdf,x3d_ce,x3d_ce",
                    help="one tiny model per method (default: an HDF model and two baselines)")
    ap.add_argument("--preset", default="default", help="synthetic preset of the test split")
    ap.add_argument("--shifts", default="default", help="as python -m robustness --shifts")
    ap.add_argument("--severities", default="1,3,5")
    ap.add_argument("--limit", type=int, help="first N test clips only")
    ap.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from robustness.scores import corruption_scores, gains
    from robustness.shifts import parse_severities, parse_shifts
    from robustness.suite import run_suite

    if args.threads:
        torch.set_num_threads(args.threads)
    shifts, severities = parse_shifts(args.shifts), parse_severities(args.severities)
    t0 = time.perf_counter()
    models, roles = {}, {}
    for i, method in enumerate(m.strip() for m in args.methods.split(",") if m.strip()):
        cfg = load_config(method=method, overrides=[f"data.preset={args.preset}"])
        torch.manual_seed(i)
        name = f"{method}-{i}"
        models[name] = model_from_config(cfg).eval()
        roles[name] = "hdf" if method == "hdf" else "baseline"
    data = build_split(cfg, "test")
    if args.limit:
        data.records = data.records[:args.limit]
    t_data = time.perf_counter() - t0
    suite = run_suite(models, data, shifts=shifts, severities=severities, roles=roles)
    t1 = time.perf_counter()
    baseline = next((m for m, r in roles.items() if r == "baseline"), None)
    corruption_scores(suite.results, shifts, baseline)
    gains(suite.predictions, roles, shifts, n_boot=1000)
    t_scores = time.perf_counter() - t1
    wall = time.perf_counter() - t0
    s = suite.seconds
    n_clip_conds = s["clips"] * (s["conditions"] - 1)  # corrupted passes only
    print(f"torch threads {torch.get_num_threads()}; {len(models)} models "
          f"({', '.join(models)}), {int(s['clips'])} clips "
          f"{data.num_frames}x{data.size}x{data.size}, {len(shifts)} shifts x "
          f"{len(severities)} severities + clean = {int(s['conditions'])} passes")
    print(f"  corrupting        {s['corrupt']:7.1f} s  ({1000 * s['corrupt'] / n_clip_conds:.2f} ms per clip)")
    print(f"  models            {s['model']:7.1f} s  "
          f"({1000 * s['model'] / (s['clips'] * s['conditions'] * len(models)):.2f} ms per clip per model)")
    print(f"  data + models     {t_data:7.1f} s;  scores + bootstrap {t_scores:.1f} s")
    ratio = s["corrupt"] / s["model"]
    print(f"  ratio corrupt / model   {ratio:5.2f}  (goal <= 0.25: {'met' if ratio <= 0.25 else 'missed'})")
    print(f"  default suite wall time {wall:5.0f} s  (goal <= 180 s: {'met' if wall <= 180 else 'missed'})")
    return 0
