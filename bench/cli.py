"""Shared shell for the command-line entry points: one-line errors, exit codes, signals.

A user-caused error is one `error: ...` line and exit 2. Ctrl-C (SIGINT) and
SIGTERM/SIGHUP (what SLURM, systemd, `kill` and a closed terminal send) unwind
the same way, so every `except BaseException`/`finally` clean-up runs and no
half-written file or folder stays: one line, exit 130 or 128 + the signal
number (143 for SIGTERM).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import signal
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, NoReturn, TypeVar

from bench.errors import BenchError, Terminated

__all__ = ["run_main", "fail", "terminate_on_signals", "positive_int", "non_negative_int",
           "keeps_stop_signals", "STOP_SIGNALS", "subcommands_main"]

F = TypeVar("F", bound=Callable[..., Any])

# Signals that end a run the way Ctrl-C does; SIGHUP is left alone where it does not exist.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type for counts that cannot be zero (threads, CPUs)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type for counts that can be zero (GPUs)."""
    return _int_at_least(text, 0)


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into a `Terminated` exception while the block runs.

    Only the first signal raises: SLURM and process supervisors may repeat
    SIGTERM during the grace period, and a second exception would cut the
    clean-up the first one started. A signal the caller ignores (nohup's
    SIGHUP) stays ignored. Outside the main thread nothing changes (Python
    delivers signals to the main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if fired:
            return
        fired.append(signum)
        raise Terminated(signum)

    saved = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            saved[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def keeps_stop_signals(fn: F) -> F:
    """Decorator: the SIGTERM/SIGHUP handlers in place before `fn` are in place after it.

    `ray.init` sets SIGTERM to `sys.exit(15)` in the driver: an exit without a word
    and with the wrong code. Wrapped, the CLI's handler stays.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        main = threading.current_thread() is threading.main_thread()
        saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} if main else {}
        try:
            return fn(*args, **kwargs)
        finally:
            for sig, handler in saved.items():
                if handler is not None:  # None: set outside Python, cannot be put back
                    signal.signal(sig, handler)
    return wrapper  # type: ignore[return-value]


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> NoReturn:
    """Run a CLI main; user-caused errors become one line on stderr and exit 2."""
    try:
        with terminate_on_signals():
            code = main(argv)
    except BenchError as e:
        fail(str(e))
    except Terminated as e:
        print(f"terminated ({signal.Signals(e.signum).name})", file=sys.stderr)
        raise SystemExit(128 + e.signum) from None
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
