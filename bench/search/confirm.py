"""Confirm before crowning: the top K configurations retrained at fresh seeds (pure functions).

    trials table -> top_trials (completed, best first objective first)
        -> confirm_runs: one run per (configuration, fresh seed)
        -> (trained by the sweep's machinery) -> confirm_table: trial, seed, metric, value
        -> confirm_pick: the configuration with the best mean over its fresh seeds,
           the runner-up, the margin and the seed spread (the run's noise floor)

A sweep's best single trial is often a lucky draw of a lesser configuration:
its score won the pick and its seed's luck came with it. The fresh seeds
never took part in the ranking that chose the K, so their mean is an honest
score of each configuration.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.search.results import final_scores
from bench.search.spaces import Study, decode_params
from bench.search.trainable import RUN_KEY, SEED_KEY, TRIAL_KEY

__all__ = ["top_trials", "confirm_runs", "confirm_table", "confirm_pick", "pooled_std",
           "confirm_sentence"]


def top_trials(study: Study, table: pd.DataFrame, k: int) -> list[str]:
    """The k completed trials with the best final first objective (ties: lower trial first)."""
    metric = study.objective.reported[0]
    scores = final_scores(table, [metric])
    scores = scores[(scores.status == "completed") & scores[metric].notna()] \
        if metric in scores else scores.iloc[0:0]
    sign = -1.0 if study.objective.modes[0] == "max" else 1.0
    ranked = sorted(scores.index, key=lambda t: (sign * scores.loc[t, metric], t))
    return ranked[:k]


def confirm_runs(study: Study, configs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One run spec per (trial's configuration, fresh seed), for the "confirm" phase."""
    return [{**values, SEED_KEY: s, TRIAL_KEY: trial}
            for trial, values in configs.items() for s in study.confirm_seeds]


def confirm_table(recs) -> pd.DataFrame:
    """Tidy final scores of the confirming runs: trial, seed, metric, value (val_*, test_*)."""
    rows = []
    for rec in recs:
        spec = rec.config.get(RUN_KEY, rec.config)
        h = rec.history
        if rec.error or h is None or len(h) == 0:
            continue
        last = h.sort_values("epoch").iloc[-1]
        for col, v in last.items():
            if str(col).startswith(("val_", "test_")) and isinstance(v, (int, float, np.number)):
                rows.append({"trial": spec[TRIAL_KEY], "seed": int(spec[SEED_KEY]),
                             "epoch": int(last["epoch"]), "metric": col, "value": float(v)})
    return pd.DataFrame(rows, columns=["trial", "seed", "epoch", "metric", "value"])


def pooled_std(values: pd.DataFrame) -> tuple[float, int]:
    """Seed-to-seed std pooled over configurations (columns: trial, value) and its df."""
    ss = df = 0.0
    for _, g in values.groupby("trial"):
        if len(g) > 1:
            ss += float(((g.value - g.value.mean()) ** 2).sum())
            df += len(g) - 1
    return (math.sqrt(ss / df) if df else float("nan")), int(df)


def confirm_pick(study: Study, table: pd.DataFrame) -> dict[str, Any]:
    """The winner by mean first objective over fresh seeds, the runner-up and the margin."""
    metric = study.objective.reported[0]
    rows = table[table.metric == metric]
    means = rows.groupby("trial").value.mean()
    if means.empty:
        return {}
    sign = 1.0 if study.objective.modes[0] == "max" else -1.0
    order = sorted(means.index, key=lambda t: (-sign * means[t], t))
    spread, df = pooled_std(rows)
    out = {"metric": metric, "winner": order[0], "winner_mean": float(means[order[0]]),
           "seeds": sorted(int(s) for s in rows.seed.unique()),
           "means": {t: float(means[t]) for t in order}, "seed_std": spread, "seed_std_df": df}
    if len(order) > 1:
        out.update(runner_up=order[1], runner_up_mean=float(means[order[1]]),
                   margin=float(sign * (means[order[0]] - means[order[1]])))
    return out


def confirm_sentence(c: dict[str, Any]) -> str:
    """confirm_pick's result in one sentence ("" without a runner-up)."""
    if not c.get("runner_up"):
        return ""
    return (f"Confirmed at fresh seeds {', '.join(map(str, c['seeds']))}: {c['winner']} won with "
            f"mean {c['metric']} {c['winner_mean']:.3f} against {c['runner_up_mean']:.3f} for "
            f"{c['runner_up']} (margin {c['margin'] * 100:+.1f} points; seed std "
            f"{c['seed_std'] * 100:.1f} points).")
