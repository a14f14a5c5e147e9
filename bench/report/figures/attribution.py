"""Attribution figures of an ablation: factor effects with intervals, and every cell's score.

effects: effect, kind (main | interaction), metric (clean_war, clean_uar, corrupted_war),
         estimate, ci_low, ci_high, training_seeds, note   (effects.csv, fractions)
cells:   model, cell, seed, value  (clean test WAR of each cell at each training seed)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bench.report.figures._common import NotApplicable, model_colors, require_columns, style

__all__ = ["effect_bars", "cell_scores"]


def effect_bars(effects: pd.DataFrame, scale: float = 100.0) -> go.Figure:
    """Main effects and two-way interactions in points, one bar group per metric."""
    require_columns(effects, ("effect", "metric", "estimate", "ci_low", "ci_high"), "effects")
    terms = list(dict.fromkeys(effects["effect"]))
    metrics = list(dict.fromkeys(effects["metric"]))
    colors = model_colors(metrics)
    fig = go.Figure()
    for m in metrics:
        r = effects[effects["metric"] == m].set_index("effect").reindex(terms)
        y = r["estimate"] * scale
        has_ci = r["ci_low"].notna().any()
        fig.add_trace(go.Bar(
            x=terms, y=y, name=m, marker_color=colors[m],
            error_y={"type": "data", "symmetric": False, "visible": bool(has_ci),
                     "array": (r["ci_high"] * scale - y).fillna(0),
                     "arrayminus": (y - r["ci_low"] * scale).fillna(0)},
            hovertemplate=f"{m}<br>%{{x}}: %{{y:+.1f}} points<extra></extra>"))
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="effect (points; 95 % interval over seeds x clips)")
    n = int(effects["training_seeds"].max()) if "training_seeds" in effects else 0
    note = "" if n >= 2 else " (intervals need >= 2 training seeds)"
    return style(fig, f"Effects of HDF's parts: main effects and two-way interactions{note}",
                 height=420)


def cell_scores(cells: pd.DataFrame, scale: float = 1.0) -> go.Figure:
    """Each cell's clean test WAR: the mean over seeds as a bar, every seed as a dot."""
    require_columns(cells, ("cell", "seed", "value"), "cells")
    order = sorted(set(cells["cell"]), key=lambda c: (0 if c == "none" else c.count("+") + 1, c))
    stats = cells.groupby("cell")["value"].agg(["mean", "std", "size"]).reindex(order)
    if stats.empty:
        raise NotApplicable("no cell scores")
    fig = go.Figure(go.Bar(x=order, y=stats["mean"] * scale, name="mean over seeds",
                           marker_color="#9ecae1",
                           customdata=np.c_[stats["std"].fillna(0), stats["size"]],
                           hovertemplate="%{x}: %{y:.3f} (std %{customdata[0]:.3f}, "
                                         "%{customdata[1]} seeds)<extra></extra>"))
    fig.add_trace(go.Scatter(x=cells["cell"], y=cells["value"] * scale, mode="markers",
                             name="one training seed", marker={"color": "#08519c", "size": 7},
                             hovertemplate="%{x} seed %{text}: %{y:.3f}<extra></extra>",
                             text=cells["seed"].astype(str)))
    fig.update_yaxes(title_text="clean test WAR")
    return style(fig, "Every cell of the factorial (bars: mean; dots: training seeds)", height=380)
