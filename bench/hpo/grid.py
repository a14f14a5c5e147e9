"""A tabular benchmark: every cell of a grid over a study's space, trained at several seeds.

Counting how many trial-epochs a search needs to reach the best configuration
takes many sweeps per method, and on 2 CPUs a real sweep of a learning study
takes half an hour. So (as HPO benchmarks such as HPOBench and LCBench do) the
learning curves are measured once, on a grid: each searched key is cut into
cells of equal width (log width for log-uniform keys), every cell is trained at
every training seed, and `bench.hpo replay` then runs real Tune + Optuna +
ASHA sweeps whose trials replay the curve of the cell they fall in. What a
cell scores is its mean over the seeds; the seeds' spread is the noise a
search has to see through.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bench.errors import ConfigError
from bench.hpo.best_known import config_key
from bench.search.spaces import Param, Study, decode_params
from bench.search.trainable import RUN_KEY, SEED_KEY

__all__ = ["Grid", "cell_values", "make_grid", "grid_runs", "config_cell", "run_cell",
           "read_curves", "cell_scores"]


def cell_values(p: Param, n: int) -> tuple[Any, ...]:
    """The centres of n equal cells over a parameter's range (choices: every choice)."""
    if p.type == "categorical":
        return tuple(p.choices)
    lo, hi = float(p.low), float(p.high)
    if p.type == "loguniform":
        vals = [lo * (hi / lo) ** ((i + 0.5) / n) for i in range(n)]
    else:
        vals = [lo + (hi - lo) * (i + 0.5) / n for i in range(n)]
    if p.type == "int":
        return tuple(sorted({int(round(v)) for v in vals}))
    return tuple(float(f"{v:.4g}") for v in vals)


@dataclass(frozen=True)
class Grid:
    """Cell centres per searched config key; a trial's values fall in the nearest cell."""

    values: dict[str, tuple[Any, ...]]
    log: dict[str, bool]

    def snap(self, config: Mapping[str, Any]) -> str:
        """The cell (its key) a trial's decoded values fall in."""
        cell = {}
        for key, centres in self.values.items():
            v = config[key]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                def dist(c: Any) -> float:
                    return abs(math.log(v / c)) if self.log[key] else abs(v - c)
                v = min(centres, key=dist)
            elif v not in centres:
                raise ValueError(f"{key}={v!r} is not a cell of the grid {list(centres)}")
            cell[key] = v
        return config_key(cell)

    def cells(self) -> list[dict[str, Any]]:
        """Every cell as {config key: value}, the first key varying fastest."""
        out: list[dict[str, Any]] = [{}]
        for key, centres in self.values.items():
            out = [{**c, key: v} for v in centres for c in out]
        return out


def make_grid(study: Study, counts: Mapping[str, int]) -> Grid:
    """A grid with counts[key] cells for each numeric key (choices: all of them)."""
    keys = {p.key for p in study.params}
    unknown = sorted(set(counts) - keys)
    if unknown:
        raise ConfigError(f"--cells {unknown[0]}: not a searched key of {study.source} "
                          f"(searched: {', '.join(sorted(keys))})")
    values, log = {}, {}
    for p in study.params:
        if p.when:
            raise ConfigError(f"{study.source}: {p.key} is conditional; a grid needs "
                              "unconditional parameters (fix it with --fix)")
        if p.type != "categorical" and p.key not in counts:
            raise ConfigError(f"{p.key}: give its number of cells (--cells {p.key}=N) "
                              f"or a value (--fix {p.key}=VALUE)")
        n = counts.get(p.key, 0)
        if p.type != "categorical" and n < 1:
            raise ConfigError(f"--cells {p.key}={n}: give 1 or more cells")
        values[p.key] = cell_values(p, n)
        log[p.key] = p.type == "loguniform"
    return Grid(values, log)


def grid_runs(study: Study, grid: Grid, seeds: list[int]) -> list[dict[str, Any]]:
    """One training run per cell and seed (seed-major: a cut-short grid has whole seeds)."""
    name = {p.key: p.name for p in study.params}
    by_key = {p.key: p for p in study.params}
    return [{**{name[k]: by_key[k].encode(v) for k, v in cell.items()}, SEED_KEY: s}
            for s in seeds for cell in grid.cells()]


def config_cell(study: Study, grid: Grid, config: Mapping[str, Any]) -> str:
    """The cell a trial's Tune config (searched values; "__" keys ignored) falls in."""
    values = decode_params(study, {k: v for k, v in config.items() if not k.startswith("__")})
    return grid.snap(values)


def run_cell(study: Study, grid: Grid, run: Mapping[str, Any]) -> tuple[str, int]:
    """(cell, training seed) of one grid run, as `grid_runs` encoded it."""
    return config_cell(study, grid, run), int(run[SEED_KEY])


def read_curves(folder: Path, study: Study, grid: Grid, objective: str) -> pd.DataFrame:
    """Tidy learning curves (cell, seed, epoch, value) from a grid's Tune trial folders."""
    rows = []
    for f in sorted(folder.glob("*/result.json")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            cell, seed = run_cell(study, grid, (r.get("config") or {}).get(RUN_KEY) or {})
            rows.append({"cell": cell, "seed": seed,
                         "epoch": int(r["epoch"]), "value": float(r.get(objective, math.nan))})
    return pd.DataFrame(rows, columns=["cell", "seed", "epoch", "value"])


def cell_scores(curves: pd.DataFrame, epochs: int, seeds: list[int]) -> pd.DataFrame:
    """Per cell: mean and std over the seeds of the last epoch's value.

    A run that diverged or never reached the last epoch makes its cell's mean
    NaN, so such a cell is never the best.
    """
    last = curves[curves["epoch"] == epochs]
    wide = last.pivot(index="cell", columns="seed", values="value")
    wide = wide.reindex(index=curves["cell"].unique(), columns=seeds)
    return pd.DataFrame({"mean": wide.mean(axis=1, skipna=False), "std": wide.std(axis=1)})
