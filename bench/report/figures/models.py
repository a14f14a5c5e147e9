"""Model figures and the leaderboard, from the per-model tables of models/<name>/.

metrics:   model, role, fold, epoch, split ("train"|"test"), metric, value
           (train rows: loss, seconds, clips_per_s, ...; test rows: war, uar, recall_<class>)
confusion: model, true, pred, count (class names, or integer labels with `class_names`)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.report.figures._common import (model_colors, order_models, require_columns,
                                          style)

__all__ = ["last_test_metrics", "leaderboard", "confusion_matrices", "training_curves",
           "class_order", "class_names_from"]


def last_test_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """Wide (model x metric) of the last test epoch, averaged over folds."""
    test = metrics[metrics["split"] == "test"]
    last = test[test["epoch"] == test.groupby(["model", "fold"])["epoch"].transform("max")]
    return last.pivot_table(index="model", columns="metric", values="value", aggfunc="mean")


def leaderboard(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per model: role, WAR, UAR, per-class recall, epochs and cost, best WAR first."""
    require_columns(metrics, ("model", "role", "fold", "epoch", "split", "metric", "value"),
                    "metrics")
    wide = last_test_metrics(metrics)
    recall = [f"recall_{c}" for c in class_names_from(metrics) or []  # label order
              if f"recall_{c}" in wide.columns]
    cols = [c for c in ("war", "uar") if c in wide.columns] + recall
    board = wide[cols].rename(columns={"war": "WAR", "uar": "UAR"})
    board.columns = [c.removeprefix("recall_") if c.startswith("recall_") else c
                     for c in board.columns]
    train = metrics[metrics["split"] == "train"]
    per_epoch = train.pivot_table(index="model", columns="metric", values="value", aggfunc="mean")
    board["epochs"] = metrics.groupby("model")["epoch"].max()
    if "seconds" in per_epoch:
        board["s/epoch"] = per_epoch["seconds"]
    if "clips_per_s" in per_epoch:
        board["clips/s"] = per_epoch["clips_per_s"]
    board.insert(0, "role", metrics.groupby("model")["role"].first())
    sort = "WAR" if "WAR" in board.columns else board.columns[1]
    return board.sort_values(sort, ascending=False).reset_index()


def class_order(names: Sequence[object], class_names: Sequence[str] | None = None) -> list[str]:
    """Known class names in their given order, the others in order of appearance."""
    seen = list(dict.fromkeys(str(n) for n in names))
    known = [c for c in (class_names or ()) if c in seen]
    return known + [c for c in seen if c not in known]


def class_names_from(metrics: pd.DataFrame | None) -> list[str] | None:
    """Class names in label order, from the recall_<class> rows bench.metrics.score writes."""
    if metrics is None:
        return None
    names = [m.removeprefix("recall_") for m in metrics["metric"].unique() if m.startswith("recall_")]
    return names or None


def _as_names(s: pd.Series, class_names: Sequence[str] | None) -> pd.Series:
    if class_names and pd.api.types.is_integer_dtype(s):
        return s.map(lambda i: class_names[i] if 0 <= i < len(class_names) else str(i))
    return s.astype(str)


def confusion_matrices(confusion: pd.DataFrame, class_names: Sequence[str] | None = None,
                       roles: dict[str, str] | None = None, max_models: int = 6) -> go.Figure:
    """Row-normalised confusion matrices side by side (recall on the diagonal), counts on hover.

    Integer labels are named through `class_names` (label order) when given.
    """
    require_columns(confusion, ("model", "true", "pred", "count"), "confusion")
    df = confusion.assign(true=_as_names(confusion["true"], class_names),
                          pred=_as_names(confusion["pred"], class_names))
    models = order_models(df["model"], roles)[:max_models]
    classes = class_order(pd.concat([df["true"], df["pred"]]), class_names)
    cols = min(len(models), 3)
    rows = math.ceil(len(models) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=models,
                        horizontal_spacing=0.08, vertical_spacing=0.12)
    for i, m in enumerate(models):
        counts = (df[df["model"] == m].pivot_table(index="true", columns="pred", values="count",
                                                    aggfunc="sum")
                  .reindex(index=classes, columns=classes).fillna(0))
        total = counts.sum(axis=1).replace(0, np.nan)
        rate = counts.div(total, axis=0)
        fig.add_trace(go.Heatmap(
            z=rate.values, x=classes, y=classes, zmin=0, zmax=1, colorscale="Blues",
            showscale=i == 0, customdata=counts.values,
            text=np.where(np.isnan(rate.values), "", np.round(rate.values, 2).astype(str)),
            texttemplate="%{text}", textfont={"size": 9},
            hovertemplate="true %{y}<br>pred %{x}<br>rate %{z:.2f}<br>count %{customdata:.0f}"
                          "<extra></extra>"), row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text="true", col=1)
    fig.update_xaxes(title_text="predicted", row=rows)
    return style(fig, "Confusion matrices (rows: true class, normalised)", height=360 * rows + 60)


def training_curves(metrics: pd.DataFrame, roles: dict[str, str] | None = None) -> go.Figure:
    """Train loss, val WAR (when recorded) and test WAR/UAR per epoch (mean over folds)."""
    require_columns(metrics, ("model", "epoch", "split", "metric", "value"), "metrics")
    mean = (metrics.groupby(["model", "split", "metric", "epoch"], as_index=False)["value"].mean())
    panels = [("train", "loss"), ("val", "war"), ("test", "war"), ("test", "uar")]
    panels = [p for p in panels if ((mean["split"] == p[0]) & (mean["metric"] == p[1])).any()]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[f"{s} {m}" for s, m in panels])
    models = order_models(mean["model"], roles)
    colors = model_colors(models)
    for j, (split, metric) in enumerate(panels):
        for m in models:
            g = mean[(mean["model"] == m) & (mean["split"] == split) & (mean["metric"] == metric)]
            if g.empty:
                continue
            fig.add_trace(go.Scatter(
                x=g["epoch"], y=g["value"], mode="lines+markers", name=m, legendgroup=m,
                showlegend=j == 0, line={"color": colors[m],
                                         "dash": "solid" if (roles or {}).get(m) == "hdf" else "dash"}),
                row=1, col=j + 1)
        fig.update_xaxes(title_text="epoch", row=1, col=j + 1)
    return style(fig, "Training curves (mean over folds)", height=380)
