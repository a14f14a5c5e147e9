"""Training seeds as the unit of replication: an interval over seeds and test clips together.

    diff (S, N): per training seed s and test clip j, candidate minus baseline
        correctness (each in {0, 1}, or a mean over corruption conditions),
        both models of a row trained with seed s
    weights (N,): how each clip counts in the metric (WAR: 1/N; UAR: 1/(K n_class))
        -> per-seed gains g_s = sum_j w_j diff_sj            (S,)
        -> estimate = mean_s g_s
        -> SE^2 = var_s(g_s) / S + sigma_clip^2 * sum_j w_j^2
        -> estimate +- t(df) * SE, df by Welch-Satterthwaite

Why not a bootstrap over seeds: with the 2 to 5 seeds a study can afford, a
percentile bootstrap of a mean of S values is too narrow (its spread is
sqrt((S - 1) / S) of the true one, and it has only a handful of distinct
resamples), so it covers far less than it claims. The seed term here is a
t interval on the per-seed gains, exact when they are normal. The clip term
is the part of test-clip sampling that all seeds share (a clip that favours
the candidate does so for every seed): a two-way (seed x clip) random-effects
decomposition, sigma_clip^2 = var_j(mean_s diff_sj) - MS_residual / S, so the
per-seed clip noise that var_s(g_s) already holds is not counted twice.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["seed_clip_interval", "metric_weights"]


def metric_weights(y_true: np.ndarray, metric: str) -> np.ndarray:
    """Clip weights that make sum_j w_j ok_j the metric: WAR (plain mean) or UAR (class-balanced)."""
    y = np.asarray(y_true)
    if metric == "war":
        return np.full(len(y), 1.0 / len(y))
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return 1.0 / (len(classes) * counts[inverse])


def seed_clip_interval(diff: np.ndarray, weights: np.ndarray, *, level: float = 0.95
                       ) -> dict[str, float]:
    """Estimate, interval, SE and degrees of freedom of the mean paired gain over S >= 2 seeds."""
    d = np.asarray(diff, dtype=np.float64)  # (S, N)
    w = np.asarray(weights, dtype=np.float64)  # (N,)
    s, n = d.shape
    if s < 2:
        raise ValueError("an interval over training seeds needs at least 2 seeds")
    g = d @ w  # (S,) per-seed gains
    estimate = float(g.mean())
    seed_var = float(g.var(ddof=1)) / s
    clip_mean = d.mean(0)  # (N,)
    resid = d - d.mean(1, keepdims=True) - clip_mean[None] + d.mean()
    ms_resid = float((resid ** 2).sum()) / ((s - 1) * max(n - 1, 1))
    clip_sigma2 = max(0.0, float(clip_mean.var(ddof=1)) - ms_resid / s) if n > 1 else 0.0
    clip_var = clip_sigma2 * float((w ** 2).sum())
    var = seed_var + clip_var
    if var <= 0:  # every seed and clip agree: no spread to widen the interval
        return {"estimate": estimate, "ci_low": estimate, "ci_high": estimate, "se": 0.0,
                "df": float(s - 1)}
    df = var ** 2 / (seed_var ** 2 / (s - 1) + clip_var ** 2 / max(n - 1, 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(var)
    return {"estimate": estimate, "ci_low": estimate - half, "ci_high": estimate + half,
            "se": math.sqrt(var), "df": float(df)}
