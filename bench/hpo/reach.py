"""What a replayed sweep reached, and when: found, returned, and the returned cell's regret.

A sweep is reduced to its finishes: every trial that ran its last epoch, as
(trial-epochs spent when it finished, its cell, its final value), in order. All
the counts come from those, so one set of sweeps answers every tolerance and
every budget: "found" (a trial of a near-best cell finishes), "returned" (the
best finished trial so far is of a near-best cell: what the sweep would hand
back) and the regret at a budget (the best cell's score minus the score of
the cell the sweep would hand back then). Why regret too: with one near-best
cell and a noisy landscape, "found" is a lottery over one cell, while regret says
how good what a user gets back is, which is what tuning is for.

Every sweep is judged by its own cell scores (`scores[k]` for sweep k): the means
over all training seeds, or, with `bench.hpo replay --holdout`, the one seed the
sweep did not replay, so that the luck of the runs a search saw does not also
lift the score of what it returns.
"""
from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bench.hpo.stats import median_bounds, median_text, ratio_ci, ratio_text

__all__ = ["Finish", "finishes", "near_cells", "epochs_to_found", "epochs_to_returned",
           "regret_at", "summary_lines", "spread_lines"]

# (trial-epochs spent when the trial finished its last epoch, its cell, its final value)
Finish = tuple[int, str, float]


def finishes(reports: pd.DataFrame, epochs: int) -> list[Finish]:
    """The sweep's finished trials, in the order they finished (reports in the order Tune got
    them: columns epoch, cell, value)."""
    last = (reports["epoch"] == epochs).to_numpy().nonzero()[0]
    return [(int(i) + 1, str(reports["cell"].iat[i]), float(reports["value"].iat[i]))
            for i in last]


def near_cells(scores: Mapping[str, float], tolerance: float) -> set[str]:
    """The cells whose score is within `tolerance` of the best cell's: what counts as reaching
    it. scores: the cells that have one."""
    best = max(scores.values())
    return {c for c, v in scores.items() if v >= best - tolerance}


def epochs_to_found(done: Sequence[Finish], near: set[str]) -> int | None:
    """Trial-epochs spent when a trial of a near-best cell first finishes its last epoch."""
    return next((i for i, cell, _ in done if cell in near), None)


def _returned(done: Sequence[Finish]):
    """(trial-epochs, cell) each time the best finished trial so far changes."""
    best = -math.inf
    for i, cell, value in done:
        if value > best:  # a tie keeps the earlier trial, as a sweep's "best" does
            best = value
            yield i, cell


def epochs_to_returned(done: Sequence[Finish], near: set[str]) -> int | None:
    """Trial-epochs spent when the best finished trial so far first is of a near-best cell."""
    return next((i for i, cell in _returned(done) if cell in near), None)


def regret_at(done: Sequence[Finish], scores: Mapping[str, float], budget: int
              ) -> float | None:
    """Best cell's score minus the score of the cell the sweep returns after `budget`
    trial-epochs; None when no trial has finished by then, NaN when the returned cell has
    no score (a run of it diverged or is missing). scores: the cells that have one."""
    cell = None
    for i, c in _returned(done):
        if i > budget:
            break
        cell = c
    return None if cell is None else max(scores.values()) - scores.get(cell, math.nan)


