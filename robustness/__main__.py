"""`python -m robustness --run RUN_DIR`: stress-test a sweep's models, write RUN_DIR/robustness/.

    python -m robustness --run runs/sweep1                       # default suite (fast)
    python -m robustness --run runs/sweep1 --shifts all --severities all --seeds 0,1,2
    python -m robustness --run runs/sweep1 --shifts temporal --baseline x3d_ce-s1

Shifts: names, a family (style, temporal, camera), "default" or "all";
`python -m robustness --list` prints them. Every model in RUN_DIR/models.yaml
sees the same corrupted clips (paired); scores are against --baseline (default:
the manifest's first baseline).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from bench.cli import run_main
from bench.engine import resolve_device
from bench.errors import ConfigError
from bench.launch.slurm import add_arguments as slurm_arguments
from bench.launch.slurm import options_from_args as options_from_args_slurm
from bench.progress import Reporter
from robustness.device import choose_device
from robustness.imbalance import parse_ratios
from robustness.pipeline import SuiteOptions, stress_test, write_suite
from robustness.report import summary_text, verdict_text
from robustness.shifts import KINDS, SHIFTS, parse_severities, parse_shifts


def _seeds(text: str) -> list[int]:
    try:
        seeds = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds '{text}' must be comma-separated integers >= 0, e.g. 0,1,2")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m robustness", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--run", metavar="RUN_DIR", help="sweep run folder holding models.yaml")
    ap.add_argument("--shifts", default="default", help="comma list, a family, default or all")
    ap.add_argument("--severities", default="1,3,5", help="comma list of 1-5, or all")
    ap.add_argument("--seeds", default="0", help="corruption seeds, e.g. 0,1,2")
    ap.add_argument("--baseline", help="model the mCE is relative to (default: first baseline)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for gains")
    ap.add_argument("--imbalance", default="10,50,100",
                    help="long-tail ratios to re-score the clean predictions at, or off")
    ap.add_argument("--limit", type=int, help="score only the first N test clips (quick looks)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the device the models "
                                     "were trained on, if this machine has it)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--allow-outside", action="store_true",
                    help="read models whose models.yaml path leaves RUN_DIR")
    ap.add_argument("--list", action="store_true", help="print the registered shifts and exit")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--launcher", choices=["local", "slurm"], default="local",
                    help="slurm: a job array, one task per model x shift (results merged here)")
    slurm_arguments(ap)
    return ap


def options_from_args(args: argparse.Namespace) -> SuiteOptions:
    """Checked suite options from the CLI flags (one-line errors)."""
    if args.bootstrap < 1 or args.batch_size < 1 or any(
            v is not None and v < 1 for v in (args.limit, args.threads)):
        raise ConfigError("--bootstrap, --batch-size, --limit and --threads must be >= 1")
    slurm = options_from_args_slurm(args, job_name="robustness") \
        if args.launcher != "local" else None
    if args.device is not None and slurm is None:
        resolve_device(args.device)  # refused before anything is read
    elif args.device is not None:
        choose_device([], cuda=0, requested=args.device)  # the name; a task checks its node
    return SuiteOptions(shifts=tuple(parse_shifts(args.shifts)),
                        severities=tuple(parse_severities(args.severities)),
                        seeds=tuple(_seeds(args.seeds)), baseline=args.baseline,
                        bootstrap=args.bootstrap, imbalance=tuple(parse_ratios(args.imbalance)),
                        limit=args.limit, batch_size=args.batch_size, device=args.device,
                        launcher=args.launcher, slurm=slurm, allow_outside=args.allow_outside)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name in SHIFTS.names():
            doc = (SHIFTS.get(name).__doc__ or "").strip().split("\n")[0]
            print(f"{name:<20} {KINDS[name]:<9} {doc}")
        return 0
    if not args.run:
        raise ConfigError("--run RUN_DIR is required (a sweep run folder holding models.yaml)")
    opts = options_from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    rep = Reporter(quiet=args.quiet)
    with rep.task("robustness suite") as bar:
        out = stress_test(args.run, opts, progress=bar, log=rep.info,
                          warn=lambda m: print(f"warning: {m}", file=sys.stderr, flush=True))
    path = write_suite(args.run, out, {"argv": sys.argv})
    rep.result(verdict_text(out.verdicts))
    rep.result(summary_text(out.suite.results, out.scores, out.gain, opts.shifts, out.baseline))
    rep.result(f"\nwrote {path}{os.sep} (results.parquet/.csv, predictions.parquet, scores.csv, "
               f"gain.csv, suite.json, verdict.json) in {out.suite.seconds['total']:.0f} s")
    return 0


if __name__ == "__main__":
    run_main(main)
