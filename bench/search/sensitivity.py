"""Did a tuned parameter move the score by more than seed noise? (pure functions)

    trials table (completed trials' final objective, param.* columns)
        -> per parameter: split the trials in two (numeric: at the median; categorical:
           the two values with the highest and lowest mean) -> effect = |mean_a - mean_b|
        -> threshold = 2 * seed_std * sqrt(1/n_a + 1/n_b): the difference two groups of
           runs of one configuration would show about 1 time in 20 from training noise
        -> exceeds = effect > threshold (unknown without a noise floor)

The noise floor (seed_std) is measured in the same run: the spread of one
configuration over fresh training seeds (`--confirm`) or over the study's seeds.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.search.results import final_scores

__all__ = ["parameter_effects", "sensitivity_sentence", "EFFECT_COLUMNS"]

EFFECT_COLUMNS = ["param", "effect", "low_group", "high_group", "n_low", "n_high", "threshold",
                  "exceeds"]


def _numeric(values: pd.Series) -> bool:
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
               for v in values)


def parameter_effects(table: pd.DataFrame, metric: str, seed_std: float) -> pd.DataFrame:
    """EFFECT_COLUMNS per searched parameter, over the trials that ran every epoch."""
    scores = final_scores(table, [metric])
    if metric not in scores:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    scores = scores[(scores.status == "completed") & scores[metric].notna()]
    params = table.drop_duplicates("trial").set_index("trial")
    rows = []
    for col in [c for c in table.columns if c.startswith("param.")]:
        vals = params.loc[scores.index, col].dropna()
        y = scores.loc[vals.index, metric]
        if vals.nunique() < 2:
            continue
        if _numeric(vals) and vals.nunique() > 2:
            med = float(np.median(vals.astype(float)))
            low = vals.astype(float) <= med
            if low.all():  # ties at the median: put them on the high side
                low = vals.astype(float) < med
            a, b = y[low], y[~low]
            la, lb = f"<= {med:.3g}", f"> {med:.3g}"
        else:
            means = y.groupby(vals.astype(str)).mean().sort_values()
            la, lb = means.index[0], means.index[-1]
            a, b = y[vals.astype(str) == la], y[vals.astype(str) == lb]
        effect = abs(float(b.mean()) - float(a.mean()))
        thr = 2 * seed_std * math.sqrt(1 / len(a) + 1 / len(b)) if math.isfinite(seed_std) \
            else float("nan")
        rows.append({"param": col[6:], "effect": effect, "low_group": str(la),
                     "high_group": str(lb), "n_low": len(a), "n_high": len(b),
                     "threshold": thr, "exceeds": bool(effect > thr) if math.isfinite(thr)
                     else None})
    out = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    return out.sort_values("effect", ascending=False, ignore_index=True)


def sensitivity_sentence(effects: pd.DataFrame, noise: dict[str, Any] | None, label: str) -> str:
    """One plain sentence: which parameters moved the objective beyond seed noise, if any."""
    if effects.empty:
        return "No parameter effect can be measured: fewer than two completed trials differ."
    top = effects.iloc[0]
    biggest = f"largest: {top.param} {top.effect * 100:.1f} points"
    if not noise or not math.isfinite(float(noise.get("std", float("nan")))):
        return (f"No seed-noise floor was measured in this run (one seed, no --confirm), so the "
                f"parameter effects ({biggest}) cannot be told from training noise.")
    floor = (f"seed noise {float(noise['std']) * 100:.1f} points std, from "
             f"{noise.get('source', 'this run')}")
    over = effects[effects.exceeds == True]  # noqa: E712 (None means unknown)
    if over.empty:
        return (f"The {label} parameters did not change {noise.get('metric', 'the objective')} "
                f"by more than seed noise in this sweep ({biggest}; {floor}).")
    names = ", ".join(f"{r.param} ({r.effect * 100:.1f} points)" for r in over.itertuples())
    return f"Beyond seed noise ({floor}): {names}."
