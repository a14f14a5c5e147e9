"""Classification metrics of the DFER literature (docs/method.md).

WAR is plain accuracy; UAR is the mean recall over the classes present in the
ground truth (a class with no test clip has no recall, so it cannot count as
0 or 1). Everything takes integer label arrays and returns plain Python data.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from bench.registry import Registry

__all__ = ["METRICS", "confusion_matrix", "per_class_recall", "war", "uar", "score", "objective_names"]

MetricFn = Callable[[np.ndarray, np.ndarray, int], float]
METRICS: Registry[MetricFn] = Registry("metric")


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {t.shape} vs {p.shape}")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_recall(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Recall per class; NaN for classes absent from y_true."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


@METRICS.register("war")
def war(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    t = np.asarray(y_true)
    return float((t == np.asarray(y_pred)).mean()) if t.size else float("nan")


@METRICS.register("uar")
def uar(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    rec = per_class_recall(y_true, y_pred, num_classes)
    return float(np.nanmean(rec)) if np.isfinite(rec).any() else float("nan")


def score(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict[str, float]:
    """Every registered metric plus `recall_<class>` for each class, as a flat dict."""
    k = len(class_names)
    out = {name: METRICS.get(name)(np.asarray(y_true), np.asarray(y_pred), k) for name in METRICS}
    for name, r in zip(class_names, per_class_recall(y_true, y_pred, k)):
        out[f"recall_{name}"] = float(r)
    return out


def objective_names() -> list[str]:
    """Names `score` returns, i.e. what a sweep can optimise."""
    from bench.data.labels import EMOTIONS

    return [*METRICS.names(), *(f"recall_{c}" for c in EMOTIONS)]
