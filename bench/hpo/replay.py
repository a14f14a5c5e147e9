"""Search efficiency on a tabular benchmark: many replayed sweeps instead of a few real ones.

`bench.hpo search` runs real sweeps; with a 4-point training-seed noise and
half an hour per sweep on 2 CPUs, too few of them reach the best configuration
to give a ratio. Here the learning curves are measured once on a grid
(grid.py: every cell at every training seed, kept in `--grid DIR`, resumable;
grid_folder.py trains it as a Tune experiment, or with `--workers N` in local
processes that need no Ray, grid_local.py), then for many searcher seeds both
methods run sweeps (OptunaSearch TPE + ASHA, random + FIFO: the sweep's own
searcher, scheduler and concurrency) whose trials replay the curve of their
cell at one of the seeds (engines.py): real Tune experiments with a short
sleep per epoch (`--engine tune`), or the same searcher and scheduler on a
virtual clock (`--engine sim`, simulate.py: deterministic, seconds per sweep,
`--jobs` seeds at once). With `--draws fresh` a trial is a new run drawn
around its cell's stored ones rather than one of them (draws.py). A cell's
score is its mean over the seeds, the best cell's mean is the target, and a
run reaches it when a trial of a cell within `--tolerance` of it finishes its
last epoch ("found"); "returned" counts until the best finished trial so far
is such a cell, what the sweep would hand back. Prints the median trial-epochs
per method and their ratio (goal <= 1/3), for each `--tolerance` on the same
sweeps, and the regret of the returned cell at `--budgets` (reach.py).

With `--holdout` a sweep is judged by a training seed it never replayed: the
search sees the other seeds' runs, its target and its returned cell are scored
by the held-out seed. Without it the target is the mean of the very runs the
sweeps replay, so a lucky run counts twice: once to make a sweep pick its
cell, once to lift that cell's score.
"""
from __future__ import annotations

import argparse
import functools
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import ConfigError
from bench.hpo.engines import replay_sweep
from bench.hpo.flags import DEFAULT_SPACE, positive_list, seed_list
from bench.hpo.grid import Grid, cell_scores
from bench.hpo.grid_folder import CURVES_FILE, open_grid, train_grid
from bench.hpo.methods import METHODS
from bench.hpo.reach import (Finish, epochs_to_found, epochs_to_returned, finishes,
                             near_cells, spread_lines, summary_lines)
from bench.hpo.stats import rank_agreement


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--grid", required=True, metavar="DIR",
                    help="the grid's folder: trained here if new (resumable), read if done")
    ap.add_argument("--space", default=str(DEFAULT_SPACE))
    ap.add_argument("--cells", action="append", default=[], metavar="KEY=N",
                    help="cells of a numeric searched key (choices: all of them)")
    ap.add_argument("--fix", action="append", default=[], metavar="KEY=VALUE",
                    help="take a searched key out of the search at this value")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="base config overrides, e.g. --set train.epochs=3")
    ap.add_argument("--train-seeds", default="0,1", help="training seeds of every cell")
    ap.add_argument("--seeds", default="0-9", help="searcher seeds, e.g. 0-9 or 0,1,2")
    ap.add_argument("--trials", type=int, default=24, help="trials per replayed sweep")
    ap.add_argument("--tolerance", default="0.01",
                    help="WAR points / 100 from the best cell that count as reaching it; "
                         "several, comma-separated, are counted on the same sweeps")
    ap.add_argument("--budgets", default=None, metavar="N,N",
                    help="trial-epochs at which to print the regret of the returned cell "
                         "(default: 1/8, 1/4, 1/2 and all of a sweep's trials x epochs; "
                         "'none': no regret lines)")
    ap.add_argument("--holdout", action="store_true",
                    help="judge each sweep by a training seed it did not replay: searcher seed "
                         "k holds out the (k mod n)-th of the grid's n training seeds, replays "
                         "the others and is scored by the held-out seed's final values")
    ap.add_argument("--draws", choices=("runs", "fresh"), default="runs",
                    help="runs: a trial replays one of its cell's stored runs; fresh: a trial is "
                         "a new draw, the cell's mean curve plus a normal multiple of one stored "
                         "run's deviation from it, so a cell's lucky run is not seen again and "
                         "again (sweeps judged by the cells' means)")
    ap.add_argument("--engine", choices=("tune", "sim"), default="tune",
                    help="tune: every sweep a real Tune experiment; sim: the same searcher and "
                         "scheduler on a virtual clock, deterministic, seconds per sweep")
    ap.add_argument("--epoch-s", type=float, default=0.1, help="replay sleep per epoch (tune)")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="searcher seeds replayed in N processes at once (sim)")
    ap.add_argument("--concurrency", type=int, help="default: the space's")
    ap.add_argument("--startup-trials", type=int, help="TPE's random start (default: the space's)")
    ap.add_argument("--grace-period", type=int, help="ASHA's grace period (default: the space's)")
    ap.add_argument("--workers", type=int, metavar="N",
                    help="train the grid in N local processes, without Ray (a GPU box, say: "
                         "train.device auto puts every run on its GPU); default: Ray Tune")
    ap.add_argument("--train-only", action="store_true",
                    help="train (or resume) the grid, print its summary and stop (no Ray needed "
                         "with --workers)")


