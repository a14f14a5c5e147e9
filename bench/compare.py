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

from bench.cli import run_main
from bench.launch.session import log_line as _log
from bench.config import read_yaml
from bench.errors import ConfigError
from bench.runfolder import STUDY
from bench.search.spaces import with_base_sets

__all__ = ["main", "build_parser", "DEFAULT_STUDY", "load_fixed"]

DEFAULT_STUDY = Path(__file__).resolve().parent.parent / "search_spaces" / "compare.yaml"


def build_parser() -> argparse.ArgumentParser:
    from bench.launch.session import fixed_parser

    return fixed_parser(
        "python -m bench.compare", __doc__,
        what="comparison", default="search_spaces/compare.yaml",
        choose=("--methods", "comma list, the candidate first, e.g. hdf,x3d_ce"))


def load_fixed(args: argparse.Namespace, default: Path, kind: str, what: str):
    """(raw file with the CLI's changes, source, run folder) for --study/--resume."""
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / STUDY).is_file():
            raise ConfigError(f"{run_dir} is not a {what} run folder (no {STUDY})")
        return read_yaml(run_dir / STUDY), str(run_dir / STUDY), run_dir
    path = Path(args.study) if args.study else default
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    raw = dict(read_yaml(path))
    if args.concurrency is not None:
        raw["concurrency"] = args.concurrency
    if args.overrides:
        raw = with_base_sets(raw, args.overrides)
    name = args.name or f"{kind}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    return raw, str(path), Path(args.out) / name


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from bench.launch.session import run_fixed
    from bench.search.comparison import comparison_from_dict
    from bench.search.sweep import run_comparison

    raw, source, run_dir = load_fixed(args, DEFAULT_STUDY, "compare", "comparison")
    resumed = bool(args.resume)
    study, methods = comparison_from_dict(raw, name=run_dir.name, source=source,
                                          methods=None if resumed else args.methods,
                                          seeds=None if resumed else args.seeds)
    raw = {**raw, "methods": methods, "seeds": list(study.seeds)}  # study.yaml says what ran
    code, _ = run_fixed(parser, args, argv, raw=raw, study=study, run_dir=run_dir,
                        train=lambda: run_comparison(study, run_dir, methods, log=_log),
                        target="bench.compare:main", log=_log)
    return code


if __name__ == "__main__":
    run_main(main)
