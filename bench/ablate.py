"""`python -m bench.ablate --factors dam,dsm,sam --seeds 0,1,2`: what each part of HDF does.

    python -m bench.ablate                                   # search_spaces/ablate.yaml
    python -m bench.ablate --study search_spaces/ablate-dsm-acts.yaml   # DSM's acting variant
    python -m bench.ablate --factors dam,sam --seeds 0,1,2,3 --set train.epochs=16
    python -m bench.ablate --resume runs/ablate-20261205-101500

    ablation file + --factors/--seeds/--set -> Study (no parameters) + factors
        -> run folder -> bench.search.sweep.run_ablation (2^k cells x seeds on Ray)
        -> robustness suite + verdict -> effects.csv (main effects and two-way
           interactions on clean WAR, UAR and corrupted WAR, intervals over seeds)
        -> report (Attribution section)

Each cell is the x3d_ce preset with the "on" factors' sections taken from hdf:
dam = DAM after every stage, dsm = the DSM loss (CE when off), sam = SAM.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli import run_main
from bench.launch.session import log_line as _log

__all__ = ["main", "build_parser", "DEFAULT_STUDY", "write_effects"]

DEFAULT_STUDY = Path(__file__).resolve().parent.parent / "search_spaces" / "ablate.yaml"


def build_parser() -> argparse.ArgumentParser:
    from bench.launch.session import fixed_parser

    return fixed_parser(
        "python -m bench.ablate", __doc__,
        what="ablation", default="search_spaces/ablate.yaml",
        choose=("--factors", "comma list of dam, dsm, sam (default: the file's)"))


def write_effects(run_dir: Path, factors: list[str]) -> list[str]:
    """effects.csv from the suite's predictions; the lines to print."""
    import pandas as pd

    from bench.runfolder import EFFECTS, ROBUSTNESS
    from bench.runs import write_table
    from bench.search.ablation import cell_correctness, cells, effects
    from robustness.runs import read_manifest

    entries = read_manifest(run_dir)
    groups = {e.name: (e.group, e.seed) for e in entries}
    names = [c.name for c in cells(factors)]
    pred = pd.read_parquet(run_dir / ROBUSTNESS / "predictions.parquet")
    ok, y, seeds = cell_correctness(pred, groups, names)
    table = effects(ok, {c.name: c.on for c in cells(factors)}, factors, y)
    write_table(run_dir / EFFECTS, table)
    lines = [f"effects ({len(seeds)} training seeds x {len(y)} clips; points, 95 % interval):"]
    for r in table.itertuples():
        ci = "" if r.note else f" [{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}]"
        lines.append(f"  {r.metric:<14} {r.effect:<8} {r.estimate * 100:+6.1f}{ci}"
                     f"{'  (' + r.note + ')' if r.note else ''}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from bench.compare import load_fixed
    from bench.launch.session import run_fixed
    from bench.search.comparison import ablation_from_dict
    from bench.search.sweep import run_ablation

    raw, source, run_dir = load_fixed(args, DEFAULT_STUDY, "ablate", "ablation")
    resumed = bool(args.resume)
    study, factors, sets = ablation_from_dict(raw, name=run_dir.name, source=source,
                                              factors=None if resumed else args.factors,
                                              seeds=None if resumed else args.seeds)
    raw = {**raw, "factors": {f: ({"set": sets[f]} if sets[f] else None) for f in factors},
           "seeds": list(study.seeds)}  # study.yaml says what ran
    code, _ = run_fixed(parser, args, argv, raw=raw, study=study, run_dir=run_dir,
                        train=lambda: run_ablation(study, run_dir, factors, sets, log=_log),
                        target="bench.ablate:main", log=_log,
                        after=lambda d: write_effects(d, factors))
    return code


if __name__ == "__main__":
    run_main(main)