def _budgets(text: str | None) -> list[int] | None:
    """--budgets: None for the default (known once the study's epochs are), [] for none."""
    if text is None:
        return None
    return [] if text == "none" else positive_list("--budgets", text, int)


def _default_budgets(trials: int, epochs: int) -> list[int]:
    full = trials * epochs  # a FIFO sweep's whole budget
    return sorted({max(1, full // 8), max(1, full // 4), max(1, full // 2), full})


def judging(curves: pd.DataFrame, epochs: int, seeds: list[int], holdout: bool
            ) -> list[tuple[dict[str, list[list[float]]], dict[str, float]]]:
    """(curves a sweep replays, by cell; the cell scores it is judged by), one pair per
    held-out training seed (searcher seed k takes pair k mod len), or one pair, all seeds
    replayed and scored by their mean, without --holdout. Scores: the cells that have one."""
    if not holdout:
        return [(curves_by_cell(curves), cell_scores(curves, epochs, seeds)["mean"].dropna()
                 .to_dict())]
    out = []
    for held in seeds:
        seen = curves[curves["seed"] != held]
        out.append((curves_by_cell(seen), cell_scores(curves, epochs, [held])["mean"].dropna()
                    .to_dict()))
    return out


def seed_sweeps(seed: int, *, raw: dict[str, Any], grid: Grid,
                curves: list[dict[str, list[list[float]]]], epochs: int,
                args: argparse.Namespace
                ) -> list[tuple[str, int, list[Finish], list[str], float]]:
    """Both methods' sweeps at one searcher seed: (method, trial-epochs spent, finishes,
    every trial's cell, seconds) each. curves: as `judging` pairs them; the seed's is
    curves[seed mod len]."""
    curves = curves[seed % len(curves)]
    out = []
    for name, (sampler, scheduler) in METHODS.items():
        t0 = time.perf_counter()
        r = replay_sweep(raw, grid, curves, sampler, scheduler, seed, args)
        visits = r.groupby("trial", sort=False)["cell"].first().tolist()
        out.append((name, len(r), finishes(r, epochs), visits, time.perf_counter() - t0))
    return out


def curves_by_cell(curves: pd.DataFrame) -> dict[str, list[list[float]]]:
    """Tidy curves (cell, seed, epoch, value) -> {cell: one list of values per seed}."""
    return {cell: [g.sort_values("epoch")["value"].tolist() for _, g in by.groupby("seed")]
            for cell, by in curves.groupby("cell", sort=False)}


def _check_flags(args: argparse.Namespace, d: Path) -> None:
    """Refuse flags that cannot go together, before a grid folder is made."""
    if d.exists() and not d.is_dir():
        raise ConfigError(f"--grid {args.grid}: not a folder")
    if args.jobs < 1 or (args.jobs > 1 and args.engine != "sim"):
        raise ConfigError(f"--jobs {args.jobs}: give 1 or more, and more than 1 only with "
                          "--engine sim (Tune sweeps share one Ray instance)")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give 1 or more")
    if args.holdout and len(seed_list("--train-seeds", args.train_seeds)) < 2:
        raise ConfigError(f"--holdout needs 2 or more --train-seeds (got {args.train_seeds!r}): "
                          "one to hold out, the others to replay")
    if args.holdout and args.draws == "fresh":
        raise ConfigError("--holdout and --draws fresh: give one (fresh draws are judged by "
                          "the cells' means, which every draw is centred on)")


def run(args: argparse.Namespace) -> int:
    from bench.search.run import init_ray

    seeds = seed_list("--seeds", args.seeds)
    tolerances = positive_list("--tolerance", args.tolerance, float)
    budgets = _budgets(args.budgets)
    d = Path(args.grid).absolute()
    _check_flags(args, d)
    raw, study, grid, train_seeds = open_grid(args, d)
    kept = d / CURVES_FILE
    curves = (pd.read_csv(kept) if kept.is_file()
              else train_grid(study, grid, train_seeds, d, workers=args.workers))
    scores = cell_scores(curves, study.epochs, train_seeds)
    if scores["mean"].isna().all():
        raise ConfigError(f"--grid {d}: no cell finished every training seed")
    if budgets is None:
        budgets = _default_budgets(args.trials, study.epochs)
    cells = ", ".join(f"{k} {list(v)}" for k, v in grid.values.items())
    print(f"grid: {len(scores)} cells ({cells}) x training seeds {train_seeds}")
    judged = judging(curves, study.epochs, train_seeds, args.holdout)
    for held, (_, by) in zip(train_seeds if args.holdout else [None], judged):
        within = ", ".join(f"{len(near_cells(by, t))} within {t:.3f}" for t in tolerances)
        what = ("the best cell's mean" if held is None
                else f"held out training seed {held}: the best cell's score")
        print(f"target: {what} {max(by.values()):.3f} ({max(by, key=by.get)}); "
              f"of {len(scores)} cells {within} of it")
    if args.draws == "fresh":
        print("draws: every trial is a fresh run around its cell's stored ones (mean + a normal "
              "multiple of a stored run's deviation), not one of them")
    if scores["std"].notna().any():
        print(f"training-seed noise: a cell's runs differ by a standard deviation of "
              f"{scores['std'].median():.3f} (median over cells)")
    agree = rank_agreement(curves.assign(trial=curves["cell"] + "|" + curves["seed"].astype(str)))
    if len(agree):  # what ASHA's grace period stops on
        print("early epochs: epoch k ranks the grid's runs as their last epoch does, Spearman "
              + ", ".join(f"k={k} {v:+.2f}" for k, v in agree.items())
              + f" (the space's ASHA grace period: {study.scheduler.grace_period})")
    if args.train_only:
        return 0
    if args.engine == "tune":
        init_ray(address=None, num_cpus=None, num_gpus=None)
    done: dict[str, list[list[Finish]]] = {m: [] for m in METHODS}
    spent: dict[str, list[int]] = {m: [] for m in METHODS}
    visited: dict[str, list[list[str]]] = {m: [] for m in METHODS}
    by_seed = [judged[seed % len(judged)][1] for seed in seeds]  # what each sweep is judged by
    one = functools.partial(seed_sweeps, raw=raw, grid=grid, curves=[c for c, _ in judged],
                            epochs=study.epochs, args=args)
    pool = (ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"))
            if args.jobs > 1 else None)
    try:
        per_seed = pool.map(one, seeds) if pool else map(one, seeds)
        for seed, counts, by in zip(seeds, per_seed, by_seed):
            near = near_cells(by, tolerances[0])  # for the per-seed lines
            for name, n, fin, cells_of_trials, secs in counts:
                done[name].append(fin)
                spent[name].append(n)
                visited[name].append(cells_of_trials)
                print(f"{name} seed {seed}: {n} trial-epochs, found at "
                      f"{epochs_to_found(fin, near)}, returned at "
                      f"{epochs_to_returned(fin, near)} ({secs:.0f} s)", flush=True)
    finally:
        if pool:  # on an error or Ctrl-C, the seeds not started are dropped, not run
            pool.shutdown(cancel_futures=True)
    for line in (*summary_lines(done, spent, by_seed, tolerances, budgets),
                 *spread_lines(visited, len(scores))):
        print(line)
    return 0
