"""`python -m bench.compare --methods hdf,x3d_ce --seeds 0,1,2`: methods over seeds, no search.

    python -m bench.compare                                        # search_spaces/compare.yaml
    python -m bench.compare --methods hdf,x3d_ce,x3d_sam --seeds 0,1,2,3,4
    python -m bench.compare --set train.epochs=16 --address 10.0.0.5:6379
    python -m bench.compare --resume runs/compare-20261205-101500

    comparison file + --methods/--seeds/--set -> Study (no parameters) + methods
        -> run folder -> bench.search.sweep.run_comparison (every method x seed on Ray)
        -> summary.json -> bench.finish.finish_run (robustness suite, verdict, report)

The first method is the candidate (role "hdf" in models.yaml), the others its
baselines; the verdict pairs each baseline's seed k with the candidate's seed k.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from bench.cli import non_negative_int, positive_int, run_main
from bench.config import read_yaml
from bench.errors import ConfigError
from bench.runfolder import STUDY, write_summary
from bench.search.spaces import with_base_sets

__all__ = ["main", "build_parser", "DEFAULT_STUDY"]

DEFAULT_STUDY = Path(__file__).resolve().parent.parent / "search_spaces" / "compare.yaml"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--study", help="comparison file (default: search_spaces/compare.yaml)")
    src.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted comparison")
    ap.add_argument("--methods", help="comma list, the candidate first, e.g. hdf,x3d_ce")
    ap.add_argument("--seeds", help="training seeds, e.g. 0,1,2")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a base config key of every method (repeatable)")
    ap.add_argument("--concurrency", type=positive_int, help="runs at a time (overrides the file)")
    ap.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    ap.add_argument("--name", help="run folder name (default: compare-<timestamp>)")
    ap.add_argument("--address", help="join a running Ray cluster (host:port)")
    ap.add_argument("--cpus", type=positive_int, help="CPUs of the local Ray instance (default: all)")
    ap.add_argument("--gpus", type=non_negative_int,
                    help="GPUs of the local Ray instance (default: all)")
    ap.add_argument("--no-robustness", action="store_true", help="skip the robustness suite")
    ap.add_argument("--no-report", action="store_true", help="skip the HTML report")
    ap.add_argument("--launcher", choices=["local", "slurm"], default="local",
                    help="slurm: submit this whole command as one SLURM job (submitit)")
    from bench.launch.slurm import add_arguments as slurm_arguments

    slurm_arguments(ap)
    return ap


def _comparison(args: argparse.Namespace):
    """(raw file as stored, Study, methods, run folder)."""
    from bench.search.comparison import comparison_from_dict

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / STUDY).is_file():
            raise ConfigError(f"{run_dir} is not a comparison run folder (no {STUDY})")
        raw = read_yaml(run_dir / STUDY)
        study, methods = comparison_from_dict(raw, name=run_dir.name,
                                              source=str(run_dir / STUDY))
        return raw, study, methods, run_dir
    path = Path(args.study) if args.study else DEFAULT_STUDY
    if not path.is_file():
        raise ConfigError(f"comparison file not found: {path}")
    raw = dict(read_yaml(path))
    if args.concurrency is not None:
        raw["concurrency"] = args.concurrency
    if args.overrides:
        raw = with_base_sets(raw, args.overrides)
    name = args.name or f"compare-{dt.datetime.now():%Y%m%d-%H%M%S}"
    study, methods = comparison_from_dict(raw, name=name, source=str(path), methods=args.methods,
                                          seeds=args.seeds)
    raw.update(methods=methods, seeds=list(study.seeds))  # study.yaml says what ran
    return raw, study, methods, Path(args.out) / name


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from bench.engine import build_split
    from bench.finish import finish_run
    from bench.launch.session import guarded, hand_off, new_run_folder
    from bench.search.run import SweepInterrupted, check_resources, init_ray
    from bench.search.sweep import run_comparison

    raw, study, methods, run_dir = _comparison(args)
    if args.launcher == "local":
        from bench.launch.command import check_cluster_address

        check_cluster_address(args.address)  # in seconds, before a run folder or data exist
    if args.launcher == "slurm":
        if not args.resume and run_dir.exists():
            raise ConfigError(f"run folder {run_dir} exists already; choose another --name")
        return hand_off(parser, args, argv, run_dir, "bench.compare:main",
                        resume_flags=("--no-robustness", "--no-report"))
    if not args.resume:
        new_run_folder(run_dir, raw)
    try:
        with guarded(run_dir, resumed=bool(args.resume)):
            build_split(study.base_config(), "train")  # generate/check the data once
            init_ray(address=args.address, num_cpus=args.cpus, num_gpus=args.gpus)
            check_resources(study)
            summary = run_comparison(study, run_dir, methods, log=_log)
            write_summary(run_dir, summary)
    except SweepInterrupted as e:
        _log(str(e))
        return 3
    print(f"compare: {', '.join(methods)} x seeds {', '.join(map(str, study.seeds))} in "
          f"{summary['duration_s']:.0f}s\nrun folder:   {run_dir}\n"
          f"models:       {', '.join(summary['models'])}", flush=True)
    verdict = finish_run(run_dir, robustness=not args.no_robustness, report=not args.no_report,
                         log=_log)
    if verdict:
        print("verdict:\n" + "\n".join(f"  {s}" for s in verdict), flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
