"""Errors a user can cause. CLIs print them as one line and exit non-zero."""
from __future__ import annotations

__all__ = ["BenchError", "ConfigError", "UnknownNameError", "DataError", "TrainingDiverged",
           "Terminated"]


class BenchError(Exception):
    """Base of every user-facing error: shown as one line, never a traceback."""


class ConfigError(BenchError, ValueError):
    """A mistake the user can fix in a config or on the command line."""


class UnknownNameError(ConfigError, KeyError):
    """A name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(BenchError, OSError):
    """Missing or malformed data on disk; the message names the file."""


class TrainingDiverged(BenchError, FloatingPointError):
    """The loss became NaN or infinite; a sweep records the trial as diverged."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (what SLURM, systemd, `kill` and a closed terminal send).

    A KeyboardInterrupt, so every clean-up that handles Ctrl-C (ours, torch's,
    Ray Tune's) handles it the same way; `bench.cli.run_main` raises it.
    """

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
