"""The verdict: one sentence per candidate and baseline, from the gain table (pure).

    gain rows (clean, WAR and UAR) of a candidate group vs a baseline group
    + each group's clean test WAR per training seed
        -> seed spread (std of WAR over training seeds)
        -> word: "HDF better" / "baseline better" when the WAR interval over
           training seeds x test clips excludes 0, else "inconclusive"
        -> sentence: word, gains with intervals, what the intervals cover, spreads

With one training seed the word is always "inconclusive": that interval covers
test-clip sampling only, while a run's score moves with its seed by more than
the clip noise (the sentence quotes the seed spread of an earlier run of the
same study when there is one).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from robustness.scores import COVERS_SEEDS

__all__ = ["Verdict", "verdicts", "seed_spreads", "WORDS"]

WORDS = ("HDF better", "baseline better", "inconclusive")


@dataclass(frozen=True)
class Verdict:
    candidate: str
    baseline: str
    word: str
    sentence: str
    war: float
    war_low: float
    war_high: float
    uar: float
    uar_low: float
    uar_high: float
    training_seeds: int
    clips: int
    covers: str
    spread: dict[str, float]  # group -> std of clean test WAR over training seeds (nan: 1 seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: an unmeasured spread (one seed) is null."""
        d = asdict(self)
        d["spread"] = {k: (None if v != v else v) for k, v in self.spread.items()}
        return d


def seed_spreads(clean_war: Mapping[str, float], groups: Mapping[str, tuple[str, int]]
                 ) -> dict[str, float]:
    """group -> std (ddof 1) of clean test WAR over its training seeds; nan with one seed."""
    by: dict[str, list[float]] = {}
    for name, value in clean_war.items():
        by.setdefault(groups.get(name, (name, 0))[0], []).append(float(value))
    return {g: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for g, v in by.items()}


def _pts(x: float) -> str:
    return f"{x * 100:+.1f}"


def _spread_text(spread: Mapping[str, float], names: list[str]) -> str:
    return ", ".join(f"{n} {spread[n]:.3f}" for n in names if n in spread)


def _word(row: Any, seeds: int) -> str:
    if seeds < 2:
        return "inconclusive"
    if row.ci_low > 0:
        return "HDF better"
    if row.ci_high < 0:
        return "baseline better"
    return "inconclusive"


def verdicts(gain: pd.DataFrame, clean_war: Mapping[str, float],
             groups: Mapping[str, tuple[str, int]], *, clips: int,
             prior: Mapping[str, Any] | None = None) -> list[Verdict]:
    """One Verdict per (candidate group, baseline group) of the clean gain rows.

    `prior`: {"run": name, "seeds": n, "spread": {group: std}} from an earlier run of the
    same study with several seeds, quoted when this run has one seed.
    """
    clean = gain[gain["condition"] == "clean"]
    spread = seed_spreads(clean_war, groups)
    group_of = {n: groups.get(n, (n, 0))[0] for n in clean_war}
    out = []
    pairs = clean[["model", "baseline"]].drop_duplicates().itertuples(index=False)
    done: set[tuple[str, str]] = set()
    for model, base in pairs:
        h, b = group_of.get(model, model), group_of.get(base, base)
        if (h, b) in done:
            continue
        rows = clean[(clean["model"] == h) & (clean["baseline"] == b)
                     & (clean["covers"] == COVERS_SEEDS)]
        if rows.empty:  # one shared seed: its own per-seed rows
            rows = clean[(clean["model"] == model) & (clean["baseline"] == base)]
        done.add((h, b))
        war = rows[rows["metric"] == "war"].iloc[0]
        uar = rows[rows["metric"] == "uar"].iloc[0]
        seeds = int(war.training_seeds)
        word = _word(war, seeds)
        level = f"{100 * float(war.level):.0f} %"
        gains = (f"clean test WAR {_pts(war.estimate)} points [{_pts(war.ci_low)}, "
                 f"{_pts(war.ci_high)}] and UAR {_pts(uar.estimate)} [{_pts(uar.ci_low)}, "
                 f"{_pts(uar.ci_high)}]")
        if seeds > 1:
            cover = (f"{level} intervals over {seeds} training seeds x {clips} test clips; "
                     f"seed spread (std of WAR) {_spread_text(spread, [h, b])}")
        else:
            cover = f"{level} intervals over {clips} test clips only: one training seed"
            if prior and prior.get("spread"):
                cover += (f"; seed spread (std of WAR) in {prior['run']} ({prior['seeds']} seeds): "
                          f"{_spread_text(prior['spread'], [h, b])}")
            else:
                cover += ", its seed-to-seed spread unmeasured"
        sentence = f"{h} vs {b}: {word}. {gains[0].upper()}{gains[1:]} ({cover})."
        out.append(Verdict(h, b, word, sentence, float(war.estimate), float(war.ci_low),
                           float(war.ci_high), float(uar.estimate), float(uar.ci_low),
                           float(uar.ci_high), seeds, int(clips), str(war.covers),
                           {k: spread[k] for k in (h, b) if k in spread}))
    return out
