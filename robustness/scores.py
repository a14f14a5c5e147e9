"""Corruption scores from the tidy results table, and paired bootstrap gains from predictions.

    results (model, role, shift, severity, seed, metric, value)
        -> per_shift:  mean over seeds, then severities        (model, shift, metric, value)
        -> corruption_scores: clean, mPC, rPC, mCE, rmCE        (model, role, baseline, metric, score, value)
    predictions (model, shift, severity, seed, clip, y_true, y_pred)
        -> gains: model - baseline trained with the same seed, paired bootstrap CI over
           clips (and corruption seeds); over >= 2 training seeds, also the mean gain
           with an interval over seeds and clips (robustness.replication)

Definitions (Hendrycks & Dietterich 2019, with accuracy A = WAR or UAR, error E = 1 - A;
c = a shift, s = a severity; every mean over seeds first):
    mPC  = mean_c mean_s A(c, s)                  rPC = mPC / A(clean)
    CE_c = sum_s E(c, s) / sum_s E_base(c, s)     mCE = mean_c CE_c
    rCE_c = sum_s (E(c, s) - E(clean)) / sum_s (E_base(c, s) - E_base(clean)); rmCE = mean_c rCE_c
mCE and rmCE are ratios (1.0 = as robust as the baseline; lower is better).
Only rows whose shift is in `shift_names` (the corruption registry) enter mPC/mCE,
so the long-tail rows of the same table are left alone.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from robustness.replication import metric_weights, seed_clip_interval

__all__ = ["per_condition", "per_shift", "corruption_scores", "mce", "paired_bootstrap",
           "gains", "METRICS", "GAIN_COLUMNS",
           "COVERS_CLIPS", "COVERS_SEEDS"]

METRICS = ("war", "uar")
_KEYS = ["model", "shift", "severity"]


def per_condition(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over seeds of one metric: columns model, shift, severity, value."""
    r = results[results.metric == metric]
    return r.groupby(_KEYS, as_index=False, sort=False)["value"].mean()


def per_shift(results: pd.DataFrame, shift_names: Iterable[str]) -> pd.DataFrame:
    """Mean over seeds and severities: model, shift, metric, value (clean included)."""
    keep = set(shift_names) | {"clean"}
    r = results[results["shift"].isin(keep)]
    by_cond = r.groupby([*_KEYS, "metric"], as_index=False, sort=False)["value"].mean()
    return by_cond.groupby(["model", "shift", "metric"], as_index=False, sort=False)["value"].mean()


def _clean(cond: pd.DataFrame) -> pd.Series:
    return cond[cond["shift"] == "clean"].set_index("model")["value"]


