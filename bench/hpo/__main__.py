"""`python -m bench.hpo {search,replay}`: how fast a searcher reaches the best configuration."""
from __future__ import annotations

from bench.cli import run_main, subcommands_main
from bench.hpo import replay, search

COMMANDS = {"search": search, "replay": replay}


def main(argv: list[str] | None = None) -> int:
    return subcommands_main("python -m bench.hpo", __doc__.split("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    run_main(main)
