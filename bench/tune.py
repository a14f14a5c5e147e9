"""`python -m bench.tune --space search_spaces/dsm.yaml`: tune HDF, train baselines, judge.

    python -m bench.tune --space search_spaces/dsm.yaml              # local Ray, all cores
    python -m bench.tune --space search_spaces/hdf.yaml --trials 40 --gpus-per-trial 0.25
    python -m bench.tune --space search_spaces/sam.yaml --confirm 3  # retrain the top 3 first
    python -m bench.tune --space search_spaces/sam.yaml --address 10.0.0.5:6379
    python -m bench.tune --resume runs/dsm-20261123-101500          # after a crash or kill

    study file + CLI flags -> Study -> run folder (bench/runfolder.py)
        -> bench.search.sweep.run_sweep (sweep [-> confirm] -> baselines -> models/)
        -> summary.json -> bench.finish.finish_run (robustness suite, verdict, report)
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from bench.cli import run_main
from bench.config import read_yaml
from bench.errors import ConfigError
from bench.launch.session import log_line as _log
from bench.launch.session import run_arguments
from bench.runfolder import JOURNAL, REPORT, STUDY, TRIALS, write_summary
from bench.search.spaces import with_base_sets

__all__ = ["main", "build_parser"]


def _apply_cli(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags override the study file; the result is what study.yaml stores."""
    raw = dict(raw)
    for key in ("trials", "concurrency"):
        if getattr(args, key) is not None:
            raw[key] = getattr(args, key)
    res = dict(raw.get("resources") or {})
    if args.cpus_per_trial is not None:
        res["cpu"] = args.cpus_per_trial
    if args.gpus_per_trial is not None:
        res["gpu"] = args.gpus_per_trial
    if res:
        raw["resources"] = res
    if args.confirm is not None:
        if args.confirm < 1:
            raise ConfigError(f"--confirm {args.confirm}: give the number of top configurations "
                              "to retrain (>= 1), or --no-confirm")
        raw["confirm"] = {**(raw.get("confirm") or {}), "top": args.confirm}
    if args.no_confirm:
        raw.pop("confirm", None)
    if args.overrides:
        raw = with_base_sets(raw, args.overrides)
    return raw


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--space", help="study YAML (see search_spaces/)")
    src.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted sweep")
    ap.add_argument("--trials", type=int, help="number of trials (overrides the study)")
    ap.add_argument("--concurrency", type=int, help="trials at a time (overrides the study)")
    ap.add_argument("--cpus-per-trial", type=float)
    ap.add_argument("--gpus-per-trial", help="a number (fractions allowed, e.g. 0.25) or auto: 1 per trial where the cluster has GPUs, else 0")
    conf = ap.add_mutually_exclusive_group()
    conf.add_argument("--confirm", type=int, metavar="K",
                      help="retrain the top K configurations at fresh seeds and crown the best "
                           "mean (overrides the study's confirm.top)")
    conf.add_argument("--no-confirm", action="store_true",
                      help="crown the best single trial, even if the study confirms")
    run_arguments(ap)
    return ap


def _study(args: argparse.Namespace):
    """(raw study as stored, Study, run folder) from --space + flags, or from --resume."""
    from bench.search.spaces import study_from_dict

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / STUDY).is_file():
            raise ConfigError(f"{run_dir} is not a sweep run folder (no {STUDY})")
        raw = read_yaml(run_dir / STUDY)
        return raw, study_from_dict(raw, name=run_dir.name, source=str(run_dir / STUDY)), run_dir
    if not Path(args.space).is_file():
        raise ConfigError(f"search space file not found: {args.space}")
    raw = _apply_cli(read_yaml(args.space), args)
    name = args.name or f"{Path(args.space).stem}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    return raw, study_from_dict(raw, name=name, source=str(args.space)), Path(args.out) / name


def _train(study, run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Ray up, data generated once, the sweep's phases; summary.json written."""
    from bench.engine import build_split
    from bench.search.run import check_resources, init_ray
    from bench.search.sweep import run_sweep

    build_split(study.base_config(), "train")  # generate/check the data once, not per trial
    init_ray(address=args.address, num_cpus=args.cpus, num_gpus=args.gpus)
    study = check_resources(study)
    summary = run_sweep(study, run_dir, log=_log)
    write_summary(run_dir, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from bench.finish import finish_run
    from bench.launch.session import guarded, hand_off, new_run_folder
    from bench.search.run import SweepInterrupted

    raw, study, run_dir = _study(args)
    if args.launcher == "local":
        from bench.launch.command import check_cluster_address

        check_cluster_address(args.address)  # in seconds, before a run folder or data exist
    if args.launcher == "slurm":
        if not args.resume and run_dir.exists():
            raise ConfigError(f"run folder {run_dir} exists already; choose another --name")
        return hand_off(parser, args, argv, run_dir, "bench.tune:main",
                        resume_flags=("--no-robustness", "--no-report"))
    if not args.resume:
        new_run_folder(run_dir, raw)
    try:
        with guarded(run_dir, resumed=bool(args.resume)):
            summary = _train(study, run_dir, args)
    except SweepInterrupted as e:
        _log(str(e))
        return 3
    verdict = finish_run(run_dir, robustness=not args.no_robustness, report=not args.no_report,
                         device=None, log=_log)  # device: the one the models were trained on
    if verdict:  # stdout leads with the verdict; progress went to stderr
        print("verdict:\n" + "\n".join(f"  {s}" for s in verdict), flush=True)
    _print_summary(summary, run_dir, report=not args.no_report)
    return 0


def _print_summary(s: dict[str, Any], run_dir: Path, *, report: bool) -> None:
    from bench.search.confirm import confirm_sentence

    counts = ", ".join(f"{v} {k}" for k, v in sorted(s["status_counts"].items()))
    lines = [f"sweep {s['study']}: {s['trials']} trials ({counts}) in {s['duration_s']:.0f}s"]
    if s["best_trial"]:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in s["best_params"].items())
        scores = ", ".join(f"{k} {v:.3f}" for k, v in s["best_scores"].items())
        lines.append(f"best {s['best_trial']} ({s['picked_by']}): {scores}\n  {params}")
    if confirm_sentence(s.get("confirm") or {}):
        lines.append(confirm_sentence(s["confirm"]))
    if s.get("sensitivity"):
        lines.append(s["sensitivity"])
    lines += [f"run folder:   {run_dir}",
              f"trials table: {run_dir / TRIALS} (and .csv)",
              f"models:       {', '.join(s['models']) or 'none'} under {run_dir / 'models'}",
              f"optuna study: optuna-dashboard {run_dir / JOURNAL}"]
    if report:
        lines.append(f"report:       {run_dir / REPORT}")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    run_main(main)
