"""Shared shell for the command-line entry points: one-line errors, exit codes."""
from __future__ import annotations

import sys
from typing import Callable, NoReturn

from bench.errors import BenchError

__all__ = ["run_main", "fail"]


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
