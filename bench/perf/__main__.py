"""`python -m bench.perf {model,tune,robustness,data}`: run one cost benchmark and print its ratios.

`search` and `replay` answer here too, as aliases of `python -m bench.hpo search|replay` (the
search-efficiency study), so scripts and records that name them here keep working.
"""
from __future__ import annotations

from bench.cli import run_main, subcommands_main
from bench.hpo.__main__ import COMMANDS as HPO_COMMANDS
from bench.perf import data as data_bench
from bench.perf import model as model_bench
from bench.perf import robustness as robustness_bench
from bench.perf import tune as tune_bench

BENCHMARKS = {"model": model_bench, "tune": tune_bench, "robustness": robustness_bench,
              "data": data_bench}


def main(argv: list[str] | None = None) -> int:
    return subcommands_main("python -m bench.perf", __doc__.split("\n")[0],
                            {**BENCHMARKS, **HPO_COMMANDS}, argv)


if __name__ == "__main__":
    run_main(main)
