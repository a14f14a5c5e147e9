"""A sweep run and a comparison run, phase by phase, on the sweep's Ray machinery.

    sweep:   "sweep" phase (searcher + ordered halving) -> trials table -> best trial
             [-> "confirm" phase: top K configurations at fresh seeds -> winner by mean]
             -> "baselines" phase: baselines x seeds, the winner at the extra seeds
             -> models/ + models.yaml -> summary (plain data, returned)
    compare: "compare" phase: every method x seed -> models/ + models.yaml -> summary

Ray must be up (`bench.search.run.init_ray`). Tables and models are written as
they are made, so an interrupted run resumes from its phases; the summary is
returned for the caller to write.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from bench.runfolder import CONFIRM, TRIALS, TRIALS_CSV
from bench.runs import write_table
from bench.search.confirm import confirm_pick, confirm_runs, confirm_table, top_trials
from bench.search.export import export_model, model_name, write_manifest
from bench.search.results import final_scores, pick_best, trials_table
from bench.search.run import baseline_runs, records, run_phase, widen
from bench.search.sensitivity import parameter_effects, sensitivity_sentence
from bench.search.spaces import Study
from bench.search.trainable import CELL_KEY, METHOD_KEY, RUN_KEY, SEED_KEY, SET_KEY, searched

__all__ = ["run_sweep", "run_comparison", "run_ablation", "study_key", "CANDIDATE_GROUP"]

Log = Callable[[str], None]
CANDIDATE_GROUP = "hdf-best"  # the sweep's crowned configuration, at every seed


def study_key(study: Study, methods: list[str] | None = None) -> str:
    """Runs of the same study share this key (seeds, budget of trials and resources aside)."""
    spec = {"method": study.method, "base": study.base, "methods": methods,
            "params": [p.__dict__ for p in study.params], "objective": study.objective.__dict__,
            "val_fraction": study.val_fraction, "baselines": list(study.baselines)}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _final(rec, metric: str) -> float:
    h = rec.history
    if rec.error or h is None or metric not in h or len(h) == 0:
        return float("nan")
    return float(h.sort_values("epoch")[metric].iloc[-1])


def _noise_floor(study: Study, confirm: dict[str, Any], seed_values: dict[int, float]
                 ) -> dict[str, Any] | None:
    """The run's seed-to-seed std of the objective: from --confirm, else from the study's seeds."""
    metric = study.objective.reported[0]
    if confirm and confirm.get("seed_std_df", 0) > 0:
        return {"metric": metric, "std": confirm["seed_std"], "df": confirm["seed_std_df"],
                "source": f"--confirm ({len(confirm['means'])} configurations x "
                          f"{len(confirm['seeds'])} fresh seeds)"}
    vals = [v for v in seed_values.values() if math.isfinite(v)]
    if len(vals) > 1:
        return {"metric": metric, "std": float(np.std(vals, ddof=1)), "df": len(vals) - 1,
                "source": f"the best configuration at {len(vals)} training seeds"}
    return None


def run_sweep(study: Study, run_dir: Path, *, log: Log) -> dict[str, Any]:
    """Sweep, [confirm,] baselines; writes the tables and models; returns the summary."""
    t0 = time.perf_counter()
    metric = study.objective.reported[0]
    log(f"sweep: {study.trials} trials of {study.method} ({study.epochs} epochs max, "
        f"{study.concurrency} at a time, {study.cpus_per_trial:g} CPU"
        f"{f' + {study.gpus_per_trial:g} GPU' if study.gpus_per_trial else ''} each), "
        f"objective {', '.join(study.objective.reported)}")
    sweep = records(run_phase(study, run_dir, "sweep", log=log))
    table = trials_table(study, sweep)
    write_table(run_dir / TRIALS, table)
    write_table(run_dir / TRIALS_CSV, table)
    best, front = pick_best(study, table)
    by_trial = {r.trial: r for r in sweep}

    confirm: dict[str, Any] = {}
    if best is not None and study.confirm.top:
        top = top_trials(study, table, study.confirm.top)
        runs = confirm_runs(study, {t: searched(by_trial[t].config) for t in top})
        log(f"confirm: the top {len(top)} configuration(s) ({', '.join(top)}) at fresh seeds "
            f"{', '.join(map(str, study.confirm_seeds))}")
        recs = records(run_phase(widen(study, len(runs)), run_dir, "confirm", log=log, runs=runs))
        ctable = confirm_table(recs)
        write_table(run_dir / CONFIRM, ctable)
        confirm = confirm_pick(study, ctable)
        if confirm:
            best = confirm["winner"]

    models: list[dict[str, Any]] = []
    seed_values: dict[int, float] = {}
    first = study.seeds[0]
    if best is not None:
        models.append(export_model(run_dir, by_trial[best], name=CANDIDATE_GROUP, role="hdf",
                                   method=study.method, seed=first, group=CANDIDATE_GROUP))
        seed_values[first] = _final(by_trial[best], metric)
    else:
        log("no trial ran every epoch without failing: nothing to export as hdf-best")

    runs = baseline_runs(study, searched(by_trial[best].config) if best else None)
    if runs:
        log(f"baselines: {len(runs)} run(s) at the same budget ({study.epochs} epochs)")
        for rec in records(run_phase(widen(study, len(runs)), run_dir, "baselines", log=log,
                                     runs=runs)):
            spec = rec.config.get(RUN_KEY, rec.config)
            method = spec.get(METHOD_KEY) or study.method
            seed = int(spec.get(SEED_KEY, first))
            group = method if METHOD_KEY in spec else CANDIDATE_GROUP
            name = model_name(group, seed, first)
            if rec.error:
                log(f"  {name} failed: {rec.error}")
                continue
            if group == CANDIDATE_GROUP:
                seed_values[seed] = _final(rec, metric)
            models.append(export_model(run_dir, rec, name=name,
                                       role="hdf" if group == CANDIDATE_GROUP else "baseline",
                                       method=method, seed=seed, group=group))
    write_manifest(run_dir, models)
    noise = _noise_floor(study, confirm, seed_values)
    effects = parameter_effects(table, metric, (noise or {}).get("std", float("nan")))
    counts = table.groupby("status").trial.nunique().to_dict() if len(table) else {}
    return {"study": study.name, "space": study.source, "study_key": study_key(study),
            "kind": "sweep", "trials": study.trials, "status_counts": counts,
            "best_trial": best, "picked_by": "confirm" if confirm else "single trial",
            "pareto_front": front,
            "best_params": {k[6:]: v for k, v in _params_of(table, best).items()},
            "best_scores": _best_scores(table, best), "confirm": confirm,
            "noise_floor": noise,
            "sensitivity": sensitivity_sentence(effects, noise, "searched"),
            "seeds": list(study.seeds), "models": [m["name"] for m in models],
            "duration_s": round(time.perf_counter() - t0, 1)}


def _fixed_runs(study: Study, run_dir: Path, phase: str, runs: list[dict[str, Any]],
                group_key: str, candidate: str, *, log: Log) -> list[dict[str, Any]]:
    """Train a fixed list of runs (one per group x seed); export each; the manifest."""
    first = study.seeds[0]
    models = []
    for rec in records(run_phase(widen(study, len(runs)), run_dir, phase, log=log, runs=runs)):
        spec = rec.config[RUN_KEY]
        group, seed = spec[group_key], int(spec[SEED_KEY])
        name = model_name(group, seed, first)
        if rec.error:
            log(f"  {name} failed: {rec.error}")
            continue
        models.append(export_model(run_dir, rec, name=name,
                                   role="hdf" if group == candidate else "baseline",
                                   method=group, seed=seed, group=group))
    write_manifest(run_dir, models)
    return models


def run_comparison(study: Study, run_dir: Path, methods: list[str], *, log: Log
                   ) -> dict[str, Any]:
    """Every method at every seed of the study (no search); the first method is the candidate."""
    t0 = time.perf_counter()
    seeds = list(study.seeds)
    runs = [{METHOD_KEY: m, SEED_KEY: s} for m in methods for s in seeds]
    log(f"compare: {', '.join(methods)} x seeds {', '.join(map(str, seeds))} "
        f"({len(runs)} runs, {study.epochs} epochs, {study.concurrency} at a time)")
    models = _fixed_runs(study, run_dir, "compare", runs, METHOD_KEY, methods[0], log=log)
    return {"study": study.name, "space": study.source, "study_key": study_key(study, methods),
            "kind": "compare", "methods": methods, "candidate": methods[0], "seeds": seeds,
            "epochs": study.epochs, "models": [m["name"] for m in models],
            "duration_s": round(time.perf_counter() - t0, 1)}


def run_ablation(study: Study, run_dir: Path, factors: list[str],
                 factor_sets: dict[str, dict[str, Any]], *, log: Log) -> dict[str, Any]:
    """Every cell of the factorial at every seed; the all-on cell is the candidate."""
    from bench.search.ablation import BASE_METHOD, cell_overrides, cells

    t0 = time.perf_counter()
    seeds = list(study.seeds)
    grid = cells(factors)
    runs = [{METHOD_KEY: BASE_METHOD, SEED_KEY: s, CELL_KEY: c.name,
             SET_KEY: cell_overrides(c, factor_sets)} for c in grid for s in seeds]
    log(f"ablate: {len(grid)} cells of {', '.join(factors)} x seeds "
        f"{', '.join(map(str, seeds))} ({len(runs)} runs, {study.epochs} epochs, "
        f"{study.concurrency} at a time)")
    models = _fixed_runs(study, run_dir, "ablate", runs, CELL_KEY, grid[-1].name, log=log)
    return {"study": study.name, "space": study.source,
            "study_key": study_key(study, [c.name for c in grid]), "kind": "ablate",
            "factors": factors, "factor_sets": factor_sets, "cells": [c.name for c in grid],
            "candidate": grid[-1].name, "seeds": seeds, "epochs": study.epochs,
            "models": [m["name"] for m in models],
            "duration_s": round(time.perf_counter() - t0, 1)}


def _params_of(table: pd.DataFrame, trial: str | None) -> dict[str, Any]:
    if trial is None:
        return {}
    row = table[table.trial == trial].iloc[0]
    return {c: row[c] for c in table.columns if c.startswith("param.") and pd.notna(row[c])}


def _best_scores(table: pd.DataFrame, trial: str | None) -> dict[str, float]:
    if trial is None:
        return {}
    scores = final_scores(table[table.trial == trial], ["val_war", "val_uar", "test_war",
                                                       "test_uar"])
    return {m: round(float(scores.loc[trial, m]), 4) for m in scores.columns
            if m != "status" and pd.notna(scores.loc[trial, m])}
