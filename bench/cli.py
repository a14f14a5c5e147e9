"""Shared shell for the command-line entry points: one-line errors, exit codes."""
from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Callable, Mapping, NoReturn

from bench.errors import BenchError

__all__ = ["run_main", "fail", "subcommands_main"]


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> NoReturn:
    """Run a CLI main; user-caused errors become one line on stderr and exit 2."""
    try:
        code = main(argv)
    except BenchError as e:
        fail(str(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(code or 0)


def subcommands_main(prog: str, description: str, commands: Mapping[str, ModuleType],
                     argv: list[str] | None) -> int:
    """A CLI of subcommands, one module each: `add_arguments(parser)` and `run(args)`, its
    docstring's first line the help line. One shape for every `python -m bench.X NAME`."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    sub = ap.add_subparsers(dest="command", required=True,
                            metavar="{" + ",".join(commands) + "}")
    for name, mod in commands.items():
        mod.add_arguments(sub.add_parser(name, help=(mod.__doc__ or "").split("\n")[0]))
    args = ap.parse_args(argv)
    return commands[args.command].run(args)
