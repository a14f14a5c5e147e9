"""Plain-words findings computed from the run's numbers (never typed in by hand).

Each function takes frames and returns sentences; missing tables give no
sentence. Differences are in points (x100) with the CI from gain.csv when the
robustness suite computed one for that pair.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.figures.models import last_test_metrics
from bench.report.tables import RunData

__all__ = ["findings", "sweep_findings", "clean_scores", "model_findings", "robustness_findings"]


def _pts(x: float) -> str:
    return f"{x * 100:+.1f} points"


def _fmt_params(params: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={f(v)}" for k, v in params.items())


def sweep_findings(trials: pd.DataFrame | None, study: Any = None,
                   names: list[str] | None = None, summary: dict | None = None) -> list[str]:
    """Trial counts by status, then the best trial: summary.json's pick (among trials that ran
    every epoch) when the sweep wrote one, else the Optuna study's best."""
    out = []
    if trials is not None and len(trials):
        per = trials.drop_duplicates("trial")["status"].value_counts()
        words = {"completed": "completed", "stopped": "stopped early by ASHA",
                 "diverged": "diverged", "failed": "failed"}
        parts = [f"{per[s]} {w}" for s, w in words.items() if s in per]
        out.append(f"The sweep ran {int(per.sum())} trials: {', '.join(parts)}.")
    best = (summary or {}).get("best_trial")
    if best:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in (summary.get("best_scores") or {}).items()
                           if isinstance(v, (int, float)))
        params = _fmt_params(summary.get("best_params") or {})
        out.append(f"Best trial {best}: {scores} ({params}).".replace(":  (", ": ("))
        front = summary.get("pareto_front") or []
        if len(front) > 1:
            out.append(f"{len(front)} trials on the Pareto front: {', '.join(front)}.")
        from bench.search.confirm import confirm_sentence

        if confirm_sentence(summary.get("confirm") or {}):
            out.append(confirm_sentence(summary["confirm"]))
    elif study is not None:
        from bench.report.figures.sweep import objective_names

        names = objective_names(study, names)
        try:
            if len(study.directions) == 1:
                best = study.best_trial
                out.append(f"Best trial #{best.number}: {names[0]} {best.value:.3f} "
                           f"({_fmt_params(best.params)}).")
            else:
                out.append(f"{len(study.best_trials)} trials on the Pareto front of "
                           f"{' / '.join(names)}.")
        except ValueError:  # no completed trial
            out.append("No trial of the study completed.")
    if trials is not None and len(trials) and summary is not None and "best_trial" in summary:
        from bench.search.sensitivity import parameter_effects, sensitivity_sentence

        metric = next((m for m in ("val_war", "test_war") if m in set(trials["metric"])), None)
        noise = summary.get("noise_floor")
        if metric:
            if noise and noise.get("metric"):
                metric = noise["metric"]
            effects = parameter_effects(trials, metric, float((noise or {}).get("std") or "nan"))
            out.append(sensitivity_sentence(effects, noise, "searched"))
    return out


def clean_scores(data: RunData) -> pd.DataFrame | None:
    """model x metric on clean data: the robustness suite's clean rows, else the last test epoch."""
    if data.results is not None:
        clean = data.results[data.results["shift"] == "clean"]
        if len(clean):
            return clean.pivot_table(index="model", columns="metric", values="value",
                                     aggfunc="mean")
    if data.metrics is not None:
        return last_test_metrics(data.metrics)
    return None


def _roles(data: RunData) -> dict[str, str]:
    for df in (data.models.rename(columns={"name": "model"}) if data.models is not None else None,
               data.results, data.metrics):
        if df is not None and "role" in df.columns:
            return dict(zip(df["model"], df["role"]))
    return {}


def _groups(data: RunData) -> dict[str, str]:
    """model -> its group (the same model at other training seeds shares it)."""
    m = data.models
    if m is None:
        return {}
    out = {}
    for row in m.to_dict("records"):
        name, seed = str(row["name"]), row.get("seed")
        group = row.get("group")
        if not isinstance(group, str) or not group:
            suffix = f"-s{int(seed)}" if isinstance(seed, (int, float)) and seed == seed else None
            group = name[:-len(suffix)] if suffix and name.endswith(suffix) else name
        out[name] = group
    return out


def _pair(stats: pd.DataFrame, roles: dict[str, str]) -> tuple[str, str] | None:
    """(best HDF group, best baseline group) by mean clean score."""
    hdf = [g for g in stats.index if roles.get(g) == "hdf"]
    base = [g for g in stats.index if roles.get(g) != "hdf"]
    if not hdf or not base:
        return None
    return stats.loc[hdf, "mean"].idxmax(), stats.loc[base, "mean"].idxmax()


def _mean_text(stats: pd.DataFrame, g: str) -> str:
    r = stats.loc[g]
    if r["n"] < 2:
        return f"{r['mean']:.3f}"
    return f"{r['mean']:.3f} (mean of {int(r['n'])} seeds, std {r['std']:.3f})"


def _ci_text(r: Any) -> str:
    verdict = "excludes 0" if r.ci_low > 0 or r.ci_high < 0 else "includes 0"
    return f"95% CI [{r.ci_low * 100:.1f}, {r.ci_high * 100:.1f}], {verdict}"


