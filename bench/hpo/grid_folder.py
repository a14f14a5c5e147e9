"""A grid's folder: what grid it holds (grid.yaml), training it, and its curves (curves.csv).

A grid is described by the replay's flags (a space, cells per searched key,
keys fixed, training seeds); its folder keeps that description, so a later call
reads the grid back instead of training it, and a call describing another grid
is refused before anything runs. Training is resumable: a Tune experiment, or
with `workers` local processes that need no Ray (grid_local.py).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.config import read_yaml
from bench.errors import ConfigError
from bench.hpo.flags import seed_list
from bench.hpo.grid import Grid, grid_runs, make_grid, read_curves
from bench.runs import atomic_write_text
from bench.search.spaces import Study, study_from_dict, with_base_sets

__all__ = ["GRID_FILE", "CURVES_FILE", "grid_study", "with_concurrency", "open_grid",
           "train_grid"]

GRID_FILE, CURVES_FILE = "grid.yaml", "curves.csv"


def cell_counts(items: list[str]) -> dict[str, int]:
    """--cells KEY=N flags -> {key: number of cells}."""
    out = {}
    for item in items:
        key, sep, n = item.partition("=")
        if not sep or not n.strip().isdigit():
            raise ConfigError(f"--cells expects KEY=N (N cells), got {item!r}")
        out[key.strip()] = int(n)
    return out


def grid_study(args: argparse.Namespace) -> tuple[dict[str, Any], Study, Grid]:
    """The grid's study (fixed keys moved into the base) and its cells, from the flags."""
    raw = with_base_sets(read_yaml(args.space), args.overrides + args.fix)
    params = dict(raw.get("params") or {})
    for item in args.fix:
        key = item.partition("=")[0].strip()
        if params.pop(key, None) is None:
            raise ConfigError(f"--fix {key}: not a searched key of {args.space} "
                              f"(searched: {', '.join(params)})")
    raw["params"] = params
    raw.update(baselines=[], seeds=[0])
    study = study_from_dict(with_concurrency(raw, args.concurrency), name="grid",
                            source=args.space)
    if len(study.objective.metrics) != 1 or study.objective.modes[0] != "max":
        raise ConfigError(f"{args.space}: replay needs one objective to maximise")
    return raw, study, make_grid(study, cell_counts(args.cells))


def with_concurrency(raw: dict[str, Any], concurrency: int | None) -> dict[str, Any]:
    """raw with --concurrency applied: how many runs at once, when training the grid and in
    the replayed sweeps; not part of what the grid is (its raw study, kept in grid.yaml)."""
    return raw if concurrency is None else dict(raw, concurrency=concurrency)


def _identity(spec: dict[str, Any]) -> dict[str, Any]:
    """What makes two grids the same: all of grid.yaml but how the runs were placed
    (their concurrency and per-run resources)."""
    study = {k: v for k, v in (spec.get("study") or {}).items()
             if k not in ("concurrency", "resources")}
    return {**spec, "study": study}


def open_grid(args: argparse.Namespace, d: Path
              ) -> tuple[dict[str, Any], Study, Grid, list[int]]:
    """The grid the flags describe; a folder holding another grid is refused."""
    raw, study, grid = grid_study(args)
    seeds = seed_list("--train-seeds", args.train_seeds)
    spec = json.loads(json.dumps({"study": raw, "cells": grid.values, "train_seeds": seeds}))
    if (d / GRID_FILE).is_file():
        if _identity(read_yaml(d / GRID_FILE)) != _identity(spec):
            raise ConfigError(f"--grid {d}: holds another grid (other space, cells or seeds); "
                              "use another folder")
    elif d.exists() and any(d.iterdir()):
        raise ConfigError(f"--grid {d}: not empty and not a grid folder")
    else:
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / GRID_FILE, yaml.safe_dump(spec, sort_keys=False))
    return raw, study, grid, seeds


def train_grid(study: Study, grid: Grid, seeds: list[int], d: Path, *,
               workers: int | None = None) -> pd.DataFrame:
    """Train (or resume) every cell at every training seed; the tidy curves, also kept in d.

    With `workers`, in that many local processes (grid_local.py), else as a Tune experiment.
    """
    from bench.engine import build_split

    runs = grid_runs(study, grid, seeds)
    print(f"training the grid: {len(runs) // len(seeds)} cells x {len(seeds)} seeds "
          f"= {len(runs)} runs into {d}", flush=True)
    build_split(study.base_config(), "train")  # the data set is written once, before the runs
    log = lambda m: print(m, flush=True)  # noqa: E731
    if workers is not None:
        from bench.hpo.grid_local import train_local

        curves = train_local(study, grid, runs, d, workers=workers, log=log)
    else:
        from bench.search.run import init_ray, phase_path, run_phase

        init_ray(address=None, num_cpus=None, num_gpus=None)
        run_phase(study, d, "grid", log=log, runs=runs)
        curves = read_curves(phase_path(d, "grid"), study, grid, study.objective.reported[0])
    if curves[["cell", "seed"]].drop_duplicates().shape[0] != len(runs):
        raise ConfigError(f"--grid {d}: the grid's runs did not all report; run again")
    atomic_write_text(d / CURVES_FILE, curves.to_csv(index=False))
    return curves