def mce(results: pd.DataFrame, baseline: str, shift_names: Iterable[str], *, metric: str = "war",
        relative: bool = False) -> pd.Series:
    """mCE (or relative mCE) of every model against `baseline`, indexed by model."""
    cond = per_condition(results, metric)
    clean = _clean(cond)
    corr = cond[cond["shift"].isin(set(shift_names))].copy()
    corr["err"] = 1.0 - corr["value"]
    if relative:
        corr["err"] -= 1.0 - corr["model"].map(clean)
    summed = corr.groupby(["model", "shift"])["err"].sum().unstack("shift")  # (models, shifts)
    if baseline not in summed.index:
        return pd.Series(np.nan, index=summed.index, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = summed / summed.loc[baseline]
    ratio = ratio.replace([np.inf, -np.inf], np.nan)
    return ratio.mean(axis=1, skipna=False)


def corruption_scores(results: pd.DataFrame, shift_names: Iterable[str],
                      baseline: str | None) -> pd.DataFrame:
    """Tidy: model, role, baseline, metric, score (clean, mPC, rPC, mCE, rmCE), value."""
    names = set(shift_names)
    roles = results.drop_duplicates("model").set_index("model")["role"]
    rows = []
    for metric in METRICS:
        cond = per_condition(results, metric)
        clean = _clean(cond)
        corr = cond[cond["shift"].isin(names)]
        mpc = corr.groupby(["model", "shift"])["value"].mean().groupby("model").mean()
        parts = {"clean": clean, "mPC": mpc, "rPC": mpc / clean}
        if baseline is not None:
            parts["mCE"] = mce(results, baseline, names, metric=metric)
            parts["rmCE"] = mce(results, baseline, names, metric=metric, relative=True)
        for score, series in parts.items():
            for model in roles.index:
                rows.append({"model": model, "role": roles[model], "baseline": baseline or "",
                             "metric": metric, "score": score,
                             "value": float(series.get(model, np.nan))})
    return pd.DataFrame(rows, columns=["model", "role", "baseline", "metric", "score", "value"])


def paired_bootstrap(diff: np.ndarray, y_true: np.ndarray, *, n_boot: int, rng: np.random.Generator,
                     level: float = 0.95) -> dict[str, dict[str, float]]:
    """Point estimate and percentile CI of a paired difference in WAR and UAR.

    diff (S, N): per seed and clip, model minus baseline correctness (each in
    {0, 1}, or a mean over conditions). Clips are resampled with replacement,
    the same clips for both models (that is the pairing); with S > 1 seeds the
    seeds are resampled too. Both WAR and UAR are linear in the correctness
    once the resampled class counts are fixed, so a mean over conditions can
    be bootstrapped as one array.
    """
    diff = np.atleast_2d(np.asarray(diff, dtype=np.float64))
    s, n = diff.shape
    classes = np.unique(y_true)
    onehot = (np.asarray(y_true)[None, :] == classes[:, None]).astype(np.float64)  # (K, N)

    def stats(w: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # w (B, N) clip counts, d (B, N) seed-averaged differences
        war = (w * d).sum(1) / w.sum(1)
        num = (w * d) @ onehot.T  # (B, K)
        den = w @ onehot.T
        with np.errstate(invalid="ignore", divide="ignore"):
            uar = np.nanmean(np.where(den > 0, num / den, np.nan), axis=1)
        return war, uar

    point_war, point_uar = stats(np.ones((1, n)), diff.mean(0, keepdims=True))
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # (B, N)
    if s > 1:
        picks = rng.integers(s, size=(n_boot, s))  # (B, S)
        d = diff[picks].mean(1)  # (B, N)
    else:
        d = np.broadcast_to(diff[0], (n_boot, n))
    boot_war, boot_uar = stats(w, d)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out = {}
    for name, point, boot in (("war", point_war, boot_war), ("uar", point_uar, boot_uar)):
        out[name] = {"estimate": float(point[0]), "ci_low": float(np.percentile(boot, lo)),
                     "ci_high": float(np.percentile(boot, hi))}
    return out


def _correct(pred: pd.DataFrame, model: str, conds: list[tuple[str, int]],
             seeds: Sequence[int], clips: list) -> np.ndarray:
    """Correctness (S, N) of `model` averaged over `conds`; clean rows serve every seed."""
    m = pred[pred.model == model]
    total = np.zeros((len(seeds), len(clips)))
    for shift, sev in conds:
        c = m[(m["shift"] == shift) & (m.severity == sev)]
        table = (c.assign(ok=(c.y_true == c.y_pred).astype(float))
                 .pivot(index="seed", columns="clip", values="ok").reindex(columns=clips))
        if shift == "clean":
            table = pd.concat([table.iloc[[0]]] * len(seeds))
            table.index = list(seeds)
        total += table.reindex(index=list(seeds)).to_numpy()
    return total / len(conds)


GAIN_COLUMNS = ["model", "baseline", "condition", "metric", "estimate", "ci_low", "ci_high",
                "training_seeds", "covers", "n_boot", "level"]
COVERS_CLIPS = "clips"
COVERS_SEEDS = "seeds x clips"


def _pairs(roles: Mapping[str, str], groups: Mapping[str, tuple[str, int]]
           ) -> list[tuple[str, str, list[tuple[int, str, str]]]]:
    """(candidate group, baseline group, [(training seed, candidate model, baseline model)])."""
    by_group: dict[str, dict[int, str]] = {}
    role_of: dict[str, str] = {}
    for name, role in roles.items():
        group, seed = groups.get(name, (name, 0))
        by_group.setdefault(group, {})[int(seed)] = name
        role_of[group] = role
    out = []
    for h, hs in by_group.items():
        if role_of[h] != "hdf":
            continue
        for b, bs in by_group.items():
            if role_of[b] == "baseline":
                out.append((h, b, [(s, hs[s], bs[s]) for s in sorted(set(hs) & set(bs))]))
    return out


def gains(predictions: pd.DataFrame, roles: Mapping[str, str], shift_names: Iterable[str], *,
          groups: Mapping[str, tuple[str, int]] | None = None, n_boot: int = 1000, seed: int = 0,
          level: float = 0.95) -> pd.DataFrame:
    """Each HDF model minus each baseline trained with the same seed, with paired intervals.

    `groups`: model name -> (group, training seed), e.g. "hdf-best-s1" -> ("hdf-best", 1);
    without it every model is its own group at seed 0. Per training seed: one row per
    pair, a paired bootstrap over test clips (covers "clips"). Where a candidate and a
    baseline share >= 2 training seeds, one more row for the pair of groups: the mean
    over seeds of the paired gain with an interval over seeds and clips together
    (covers "seeds x clips", `robustness.replication`).

    Tidy (GAIN_COLUMNS): model, baseline, condition (clean, corrupted = mean over every
    shift and severity, or one shift), metric, estimate, ci_low, ci_high,
    training_seeds, covers, n_boot, level.
    """
    names = set(shift_names)
    pred = predictions
    clips = list(dict.fromkeys(pred.loc[pred["shift"] == "clean", "clip"]))
    y = pred[pred["shift"] == "clean"].drop_duplicates("clip").set_index("clip").loc[clips, "y_true"]
    y = y.to_numpy()
    conds = (pred[pred["shift"].isin(names)][["shift", "severity"]].drop_duplicates()
             .itertuples(index=False, name=None))
    conds = [(str(a), int(b)) for a, b in conds]
    seeds = sorted(pred.loc[pred["shift"].isin(names), "seed"].unique().tolist()) or [0]
    cond_groups: dict[str, list[tuple[str, int]]] = {"clean": [("clean", 0)]}
    if conds:
        cond_groups["corrupted"] = conds
        for shift in dict.fromkeys(c[0] for c in conds):
            cond_groups[shift] = [c for c in conds if c[0] == shift]
    weights = {m: metric_weights(y, m) for m in METRICS}
    rows = []

    def add(model: str, base: str, group: str, res: dict, n_seeds: int, boot: int) -> None:
        for metric, r in res.items():
            rows.append({"model": model, "baseline": base, "condition": group, "metric": metric,
                         "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "training_seeds": n_seeds,
                         "covers": COVERS_SEEDS if n_seeds > 1 else COVERS_CLIPS,
                         "n_boot": boot, "level": level})

    for h, b, paired in _pairs(roles, groups or {}):
        for gi, (group, cl) in enumerate(cond_groups.items()):
            ss = [0] if group == "clean" else seeds
            per_seed = []  # (N,) per training seed: mean over corruption seeds
            for _, hm, bm in paired:
                diff = _correct(pred, hm, cl, ss, clips) - _correct(pred, bm, cl, ss, clips)
                rng = np.random.default_rng([seed, gi])
                add(hm, bm, group, paired_bootstrap(diff, y, n_boot=n_boot, rng=rng, level=level),
                    1, n_boot)
                per_seed.append(diff.mean(0))
            if len(paired) > 1:
                d = np.stack(per_seed)  # (S, N)
                add(h, b, group, {m: seed_clip_interval(d, weights[m], level=level)
                                  for m in METRICS}, len(paired), 0)
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)
