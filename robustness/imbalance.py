"""Class imbalance: long-tailed label priors for re-scoring and for training.

Profiles give the relative size of each class, head to tail, for K classes and
an imbalance ratio rho = n_head / n_tail (10, 50, 100 as in long-tailed CIFAR):

    exp   n_r = n_head * rho ** (-r / (K - 1))          r = 0 .. K-1 (rank)
    step  n_r = n_head for the first ceil(K/2) ranks, n_head / rho for the rest

Head-to-tail order is the data's own (most frequent class first, ties by class
index), so the test prior exaggerates the training prior; pass `order` for
another. Shot groups split the ranks in thirds, rounded: for K = 7, many =
2 head classes, medium = 3, few = 2 tail classes.

Re-scoring resamples the clean test predictions with replacement to the
profile (same size as the test set, every class at least one clip): no new
inference, and the same draw for every model (seeded by seed, profile, ratio).
Training draws a subset without replacement (n_head = the head class's count).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from bench.errors import ConfigError
from bench.metrics import per_class_recall

__all__ = ["PROFILES", "RATIOS", "profile_fractions", "head_to_tail", "shot_groups",
           "resample_long_tail", "long_tail_subset", "rescore_long_tail", "parse_ratios"]

PROFILES = ("exp", "step")
RATIOS = (10, 50, 100)


def profile_fractions(k: int, profile: str, ratio: float) -> np.ndarray:
    """Relative class sizes by rank, head = 1.0.  # (K,)"""
    if profile not in PROFILES:
        raise ConfigError(f"unknown imbalance profile '{profile}'. Valid: {', '.join(PROFILES)}")
    if ratio < 1:
        raise ConfigError(f"imbalance ratio must be >= 1, got {ratio}")
    r = np.arange(k)
    if profile == "exp":
        return ratio ** (-r / max(k - 1, 1))
    return np.where(r < (k + 1) // 2, 1.0, 1.0 / ratio)


def head_to_tail(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Present classes, most frequent first (ties by index)."""
    counts = np.bincount(labels, minlength=num_classes)
    present = np.flatnonzero(counts)
    return present[np.argsort(-counts[present], kind="stable")]


def shot_groups(order: Sequence[int]) -> dict[str, list[int]]:
    """many / medium / few: the head, middle and tail thirds of a head-to-tail order."""
    k = len(order)
    third = int(round(k / 3))
    return {"many": list(order[:third]), "medium": list(order[third:k - third]),
            "few": list(order[k - third:])}


def resample_long_tail(labels: np.ndarray, profile: str, ratio: float, rng: np.random.Generator,
                       *, order: Sequence[int] | None = None, size: int | None = None) -> np.ndarray:
    """Clip indices (with replacement) whose label counts follow the profile."""
    labels = np.asarray(labels)
    order = np.asarray(order if order is not None else head_to_tail(labels, labels.max() + 1))
    frac = profile_fractions(len(order), profile, ratio)
    total = size or len(labels)
    counts = np.maximum(1, np.round(total * frac / frac.sum()).astype(int))
    picks = [rng.choice(np.flatnonzero(labels == c), size=n, replace=True)
             for c, n in zip(order, counts)]
    return np.concatenate(picks)


def long_tail_subset(labels: np.ndarray, profile: str, ratio: float, rng: np.random.Generator,
                     *, order: Sequence[int] | None = None) -> np.ndarray:
    """Training subset (no replacement): n_head = the head class's count, others per profile."""
    labels = np.asarray(labels)
    order = np.asarray(order if order is not None else head_to_tail(labels, labels.max() + 1))
    frac = profile_fractions(len(order), profile, ratio)
    n_head = int((labels == order[0]).sum())
    picks = []
    for c, f in zip(order, frac):
        pool = np.flatnonzero(labels == c)
        n = int(min(len(pool), max(1, np.floor(n_head * f))))
        picks.append(np.sort(rng.choice(pool, size=n, replace=False)))
    return np.sort(np.concatenate(picks))


def rescore_long_tail(y_true: np.ndarray, preds: dict[str, np.ndarray], num_classes: int, *,
                      ratios: Sequence[float] = RATIOS, profiles: Sequence[str] = PROFILES,
                      seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """WAR, UAR and many/medium/few recall of each model on long-tailed resamples.

    Tidy: model, shift ("longtail_<profile>"), severity (the ratio), seed, metric, value.
    """
    y_true = np.asarray(y_true)
    order = head_to_tail(y_true, num_classes)
    groups = shot_groups(order)
    rows = []
    for pi, profile in enumerate(profiles):
        for ratio in ratios:
            for seed in seeds:
                rng = np.random.default_rng([int(seed), pi, int(ratio)])
                idx = resample_long_tail(y_true, profile, ratio, rng, order=order)
                y = y_true[idx]
                for model, p in preds.items():
                    rec = per_class_recall(y, np.asarray(p)[idx], num_classes)
                    values = {"war": float((y == np.asarray(p)[idx]).mean()),
                              "uar": float(np.nanmean(rec))}
                    for g, cls in groups.items():
                        values[f"recall_{g}"] = float(np.nanmean(rec[cls])) if cls else np.nan
                    rows += [{"model": model, "shift": f"longtail_{profile}", "severity": int(ratio),
                              "seed": int(seed), "metric": k, "value": v} for k, v in values.items()]
    return pd.DataFrame(rows, columns=["model", "shift", "severity", "seed", "metric", "value"])


def parse_ratios(text: str) -> list[int]:
    """"10,50,100" -> [10, 50, 100]; "off" or "" -> [] (no long-tail rows)."""
    if text.strip().lower() in ("", "off", "none"):
        return []
    out = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        try:
            value = int(item)
        except ValueError:
            value = 0
        if value < 2:
            raise ConfigError(f"imbalance ratio '{item}' is invalid: use integers >= 2 "
                              f"(e.g. {','.join(map(str, RATIOS))}) or off")
        out.append(value)
    return out
