"""Fan work out as a job array and merge the tidy tables that come back.

The robustness evaluation is the motivating case: one task per (model, shift
group), each returning a tidy DataFrame; the merge is one table with the same
columns, as if it had been computed in one process. The same function runs
in-process with launcher "local", so the CLIs have a single code path and the
SLURM path is tested against the local one.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pandas as pd

from bench.errors import ConfigError
from bench.launch.slurm import SlurmOptions, submit_array, wait_all
from bench.registry import Registry

__all__ = ["LAUNCHERS", "ArrayTask", "plan_tasks", "run_array", "merge_tidy", "toy_shift_eval"]

Runner = Callable[[Callable[..., Any], Sequence[tuple[Any, ...]], SlurmOptions], list[Any]]
LAUNCHERS: Registry[Runner] = Registry("launcher")


@LAUNCHERS.register("local")
def _run_local(fn: Callable[..., Any], arg_list: Sequence[tuple[Any, ...]],
               options: SlurmOptions) -> list[Any]:
    """In this process, one after the other (no cluster needed)."""
    return [fn(*args) for args in arg_list]


@LAUNCHERS.register("slurm")
def _run_slurm(fn: Callable[..., Any], arg_list: Sequence[tuple[Any, ...]],
               options: SlurmOptions) -> list[Any]:
    """One SLURM job array, one task per argument tuple; waits for all of them."""
    return wait_all(submit_array(fn, arg_list, options), poll_s=options.poll_s)


@dataclass(frozen=True)
class ArrayTask:
    """One unit of work: a model against one group of shifts."""

    model: str
    shifts: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.model}/{'+'.join(self.shifts)}"


def plan_tasks(models: Sequence[str], shift_groups: Sequence[Sequence[str]]) -> list[ArrayTask]:
    """Every (model, shift group) pair, models outer; a shift may appear in one group only."""
    if not models:
        raise ConfigError("no models to evaluate")
    if not shift_groups or not all(shift_groups):
        raise ConfigError("shift groups must be non-empty lists of shift names")
    seen: dict[str, int] = {}
    for i, group in enumerate(shift_groups):
        for shift in group:
            if shift in seen:
                raise ConfigError(f"shift '{shift}' is in group {seen[shift] + 1} and group {i + 1}: "
                                  "each shift must be evaluated once")
            seen[shift] = i
    return [ArrayTask(m, tuple(g)) for m, g in itertools.product(models, shift_groups)]


def merge_tidy(frames: Sequence[pd.DataFrame], keys: Sequence[str]) -> pd.DataFrame:
    """Concatenate task tables; refuse differing columns or a fact reported twice."""
    frames = [f for f in frames if f is not None]
    if not frames:
        return pd.DataFrame(columns=list(keys))
    columns = list(frames[0].columns)
    for i, f in enumerate(frames[1:], start=2):
        if list(f.columns) != columns:
            raise ConfigError(f"task {i} returned columns {list(f.columns)}, task 1 {columns}")
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ConfigError(f"task tables lack key columns {missing}")
    merged = pd.concat(frames, ignore_index=True)
    dup = merged.duplicated(list(keys), keep=False)
    if dup.any():
        first = merged.loc[dup, list(keys)].iloc[0].to_dict()
        raise ConfigError(f"{int(dup.sum())} rows share their keys across tasks, e.g. {first}")
    return merged.sort_values(list(keys), kind="stable", ignore_index=True)


def run_array(fn: Callable[..., pd.DataFrame], arg_list: Sequence[tuple[Any, ...]], keys: Sequence[str],
              launcher: str = "local", options: SlurmOptions | None = None) -> pd.DataFrame:
    """fn(*args) for every tuple, on the named launcher, merged into one tidy table."""
    runner = LAUNCHERS.get(launcher)
    frames = runner(fn, list(arg_list), options or SlurmOptions())
    return merge_tidy(frames, keys)


TOY_KEYS = ("model", "shift", "severity", "metric")


def toy_shift_eval(model: str, shifts: tuple[str, ...], severities: int = 3) -> pd.DataFrame:
    """A stand-in robustness task: deterministic tidy rows for (model, shifts).

    Used by `python -m bench.launch check` and the tests to prove that an array
    round trip returns exactly what the same calls return in-process.
    """
    if severities < 1:
        raise ConfigError(f"severities must be at least 1, got {severities}")
    rows = []
    for shift in shifts:
        for severity in range(1, severities + 1):
            digest = hashlib.sha256(f"{model}|{shift}|{severity}".encode()).digest()
            rows.append({"model": model, "shift": shift, "severity": severity, "metric": "war",
                         "value": int.from_bytes(digest[:4], "little") / 2**32})
    return pd.DataFrame(rows, columns=[*TOY_KEYS, "value"])
