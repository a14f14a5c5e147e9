"""What DSM did: its terms, its scales and each term's share of the gradient, per epoch.

Reads the train rows of the per-model metrics table (model, role, fold, epoch,
split, metric, value) that every DSM run writes: the terms `ce`, `dsc`, `ib`;
the scales `lambda_ce`, `lambda_sc` and the gradient norm `g` they came from;
the gradient probe's `grad_share_<term>` (the term's weighted gradient norm
over the total's); `pairs`, how many pairs the `figure` weights rest on per
anchor. One row of panels per model that recorded them, means over folds.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.report.figures._common import NotApplicable, order_models, require_columns, style

__all__ = ["dsm_diagnostics", "DSM_PANELS"]

# panel title -> (metrics drawn, log y axis)
DSM_PANELS: dict[str, tuple[tuple[str, ...], bool]] = {
    "loss terms": (("ce", "dsc", "ib"), False),
    "scales (lambda, g)": (("lambda_ce", "lambda_sc", "g"), True),
    "share of the gradient norm": (("grad_share_ce", "grad_share_dsc", "grad_share_ib"), True),
    "effective pairs (figure weights)": (("pairs",), False),
}
_COLORS = {"ce": "#1f77b4", "dsc": "#d62728", "ib": "#2ca02c", "lambda_ce": "#1f77b4",
           "lambda_sc": "#d62728", "g": "#7f7f7f", "grad_share_ce": "#1f77b4",
           "grad_share_dsc": "#d62728", "grad_share_ib": "#2ca02c", "pairs": "#9467bd"}


def dsm_diagnostics(metrics: pd.DataFrame, roles: dict[str, str] | None = None,
                    max_models: int = 4) -> go.Figure:
    """Per DSM model (rows, HDF first): loss terms, scales, gradient shares, effective pairs."""
    require_columns(metrics, ("model", "epoch", "split", "metric", "value"), "metrics")
    wanted = {m for names, _ in DSM_PANELS.values() for m in names}
    train = metrics[(metrics["split"] == "train") & metrics["metric"].isin(wanted)]
    mean = train.groupby(["model", "metric", "epoch"], as_index=False)["value"].mean()
    models = order_models(mean.loc[mean["metric"] == "lambda_sc", "model"], roles)[:max_models]
    if not models:
        raise NotApplicable("no model recorded DSM diagnostics (train rows lambda_ce, lambda_sc)")
    panels = [(t, names, log) for t, (names, log) in DSM_PANELS.items()
              if mean["metric"].isin(names).any()]
    fig = make_subplots(rows=len(models), cols=len(panels), horizontal_spacing=0.07,
                        vertical_spacing=0.12 if len(models) > 1 else 0.1,
                        subplot_titles=[f"{m}: {t}" for m in models for t, _, _ in panels])
    shown: set[str] = set()
    for i, model in enumerate(models):
        for j, (_, names, log) in enumerate(panels):
            for name in names:
                g = mean[(mean["model"] == model) & (mean["metric"] == name)]
                if g.empty:
                    continue
                fig.add_trace(go.Scatter(
                    x=g["epoch"], y=g["value"], mode="lines+markers", name=name, legendgroup=name,
                    showlegend=name not in shown, line={"color": _COLORS[name]},
                    hovertemplate=f"{model}<br>{name}<br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>"),
                    row=i + 1, col=j + 1)
                shown.add(name)
            if log:
                fig.update_yaxes(type="log", row=i + 1, col=j + 1)
            fig.update_xaxes(title_text="epoch" if i == len(models) - 1 else None,
                             row=i + 1, col=j + 1)
    return style(fig, "What DSM did (per epoch, mean over folds)", height=300 * len(models) + 80)
