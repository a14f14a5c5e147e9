"""Robustness figures, from the tidy tables under robustness/.

results:   model, role, shift, severity, seed, metric, value  (shift "clean" at severity 0)
gain:      model, baseline, condition (clean, corrupted, a shift), metric, estimate, ci_low,
           ci_high [, training_seeds] (fractions, shown in points): robustness/gain.csv
imbalance: model, role, ratio, group ("all"|"many"|"medium"|"few"), value [, seed]
           (value = UAR over the group's classes at that train imbalance ratio)
sources:   model, role, split ("seen"|"unseen"), metric, value [, seed]
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.report.figures._common import (NotApplicable, model_colors, order_models,
                                          require_columns, style)

__all__ = ["shift_heatmaps", "degradation_curves", "gain_bars", "imbalance_curves",
           "source_bars", "GROUPS"]

GROUPS = ("all", "many", "medium", "few")
RESULT_COLUMNS = ("model", "role", "shift", "severity", "seed", "metric", "value")


def _roles(df: pd.DataFrame) -> dict[str, str]:
    return df.groupby("model")["role"].first().to_dict() if "role" in df.columns else {}


def _metric_rows(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    require_columns(results, RESULT_COLUMNS, "results")
    rows = results[results["metric"] == metric]
    if rows.empty:
        raise NotApplicable(f"results has no '{metric}' rows")
    return rows


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def shift_heatmaps(results: pd.DataFrame, metric: str = "war") -> go.Figure:
    """Shift x severity heatmap of `metric` (mean over seeds), one panel per model."""
    rows = _metric_rows(results, metric)
    shifted = rows[rows["shift"] != "clean"]
    if shifted.empty:
        raise NotApplicable("results has only clean rows")
    mean = shifted.groupby(["model", "shift", "severity"], as_index=False)["value"].mean()
    models = order_models(mean["model"], _roles(rows))
    shifts = sorted(mean["shift"].unique())
    sevs = sorted(mean["severity"].unique())
    nr, nc = _grid(len(models))
    fig = make_subplots(rows=nr, cols=nc, subplot_titles=models, horizontal_spacing=0.1)
    lo, hi = float(mean["value"].min()), float(mean["value"].max())
    for i, m in enumerate(models):
        z = (mean[mean["model"] == m].pivot(index="shift", columns="severity", values="value")
             .reindex(index=shifts, columns=sevs))
        fig.add_trace(go.Heatmap(
            z=z.values, x=[str(s) for s in sevs], y=shifts, zmin=lo, zmax=hi,
            colorscale="RdYlGn", showscale=i == 0, texttemplate="%{z:.2f}",
            textfont={"size": 9}, colorbar={"title": {"text": metric}},
            hovertemplate=f"{m}<br>%{{y}} severity %{{x}}<br>{metric} %{{z:.3f}}<extra></extra>"),
            row=i // nc + 1, col=i % nc + 1)
    fig.update_xaxes(title_text="severity", type="category")
    fig.update_yaxes(autorange="reversed")  # first shift on top
    return style(fig, f"{metric.upper()} under each shift and severity (mean over seeds)",
                 height=max(320, 40 * len(shifts) + 160) * nr)


def degradation_curves(results: pd.DataFrame, metric: str = "war") -> go.Figure:
    """`metric` vs severity per shift (severity 0 = clean); baselines dashed, bars = seed std."""
    rows = _metric_rows(results, metric)
    roles = _roles(rows)
    clean = rows[rows["shift"] == "clean"]
    shifts = sorted(set(rows["shift"]) - {"clean"})
    if not shifts:
        raise NotApplicable("results has only clean rows")
    models = order_models(rows["model"], roles)
    colors = model_colors(models)
    nr, nc = _grid(len(shifts))
    fig = make_subplots(rows=nr, cols=nc, subplot_titles=shifts, shared_yaxes=True,
                        vertical_spacing=0.12)
    for j, shift in enumerate(shifts):
        part = pd.concat([clean.assign(severity=0), rows[rows["shift"] == shift]])
        stats = part.groupby(["model", "severity"])["value"].agg(["mean", "std"]).reset_index()
        for m in models:
            g = stats[stats["model"] == m].sort_values("severity")
            if g.empty:
                continue
            fig.add_trace(go.Scatter(
                x=g["severity"], y=g["mean"], mode="lines+markers", name=m, legendgroup=m,
                showlegend=j == 0, error_y={"type": "data", "array": g["std"].fillna(0),
                                            "visible": True, "thickness": 1},
                line={"color": colors[m], "dash": "solid" if roles.get(m) == "hdf" else "dash"}),
                row=j // nc + 1, col=j % nc + 1)
    fig.update_xaxes(title_text="severity (0 = clean)", dtick=1)
    fig.update_yaxes(title_text=metric, col=1)
    return style(fig, f"Degradation: {metric.upper()} vs severity", height=330 * nr + 60)


def gain_bars(gain: pd.DataFrame, scale: float = 100.0) -> go.Figure:
    """Gain of each HDF model over each baseline with its confidence interval, in points."""
    require_columns(gain, ("model", "baseline", "condition", "metric", "estimate", "ci_low",
                           "ci_high"), "gain")
    g = gain
    if "training_seeds" not in g.columns:
        g = g.assign(training_seeds=1)
    metrics = list(dict.fromkeys(g["metric"]))
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[m.upper() for m in metrics])
    # over several training seeds first: the pair's verdict; then each seed on its own
    pairs = list(dict.fromkeys(zip(g["model"], g["baseline"], g["training_seeds"])))
    pairs.sort(key=lambda p: -p[2])

    def label(a: str, b: str, n: int) -> str:
        return f"{a} vs {b}" + (f" ({n} seeds)" if n > 1 else "")

    colors = model_colors([label(*p) for p in pairs])
    for j, metric in enumerate(metrics):
        for a, b, n in pairs:
            r = g[(g["metric"] == metric) & (g["model"] == a) & (g["baseline"] == b)
                  & (g["training_seeds"] == n)]
            if r.empty:
                continue
            y = r["estimate"] * scale
            name = label(a, b, n)
            fig.add_trace(go.Bar(
                x=r["condition"], y=y, name=name, legendgroup=name, showlegend=j == 0,
                marker_color=colors[name],
                error_y={"type": "data", "symmetric": False, "array": r["ci_high"] * scale - y,
                         "arrayminus": y - r["ci_low"] * scale},
                hovertemplate=f"{name}<br>%{{x}}: %{{y:+.1f}} points<extra></extra>"),
                row=1, col=j + 1)
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_yaxes(title_text="gain (points, 95% CI)", col=1)
    fig.update_layout(barmode="group")
    return style(fig, "Heterogeneity gain of the HDF model over each baseline", height=400)


def imbalance_curves(imbalance: pd.DataFrame) -> go.Figure:
    """UAR vs training imbalance ratio, one panel per class group (all / many / medium / few-shot)."""
    require_columns(imbalance, ("model", "ratio", "group", "value"), "imbalance")
    roles = _roles(imbalance)
    groups = [x for x in GROUPS if x in set(imbalance["group"])] + sorted(
        set(imbalance["group"]) - set(GROUPS))
    models = order_models(imbalance["model"], roles)
    colors = model_colors(models)
    fig = make_subplots(rows=1, cols=len(groups), shared_yaxes=True,
                        subplot_titles=[f"{x}-shot" if x != "all" else "all classes"
                                        for x in groups])
    stats = imbalance.groupby(["model", "group", "ratio"])["value"].agg(["mean", "std"]).reset_index()
    for j, grp in enumerate(groups):
        for m in models:
            s = stats[(stats["model"] == m) & (stats["group"] == grp)].sort_values("ratio")
            if s.empty:
                continue
            fig.add_trace(go.Scatter(
                x=s["ratio"], y=s["mean"], mode="lines+markers", name=m, legendgroup=m,
                showlegend=j == 0, error_y={"type": "data", "array": s["std"].fillna(0)},
                line={"color": colors[m], "dash": "solid" if roles.get(m) == "hdf" else "dash"}),
                row=1, col=j + 1)
    fig.update_xaxes(type="log", title_text="imbalance ratio")
    fig.update_yaxes(title_text="UAR", col=1)
    return style(fig, "Class imbalance: UAR vs imbalance ratio", height=380)


def source_bars(sources: pd.DataFrame, metric: str = "war") -> go.Figure:
    """Seen vs unseen camera sources per model (bars = mean over seeds, whiskers = std)."""
    require_columns(sources, ("model", "split", "metric", "value"), "sources")
    rows = sources[sources["metric"] == metric]
    if rows.empty:
        raise NotApplicable(f"sources has no '{metric}' rows")
    models = order_models(rows["model"], _roles(rows))
    stats = rows.groupby(["model", "split"])["value"].agg(["mean", "std"]).reset_index()
    fig = go.Figure()
    for split, color in (("seen", "#1f77b4"), ("unseen", "#ff7f0e")):
        s = stats[stats["split"] == split].set_index("model").reindex(models)
        fig.add_trace(go.Bar(x=models, y=s["mean"], name=f"{split} sources", marker_color=color,
                             error_y={"type": "data", "array": s["std"].fillna(0).to_numpy()}))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text=metric)
    return style(fig, f"{metric.upper()} on seen vs unseen sources", height=380)

