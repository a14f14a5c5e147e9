"""The figure registry: name -> FigureSpec (section, the tables it needs, how to draw it).

The drawing functions in sweep.py / models.py / dsm.py / robustness.py are pure
(frames or a study in, a plotly Figure out). A FigureSpec only picks their
inputs out of a `RunData`, so the page (and the browser test) can list which
figures a run folder should produce.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import plotly.graph_objects as go

from bench.registry import Registry
from bench.report.figures import attribution as _attr
from bench.report.figures import dsm as _dsm
from bench.report.figures import models as _models
from bench.report.figures import robustness as _rob
from bench.report.figures import sweep as _sweep
from bench.report.figures._common import NotApplicable
from bench.report.tables import RunData

__all__ = ["FIGURES", "FigureSpec", "NotApplicable", "SECTIONS", "primary_metric", "in_order",
           "objective_metrics"]

SECTIONS = ("sweep", "attribution", "models", "robustness")


@dataclass(frozen=True)
class FigureSpec:
    name: str
    section: str
    needs: tuple[str, ...]  # RunData fields that must not be None
    draw: Callable[[RunData], go.Figure]

    def missing(self, data: RunData) -> list[str]:
        return [n for n in self.needs if getattr(data, n) is None]

    def __call__(self, data: RunData) -> go.Figure:
        """The figure; raises NotApplicable when its tables are absent or unusable."""
        missing = self.missing(data)
        if missing:
            raise NotApplicable(f"no {' / '.join(missing)} table in the run folder")
        return self.draw(data)


FIGURES: Registry[FigureSpec] = Registry("figure")
_ORDER: list[str] = []  # page order = registration order


def _add(name: str, section: str, needs: tuple[str, ...], draw: Callable[[RunData], go.Figure]):
    FIGURES.register(name)(FigureSpec(name, section, needs, draw))
    _ORDER.append(name)


def in_order(section: str | None = None) -> list[FigureSpec]:
    """Registered figures in page order, optionally of one section."""
    specs = [FIGURES.get(n) for n in _ORDER]
    return [s for s in specs if section is None or s.section == section]


def objective_metrics(data: RunData) -> list[str]:
    """Names of the objective metrics as the trials table records them (e.g. "val_war").

    study.yaml's objective (metric, split) first, then the Optuna study's metric
    names; Ray's OptunaSearch does not name the study's objectives.
    """
    obj = (data.study_spec or {}).get("objective") if isinstance(data.study_spec, dict) else None
    if isinstance(obj, dict) and obj.get("metric"):
        metrics = obj["metric"] if isinstance(obj["metric"], list) else [obj["metric"]]
        return [f"{obj.get('split', 'val')}_{m}" for m in metrics]
    if data.study is not None and getattr(data.study, "metric_names", None):
        return list(data.study.metric_names)
    return []


def _names(data: RunData) -> list[str] | None:
    names = objective_metrics(data)
    return names if data.study is not None and len(names) == len(data.study.directions) else None


def primary_metric(data: RunData) -> str:
    """The first objective when the trials table records it, else val_war / test_war / war."""
    recorded = set(data.trials["metric"]) if data.trials is not None else set()
    for m in [*objective_metrics(data)[:1], "val_war", "test_war", "war"]:
        if m in recorded:
            return m
    return "war"


def _roles(data: RunData) -> dict[str, str]:
    return dict(zip(data.models["name"], data.models["role"])) if data.models is not None else {}


_add("sweep.history", "sweep", ("study",), lambda d: _sweep.optimization_history(d.study, _names(d)))
_add("sweep.importance", "sweep", ("study",), lambda d: _sweep.param_importances(d.study, _names(d)))
_add("sweep.sensitivity", "sweep", ("trials",),
     lambda d: _sweep.sensitivity(d.trials, primary_metric(d), (d.summary or {}).get("noise_floor")))
_add("sweep.parallel", "sweep", ("study",), lambda d: _sweep.parallel_coordinate(d.study, _names(d)))
_add("sweep.contour", "sweep", ("study",), lambda d: _sweep.contour(d.study, _names(d)))
_add("sweep.slice", "sweep", ("study",), lambda d: _sweep.slices(d.study, _names(d)))
_add("sweep.curves", "sweep", ("trials",),
     lambda d: _sweep.learning_curves(d.trials, primary_metric(d)))
_add("sweep.pareto", "sweep", ("study",), lambda d: _sweep.pareto_front(d.study, _names(d)))
_add("models.confusion", "models", ("confusion",),
     lambda d: _models.confusion_matrices(d.confusion, _models.class_names_from(d.metrics),
                                          roles=_roles(d)))
_add("models.training", "models", ("metrics",),
     lambda d: _models.training_curves(d.metrics, roles=_roles(d)))
_add("models.dsm", "models", ("metrics",),
     lambda d: _dsm.dsm_diagnostics(d.metrics, roles=_roles(d)))
_add("robustness.heatmap", "robustness", ("results",), lambda d: _rob.shift_heatmaps(d.results))
_add("robustness.degradation", "robustness", ("results",),
     lambda d: _rob.degradation_curves(d.results))
_add("robustness.gain", "robustness", ("gain",), lambda d: _rob.gain_bars(d.gain))
_add("robustness.imbalance", "robustness", ("imbalance",),
     lambda d: _rob.imbalance_curves(d.imbalance))
_add("robustness.sources", "robustness", ("sources",), lambda d: _rob.source_bars(d.sources))
_add("attribution.effects", "attribution", ("effects",), lambda d: _attr.effect_bars(d.effects))
_add("attribution.cells", "attribution", ("effects", "results", "models"),
     lambda d: _attr.cell_scores(cell_table(d)))


def cell_table(data: RunData):
    """Each ablation cell's clean test WAR per training seed (from the suite's clean rows)."""
    import pandas as pd

    res = data.results
    clean = res[(res["shift"] == "clean") & (res["metric"] == "war")]
    m = data.models.set_index("name")
    group = m["group"] if "group" in m.columns else pd.Series(m.index, index=m.index)
    seed = m["seed"] if "seed" in m.columns else pd.Series(0, index=m.index)
    rows = clean[clean["model"].isin(m.index)]
    return pd.DataFrame({"model": rows["model"], "cell": rows["model"].map(group),
                         "seed": rows["model"].map(seed), "value": rows["value"]})
