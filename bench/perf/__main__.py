"""`python -m bench.perf {model,tune,...}`: run one benchmark and print its ratios."""
from __future__ import annotations

import argparse

from bench.cli import run_main
from bench.perf import model as model_bench
from bench.perf import replay as replay_bench
from bench.perf import robustness as robustness_bench
from bench.perf import search as search_bench
from bench.perf import tune as tune_bench

BENCHMARKS = {"model": model_bench, "tune": tune_bench, "robustness": robustness_bench,
              "search": search_bench, "replay": replay_bench}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="bench", required=True, metavar="{" + ",".join(BENCHMARKS) + "}")
    for name, mod in BENCHMARKS.items():
        mod.add_arguments(sub.add_parser(name, help=mod.__doc__.split("\n")[0]))
    args = ap.parse_args(argv)
    return BENCHMARKS[args.bench].run(args)


if __name__ == "__main__":
    run_main(main)
