"""Tune results -> the tidy trials table, the best trial, the exported models.

Pure functions over `TrialRecord`s (no Ray, no files) so they test on small
hand-made histories; the CLI writes what they return.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from bench.search.run import TrialRecord
from bench.search.spaces import Study, decode_params

__all__ = ["trial_status", "trials_table", "pick_best", "pareto_front", "model_metrics",
           "STATUSES"]

STATUSES = ("completed", "stopped", "diverged", "failed")
_SKIP = {"done", "trial_id", "date", "timestamp", "hostname", "node_ip", "pid", "reason",
         "diverged", "time_this_iter_s", "time_total_s", "time_since_restore",
         "iterations_since_restore", "training_iteration", "checkpoint_dir_name",
         "should_checkpoint", "config", "entered_at", "reported_at"}


def _history(rec: TrialRecord) -> pd.DataFrame:
    """One row per epoch (the last report wins if a restart repeated one)."""
    df = rec.history
    if df is None or len(df) == 0 or "epoch" not in df:
        return pd.DataFrame(columns=["epoch"])
    return df.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def trial_status(rec: TrialRecord, epochs: int) -> tuple[str, str]:
    """(status, reason): failed > diverged > completed (all epochs) > stopped (by ASHA)."""
    if rec.error:
        return "failed", rec.error
    h = _history(rec)
    if len(h) and "diverged" in h and h["diverged"].iloc[-1] == 1:
        return "diverged", str(h["reason"].iloc[-1])
    last = int(h["epoch"].iloc[-1]) if len(h) else 0
    if last >= epochs:
        return "completed", ""
    return "stopped", f"stopped by the scheduler after epoch {last}"


def trials_table(study: Study, recs: Iterable[TrialRecord]) -> pd.DataFrame:
    """Tidy: trial, number, status, reason, duration_s, restarts, epoch, metric, value, param.*"""
    rows: list[dict[str, Any]] = []
    for rec in recs:
        status, reason = trial_status(rec, study.epochs)
        h = _history(rec)
        params = {f"param.{k}": v for k, v in decode_params(study, rec.config).items()}
        params = {k: (str(v) if isinstance(v, list) else v) for k, v in params.items()}
        duration = float(rec.history["time_this_iter_s"].sum()) \
            if rec.history is not None and "time_this_iter_s" in rec.history else math.nan
        restarts = max(0, int(rec.history["pid"].nunique()) - 1) \
            if rec.history is not None and "pid" in rec.history else 0
        head = {"trial": rec.trial, "number": int(rec.trial[1:]), "status": status,
                "reason": reason, "duration_s": duration, "restarts": restarts}
        metric_cols = [c for c in h.columns if c not in _SKIP and c != "epoch"
                       and not c.startswith("config/")]
        for _, r in h.iterrows():
            for m in metric_cols:
                v = r[m]
                if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) \
                        and not (m.startswith("test_") and math.isnan(v)):  # test not scored
                    rows.append({**head, "epoch": int(r["epoch"]), "metric": m,
                                 "value": float(v), **params})
        if len(h) == 0:  # a trial that never reported still counts
            rows.append({**head, "epoch": 0, "metric": "none", "value": math.nan, **params})
    cols = ["trial", "number", "status", "reason", "duration_s", "restarts", "epoch", "metric",
            "value"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols)
    return df[cols + sorted(c for c in df.columns if c.startswith("param."))]


def final_scores(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Last-epoch value of each metric per trial (one row per trial)."""
    last = table[table.epoch == table.groupby("trial").epoch.transform("max")]
    wide = last.pivot_table(index="trial", columns="metric", values="value", aggfunc="last")
    status = table.groupby("trial").status.first()
    wide = wide.reindex(columns=[m for m in metrics if m in wide.columns])
    wide["status"] = status
    return wide


def pareto_front(scores: pd.DataFrame, metrics: list[str], modes: list[str]) -> list[str]:
    """Trials no other trial beats in every objective (ties kept)."""
    vals = scores[metrics].to_numpy(float) * np.array([1 if m == "max" else -1 for m in modes])
    ok = np.isfinite(vals).all(1)
    front = []
    for i, name in enumerate(scores.index):
        if not ok[i]:
            continue
        dominated = ((vals[ok] >= vals[i]).all(1) & (vals[ok] > vals[i]).any(1)).any()
        if not dominated:
            front.append(name)
    return front


def pick_best(study: Study, table: pd.DataFrame) -> tuple[str | None, list[str]]:
    """(best trial, Pareto front) among trials that ran every epoch.

    Best = the front's member with the best first objective. Trials the
    scheduler stopped early are not candidates: their scores are from fewer
    epochs, not comparable.
    """
    metrics = study.objective.reported
    scores = final_scores(table, metrics)
    scores = scores[scores.status == "completed"]
    if scores.empty or any(m not in scores for m in metrics):
        return None, []
    front = pareto_front(scores, metrics, list(study.objective.modes))
    if not front:
        return None, []
    sign = 1 if study.objective.modes[0] == "max" else -1
    best = max(front, key=lambda t: sign * scores.loc[t, metrics[0]])
    return best, sorted(front)


def model_metrics(rec: TrialRecord) -> pd.DataFrame:
    """A trial's history in bench.train's tidy metrics.csv form (fold, epoch, split, metric, value)."""
    rows = []
    for _, r in _history(rec).iterrows():
        for col, v in r.items():
            if not isinstance(v, (int, float, np.number)) or isinstance(v, bool) or math.isnan(v):
                continue
            if col.startswith(("val_", "test_", "train_")):  # train_loss -> (train, loss)
                split, metric = col.split("_", 1)
            elif col in ("train_loss", "epoch_s", "clips_per_s", "lr"):
                split, metric = "train", {"train_loss": "loss", "epoch_s": "seconds"}.get(col, col)
            else:
                continue
            rows.append({"fold": 1, "epoch": int(r["epoch"]), "split": split, "metric": metric,
                         "value": float(v)})
    return pd.DataFrame(rows, columns=["fold", "epoch", "split", "metric", "value"])