def _paired_mean_ci(d: np.ndarray, *, n_boot: int = 10_000, seed: int = 0
                    ) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of paired differences, seeds resampled."""
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    lo, hi = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
    return float(lo), float(hi)


def _reach_lines(label: str, needed: dict[str, list[int | None]],
                 spent: dict[str, list[int]]) -> list[str]:
    methods = list(needed)
    bounds = {m: median_bounds(needed[m], spent[m]) for m in methods}
    out = []
    for m in methods:
        reached = sum(n is not None for n in needed[m])
        out.append(f"{label:<8} {m:<12} median trial-epochs {median_text(*bounds[m])} "
                   f"({reached} of {len(needed[m])} runs reached it; mean budget "
                   f"{statistics.mean(spent[m]):.0f})")
    out.append(f"{label:<8} {ratio_text(bounds[methods[0]], bounds[methods[1]])}")
    lo, hi = ratio_ci(needed[methods[0]], needed[methods[1]])
    out.append(f"{label:<8} 95 % interval of the ratio (paired bootstrap over the "
               f"{len(needed[methods[0]])} searcher seeds): {_ci_text(lo, hi, methods)}")
    return out


def _ci_text(lo: float, hi: float, methods: Sequence[str]) -> str:
    """The interval, and what an end at 0, inf or nan means: a run that never reached the
    target counts as infinitely long, so such ends are resamples where a median was never
    reached, not ratios measured."""
    if math.isnan(lo):
        return "none (in every resample neither method's median reached the target)"
    notes = []
    if lo == 0:
        notes.append(f"0: {methods[1]}'s median never reached in those resamples")
    if math.isinf(hi):
        notes.append(f"inf: {methods[0]}'s median never reached in those resamples")
    return f"{lo:.2f} to {hi:.2f}" + (f" ({'; '.join(notes)})" if notes else "")


def _regret_lines(done: dict[str, list[list[Finish]]], scores: Sequence[Mapping[str, float]],
                  budgets: Sequence[int]) -> list[str]:
    methods = list(done)
    out = ["regret   best cell's score - the returned cell's score, in WAR points, after a "
           "budget of trial-epochs (none: no trial finished yet)"]
    for b in budgets:
        # (seeds,) per method, in points; nothing returned yet: inf; an unscored cell: NaN
        r = {m: np.array([math.inf if v is None else 100 * v
                          for v in (regret_at(d, scores[k], b)
                                    for k, d in enumerate(done[m]))])
             for m in methods}
        parts = []
        for m in methods:
            v = r[m][~np.isnan(r[m])]
            none, unscored = np.isinf(v).sum(), np.isnan(r[m]).sum()
            mid = f"{statistics.median(v.tolist()):.1f}" if len(v) else "n/a"
            parts.append(f"{m} median {mid}, at 0 in "
                         f"{(v == 0).sum()}" + (f", none {none}" if none else "")
                         + (f", unscored {unscored}" if unscored else ""))
        line = f"regret   {b:>4}: " + "; ".join(parts)
        a, z = (r[m] for m in methods)
        if np.isfinite(a).all() and np.isfinite(z).all():
            d = a - z  # (seeds,) paired by searcher seed
            lo, hi = _paired_mean_ci(d)
            line += (f"; mean difference {methods[0]} - {methods[1]} {d.mean():+.1f} "
                     f"(95 % {lo:+.1f} to {hi:+.1f}), lower in {(d < 0).sum()}, "
                     f"higher in {(d > 0).sum()} of {len(d)}")
        out.append(line)
    return out


def summary_lines(done: dict[str, list[list[Finish]]], spent: dict[str, list[int]],
                  scores: Sequence[Mapping[str, float]], tolerances: Sequence[float],
                  budgets: Sequence[int]) -> list[str]:
    """What `bench.hpo replay` prints after the sweeps: per tolerance the found and returned
    medians and ratios, then the regret at each budget. done[method][k]: sweep k's finishes,
    judged by scores[k] (the cells that have one)."""
    out: list[str] = []
    for tol in tolerances:
        near = [near_cells(s, tol) for s in scores]  # per sweep
        if len(tolerances) > 1:
            sizes = sorted({len(n) for n in near})
            size = (f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}")
            out.append(f"within {tol:.3f} of the best cell ({size} of "
                       f"{max(len(s) for s in scores)} cells):")
        for label, count in (("found", epochs_to_found), ("returned", epochs_to_returned)):
            out += _reach_lines(label, {m: [count(d, near[k]) for k, d in enumerate(done[m])]
                                        for m in done}, spent)
    return out + (_regret_lines(done, scores, budgets) if budgets else [])


def spread_lines(visited: dict[str, list[list[str]]], n_cells: int) -> list[str]:
    """Where each method's trials went: distinct cells per sweep and the share of the most
    visited one. Why: a searcher that piles its trials into one cell cannot find a better
    one, whatever the counts above say about luck. visited[method][k]: seed k's trial cells."""
    out = []
    for m, sweeps in visited.items():
        distinct = statistics.median(len(set(v)) for v in sweeps)
        top = statistics.median(max(v.count(c) for c in set(v)) / len(v) for v in sweeps)
        out.append(f"visited  {m:<12} median {distinct:g} distinct cells of {n_cells} per "
                   f"sweep; its most visited cell takes a median {100 * top:.0f} % of the "
                   "trials")
    return out