def _ci(gain: pd.DataFrame | None, model: str, baseline: str, metric: str,
        scope: str = "clean") -> str:
    """The suite's paired gain for this pair, with its CI ("" when gain.csv has none)."""
    if gain is None:
        return ""
    g = gain[(gain["model"] == model) & (gain["baseline"] == baseline) & (gain["metric"] == metric)]
    if "condition" in g.columns:
        g = g[g["condition"] == scope]
    if g.empty:
        return ""
    if "training_seeds" in g.columns:  # the row over every seed, when there is one
        g = g.sort_values("training_seeds", ascending=False)
    r = next(g.itertuples())
    covers = f" over {r.covers}" if hasattr(r, "covers") else ""
    return f"; paired gain {_pts(r.estimate)}, {_ci_text(r)}{covers}"


def model_findings(data: RunData) -> list[str]:
    scores = clean_scores(data)
    if scores is None:
        return []
    roles = _roles(data)
    groups = _groups(data)
    group_roles = {groups.get(m, m): r for m, r in roles.items()}
    out = []
    for metric in ("war", "uar"):
        if metric not in scores.columns:
            continue
        col = scores[metric].dropna()
        stats = col.groupby(col.index.map(lambda m: groups.get(m, m))).agg(["mean", "std", "size"])
        stats = stats.rename(columns={"size": "n"})
        pair = _pair(stats, group_roles)
        if pair is None:
            continue
        a, b = pair
        va, vb = stats.at[a, "mean"], stats.at[b, "mean"]
        out.append(f"{a} reaches {metric.upper()} {_mean_text(stats, a)} vs {_mean_text(stats, b)} "
                   f"for {b}, the best baseline ({_pts(va - vb)}{_ci(data.gain, a, b, metric)}).")
    per_class = last_test_metrics(data.metrics) if data.metrics is not None else scores
    recall = [c for c in per_class.columns if c.startswith("recall_")]
    if recall:
        worst = per_class[recall].mean().idxmin()
        each = ", ".join(f"{m} {v:.2f}"
                         for m, v in per_class[worst].sort_values(ascending=False).items())
        out.append(f"Hardest class: {worst.removeprefix('recall_')} (recall {each}).")
    return out


def robustness_findings(data: RunData, metric: str = "war") -> list[str]:
    out = []
    roles = _roles(data)
    res = data.results
    if res is not None and (res["metric"] == metric).any():
        rows = res[res["metric"] == metric]
        clean = rows[rows["shift"] == "clean"].groupby("model")["value"].mean()
        shifted = rows[rows["shift"] != "clean"]
        if len(shifted):
            mean = shifted.groupby("model")["value"].mean()
            n_sh, n_sev = shifted["shift"].nunique(), shifted["severity"].nunique()
            parts = [f"{m} {v:.3f} ({_pts(v - clean.get(m, float('nan')))} from clean)"
                     for m, v in mean.sort_values(ascending=False).items()]
            out.append(f"Mean {metric.upper()} over {n_sh} shifts x {n_sev} severities: "
                       f"{'; '.join(parts)}.")
            hdf = [m for m in mean.index if roles.get(m) == "hdf"]
            if hdf:
                m = mean[hdf].idxmax()
                top = shifted[shifted["severity"] == shifted["severity"].max()]
                drop = (top[top["model"] == m].groupby("shift")["value"].mean() - clean.get(m))
                if len(drop):
                    out.append(f"{m} suffers most from {drop.idxmin()} (at the highest severity "
                               f"{_pts(drop.min())} from clean).")
    if data.gain is not None:
        g = data.gain if "condition" in data.gain.columns else data.gain.assign(condition="all")
        if "training_seeds" not in g.columns:
            g = g.assign(training_seeds=1)
        g = g[g["condition"].isin(["clean", "corrupted", "all"])]
        if (g["training_seeds"] > 1).any():  # the per-seed rows are in gain.csv and the figure
            g = g[g["training_seeds"] > 1]
        keys = ["training_seeds", "model", "baseline", "metric"]
        for (n, model, base, metric), rows in g.sort_values("training_seeds", ascending=False,
                                                            kind="stable").groupby(keys, sort=False):
            over = f"over {n} training seeds x test clips" if n > 1 else \
                "one training seed, over test clips only"
            parts = "; ".join(f"{r.condition} {_pts(r.estimate)} ({_ci_text(r)})"
                              for r in rows.itertuples())
            out.append(f"Gain of {model} over {base} in {metric.upper()} ({over}): {parts}.")
    imb = data.imbalance
    if imb is not None and (imb["group"] == "few").any():
        few = imb[imb["group"] == "few"]
        top = few[few["ratio"] == few["ratio"].max()].groupby("model")["value"].mean()
        parts = ", ".join(f"{m} {v:.3f}" for m, v in top.sort_values(ascending=False).items())
        out.append(f"At imbalance ratio {few['ratio'].max():g}, few-shot UAR: {parts}.")
    src = data.sources
    if src is not None and (src["metric"] == metric).any():
        w = src[src["metric"] == metric].pivot_table(index="model", columns="split", values="value",
                                                      aggfunc="mean")
        if {"seen", "unseen"} <= set(w.columns):
            drop = (w["unseen"] - w["seen"]).sort_values(ascending=False)
            parts = ", ".join(f"{m} {_pts(v)}" for m, v in drop.items())
            out.append(f"Unseen vs seen sources ({metric.upper()}): {parts}.")
    return out


def findings(data: RunData) -> list[str]:
    from bench.report.figures import _names

    return (sweep_findings(data.trials, data.study, _names(data), data.summary)
            + model_findings(data)
            + robustness_findings(data))
