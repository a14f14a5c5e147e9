"""Shared look of every figure, and the exception that says a figure does not apply."""
from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go
from plotly.colors import qualitative

__all__ = ["NotApplicable", "style", "status_colors", "model_colors", "order_models",
           "require_columns"]


class NotApplicable(Exception):
    """The data cannot make this figure (too few rows, single objective...); the page shows why."""


def require_columns(df, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise NotApplicable(f"{what} lacks column(s) {', '.join(missing)}")
    if df.empty:
        raise NotApplicable(f"{what} has no rows")


def style(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01}, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 50}, font={"size": 12})
    if height:
        fig.update_layout(height=height)
    return fig


def status_colors() -> dict[str, str]:
    return {"completed": "#2ca02c", "stopped": "#ff7f0e", "diverged": "#d62728",
            "failed": "#7f7f7f", "pruned": "#ff7f0e"}


def order_models(models: Iterable[str], roles: dict[str, str] | None = None) -> list[str]:
    """HDF models first, then baselines; alphabetical within each."""
    roles = roles or {}
    return sorted(set(models), key=lambda m: (roles.get(m, "") != "hdf", m))


def model_colors(models: Iterable[str]) -> dict[str, str]:
    """A stable colour per model across every figure of the page."""
    palette = qualitative.D3 + qualitative.Set2
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}
