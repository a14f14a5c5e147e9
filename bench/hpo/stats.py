"""The counts' statistics: bounded medians, their ratio and its interval, early-epoch ranks.

A run that never reached the target needed more trial-epochs than it spent, so
a median over runs is often only bounded, and so is a ratio of two medians; the
text of each says which. Shared by `bench.hpo search` and `bench.hpo replay`.
"""
from __future__ import annotations

import math
import statistics

import pandas as pd

__all__ = ["median_bounds", "ratio_verdict", "median_text", "ratio_text", "ratio_ci",
           "rank_agreement"]


def median_bounds(needed: list[int | None], spent: list[int]) -> tuple[float, float]:
    """Bounds on the median trial-epochs to target when some runs never got there.

    A run that never reached the target needed more than it spent: somewhere in
    (spent, inf). Low bound: such runs counted as spent + 1; high bound: as inf.
    Equal bounds: the median is known.
    """
    low = statistics.median([n if n is not None else b + 1 for n, b in zip(needed, spent)])
    high = statistics.median([n if n is not None else math.inf for n in needed])
    return float(low), float(high)


def ratio_verdict(tpe: tuple[float, float], rand: tuple[float, float],
                  goal: float = 1 / 3) -> tuple[float, float, str]:
    """Bounds on the ratio of the two medians, and whether the goal is met, missed or unknown."""
    lo, hi = tpe[0] / rand[1], tpe[1] / rand[0]
    if hi <= goal:
        return lo, hi, "met"
    if lo > goal:
        return lo, hi, "MISSED"
    return lo, hi, "undetermined: too few runs reached the target; give sweeps more trials"


def median_text(lo: float, hi: float) -> str:
    """Median bounds as printed: exact, bounded below, or a range."""
    return f"{lo:g}" if lo == hi else f">= {lo:g}" if hi == math.inf else f"{lo:g}..{hi:g}"


def ratio_text(tpe: tuple[float, float], rand: tuple[float, float]) -> str:
    """The ratio line both search benchmarks print."""
    lo, hi, verdict = ratio_verdict(tpe, rand)
    shown = f"{lo:.2f}" if lo == hi else f"between {lo:.2f} and {hi:.2f}"
    return f"ratio tpe+asha / random+fifo: {shown} (goal <= 0.33: {verdict})"


def ratio_ci(tpe: list[int | None], rand: list[int | None], *, level: float = 0.95,
             n_boot: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap interval for median(tpe) / median(rand) over searcher seeds.

    Why: with one near-best cell in a hundred, a run's count is mostly the luck
    of its seed, and a ratio of two medians over a few dozen seeds moves by a
    lot; the interval says whether the goal is clear of that. Both methods of a
    searcher seed share its random start, so seeds are resampled in pairs. A run
    that never reached the target counts as infinitely long; resamples where
    both medians are infinite have no ratio and are left out.
    """
    import numpy as np

    if len(tpe) != len(rand) or not tpe:
        raise ValueError(f"need one pair per searcher seed, got {len(tpe)} and {len(rand)}")
    a = np.array([math.inf if n is None else n for n in tpe], dtype=float)
    b = np.array([math.inf if n is None else n for n in rand], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)  # (n_boot,)
    r = r[~np.isnan(r)]
    if not len(r):
        return math.nan, math.nan
    lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(lo), float(hi)


def rank_agreement(reports: pd.DataFrame) -> pd.Series:
    """Spearman correlation, over trials, of the value at epoch k with the final value.

    Only meaningful where every trial ran every epoch (FIFO). Index: k = 1..E-1.
    """
    wide = reports.pivot_table(index="trial", columns="epoch", values="value")
    last = wide.columns.max()
    return pd.Series({k: wide[k].corr(wide[last], method="spearman") for k in wide.columns
                      if k != last}, dtype=float)
