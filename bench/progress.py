"""Progress display for long work: a live bar on a terminal, plain lines otherwise."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["Reporter"]


class Reporter:
    """Prints what a long job is doing; `quiet` silences everything but `result`."""

    def __init__(self, *, quiet: bool = False, stream=None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.live = (not quiet) and self.stream.isatty()
        self._t0 = time.perf_counter()

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    def result(self, message: str) -> None:
        print(message, flush=True)

    @contextmanager
    def task(self, description: str) -> Iterator[Callable[[int, int], None]]:
        """Yields `update(done, total)`; draws a bar only on a terminal."""
        if not self.live:
            yield lambda done, total: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, \
            TimeRemainingColumn

        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                      transient=True, console=Console(file=self.stream)) as bar:
            tid = bar.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                bar.update(tid, completed=done, total=total)

            yield update
