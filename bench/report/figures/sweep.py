"""Sweep figures: Optuna's own plots of the study, plus learning curves from trials.parquet.

The Optuna plots take the `optuna.Study` loaded from optuna.journal; the
learning curves take the tidy trials table (columns: trial, number, status,
epoch, metric, value; status "completed" | "stopped" (ASHA) | "diverged" |
"failed").
"""
from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from bench.report.figures._common import NotApplicable, status_colors, style

__all__ = ["objective_names", "optimization_history", "param_importances", "parallel_coordinate",
           "contour", "slices", "pareto_front", "learning_curves", "top_params", "sensitivity"]


def objective_names(study: Any, names: list[str] | None = None) -> list[str]:
    """`names` when given, else the study's metric names, else objective0, objective1, ..."""
    names = names or getattr(study, "metric_names", None)
    return list(names) if names else [f"objective{i}" for i in range(len(study.directions))]


def _finished(study: Any) -> list[Any]:
    import optuna

    return [t for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE]


def _first_objective(study: Any, names: list[str] | None = None) -> dict[str, Any]:
    """Keyword arguments that make a single-objective Optuna plot use objective 0."""
    name = objective_names(study, names)[0]
    if len(study.directions) == 1:
        return {"target_name": name}
    return {"target": lambda t: t.values[0], "target_name": name}


def _need(study: Any, n: int) -> list[Any]:
    done = _finished(study)
    if len(done) < n:
        raise NotApplicable(f"needs {n} completed trials, the study has {len(done)}")
    if not done[0].params:
        raise NotApplicable("the study has no searched parameters")
    return done


def optimization_history(study: Any, names: list[str] | None = None) -> go.Figure:
    import optuna.visualization as ov

    _need(study, 1)
    return style(ov.plot_optimization_history(study, **_first_objective(study, names)),
                 "Optimization history")


def _importance_target(study: Any) -> Any:
    """None (Optuna reads the direction) or objective 0 signed so that lower is better:
    PED-ANOVA ranks parameters by how they reach *low* target values."""
    import optuna

    if len(study.directions) == 1:
        return None
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return lambda t: sign * t.values[0]


def _importances(study: Any) -> dict[str, float]:
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    # PED-ANOVA needs no scikit-learn (fANOVA, Optuna's default, does).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the low-is-better note: handled above
        return optuna.importance.get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(), target=_importance_target(study))


def top_params(study: Any, k: int = 2) -> list[str]:
    """The k most important searched parameters (importance order)."""
    _need(study, 2)
    params = sorted({p for t in _finished(study) for p in t.params})
    if len(params) <= k:
        return params
    try:
        imp = _importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return params[:k]
    ranked = [p for p in imp if p in params] + [p for p in params if p not in imp]
    return ranked[:k]


def param_importances(study: Any, names: list[str] | None = None) -> go.Figure:
    import optuna.visualization as ov
    from optuna.importance import PedAnovaImportanceEvaluator

    _need(study, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig = ov.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator(),
                                        target=_importance_target(study),
                                        target_name=objective_names(study, names)[0])
    return style(fig, "Parameter importances (PED-ANOVA)")


def parallel_coordinate(study: Any, names: list[str] | None = None) -> go.Figure:
    import optuna.visualization as ov

    _need(study, 2)
    return style(ov.plot_parallel_coordinate(study, **_first_objective(study, names)),
                 "Parallel coordinates")


def contour(study: Any, names: list[str] | None = None) -> go.Figure:
    """Contour of the two most important parameters."""
    import optuna.visualization as ov

    params = top_params(study, 2)
    if len(params) < 2:
        raise NotApplicable("a contour needs two searched parameters")
    fig = ov.plot_contour(study, params=params, **_first_objective(study, names))
    return style(fig, f"Contour: {params[0]} x {params[1]}")


def slices(study: Any, names: list[str] | None = None) -> go.Figure:
    import optuna.visualization as ov

    _need(study, 1)
    fig = ov.plot_slice(study, **_first_objective(study, names))
    fig.update_layout(width=None, autosize=True)  # Optuna fixes 300 px per parameter: overflows
    return style(fig, "Slice plot", height=380)


def pareto_front(study: Any, names: list[str] | None = None) -> go.Figure:
    import optuna.visualization as ov

    if len(study.directions) < 2:
        raise NotApplicable("single-objective study: no Pareto front")
    _need(study, 1)
    fig = ov.plot_pareto_front(study, target_names=objective_names(study, names))
    return style(fig, "Pareto front")


def learning_curves(trials: pd.DataFrame, metric: str = "war") -> go.Figure:
    """One line per trial of `metric` vs epoch, coloured by status; x marks where ASHA stopped it."""
    rows = trials[trials["metric"] == metric].sort_values(["number", "epoch"])
    if rows.empty:
        raise NotApplicable(f"trials.parquet has no '{metric}' rows")
    colors = status_colors()
    fig = go.Figure()
    shown: set[str] = set()
    for (number, trial, status), g in rows.groupby(["number", "trial", "status"], sort=True):
        color = colors.get(status, "#7f7f7f")
        fig.add_trace(go.Scatter(
            x=g["epoch"], y=g["value"], mode="lines", line={"color": color, "width": 1.5},
            name=status, legendgroup=status, showlegend=status not in shown, opacity=0.8,
            hovertemplate=f"{trial} ({status})<br>epoch %{{x}}<br>{metric} %{{y:.3f}}<extra></extra>"))
        shown.add(status)
        if status != "completed":  # mark where the trial ended
            last = g.iloc[-1]
            fig.add_trace(go.Scatter(
                x=[last["epoch"]], y=[last["value"]], mode="markers", showlegend=False,
                legendgroup=status, marker={"symbol": "x", "size": 9, "color": color},
                hovertemplate=f"{trial} {status} at epoch %{{x}}<extra></extra>"))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=metric)
    return style(fig, f"Intermediate {metric} per trial (x: stopped early / diverged / failed)")


def sensitivity(trials: pd.DataFrame, metric: str, noise: dict[str, Any] | None) -> go.Figure:
    """Each parameter's main effect on `metric` (points) beside what seed noise alone gives."""
    from bench.search.sensitivity import parameter_effects

    std = float((noise or {}).get("std") or float("nan"))
    eff = parameter_effects(trials, metric, std)
    if eff.empty:
        raise NotApplicable("needs two completed trials that differ in a parameter")
    fig = go.Figure(go.Bar(
        x=eff["param"], y=eff["effect"] * 100, name="main effect",
        customdata=eff[["low_group", "high_group", "n_low", "n_high"]].to_numpy(),
        hovertemplate="%{x}: %{y:.1f} points<br>%{customdata[0]} (n=%{customdata[2]}) vs "
                      "%{customdata[1]} (n=%{customdata[3]})<extra></extra>"))
    if eff["threshold"].notna().any():
        fig.add_trace(go.Scatter(x=eff["param"], y=eff["threshold"] * 100, mode="markers",
                                 marker={"symbol": "line-ew-open", "size": 28, "color": "black"},
                                 name="seed-noise threshold (2 sd of a difference)"))
        title = (f"Parameter effects on {metric} vs seed noise ({std * 100:.1f} points std, "
                 f"{(noise or {}).get('source', '')})")
    else:
        title = f"Parameter effects on {metric} (no seed-noise floor measured in this run)"
    fig.update_yaxes(title_text="|mean difference| (points)")
    return style(fig, title, height=360)
