"""The short plain-text summary the CLI prints (pure: tables in, text out)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from robustness.scores import per_shift

__all__ = ["summary_text", "verdict_text"]


def _fmt(df: pd.DataFrame) -> str:
    return df.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")


def verdict_text(verdicts) -> str:
    """The verdict sentences, one per candidate and baseline (what the CLIs print first)."""
    if not verdicts:
        return "Verdict: none (the run folder has no candidate-baseline pair)."
    return "Verdict\n" + "\n".join(f"  {v.sentence}" for v in verdicts)


def summary_text(results: pd.DataFrame, scores: pd.DataFrame, gain: pd.DataFrame,
                 shifts: Sequence[str], baseline: str | None) -> str:
    """Scores per model (WAR), WAR per shift, long-tail UAR and the HDF gains."""
    parts = []
    s = scores[scores.metric == "war"].pivot(index="model", columns="score", values="value")
    cols = [c for c in ("clean", "mPC", "rPC", "mCE", "rmCE") if c in s.columns]
    title = f"WAR scores (mCE/rmCE vs {baseline}, lower is better)" if baseline else "WAR scores"
    parts.append(f"{title}\n{_fmt(s[cols])}")
    ps = per_shift(results, shifts)
    ps = ps[ps.metric == "war"].pivot(index="model", columns="shift", values="value")
    parts.append("WAR per shift (mean over severities and seeds)\n"
                 + _fmt(ps[[c for c in ["clean", *shifts] if c in ps.columns]]))
    lt = results[results["shift"].str.startswith("longtail_") & (results.metric == "uar")]
    if len(lt):
        t = lt.groupby(["model", "shift", "severity"])["value"].mean().unstack(["shift", "severity"])
        parts.append(f"UAR on long-tailed test resamples (profile, ratio)\n{_fmt(t)}")
    g = gain[(gain.metric == "war") & gain.condition.isin(["clean", "corrupted"])]
    if len(g):
        lines = [f"  {r.model} - {r.baseline} [{r.condition}]: {r.estimate:+.3f} "
                 f"({100 * r.level:.0f}% CI {r.ci_low:+.3f} .. {r.ci_high:+.3f}, over {r.covers})"
                 for r in g.itertuples()]
        parts.append("Heterogeneity gain in WAR (paired; per training seed over clips, and over "
                     "training seeds x clips where there are several)\n" + "\n".join(lines))
    return "\n\n".join(parts)
