"""HDF's parts as factors: the full factorial of cells, and effects with intervals (pure).

    factors (dam, dsm, sam) -> 2^k cells, each the x3d_ce preset with the "on"
        factors' config sections taken from hdf (model, loss, optim):
        none == x3d_ce, dam == x3d_dam, sam == x3d_sam, dsm == x3d_dsm, all == hdf
    predictions of every cell x training seed on the same test clips
        -> per clip, a contrast over cells (Yates: mean where the effect's sign is +,
           minus mean where it is -) -> (S seeds, N clips)
        -> main effects and two-way interactions on clean WAR, clean UAR and
           corrupted WAR, each with the interval over training seeds x clips
           (robustness.replication), none with one seed
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bench.config import METHODS_DIR, list_methods, read_yaml
from bench.errors import ConfigError, UnknownNameError
from robustness.replication import metric_weights, seed_clip_interval

__all__ = ["FACTORS", "factor_list", "Cell", "cells", "cell_overrides", "effects",
           "cell_correctness", "EFFECT_COLUMNS", "INTERVAL_NOTE"]

# factor -> the config section it switches, taken from the hdf preset when on, from
# x3d_ce when off
FACTORS: dict[str, str] = {"dam": "model", "dsm": "loss", "sam": "optim"}
BASE_METHOD, FULL_METHOD = "x3d_ce", "hdf"
EFFECT_COLUMNS = ["effect", "kind", "metric", "estimate", "ci_low", "ci_high", "training_seeds",
                  "clips", "note"]
INTERVAL_NOTE = "intervals need >= 2 training seeds"
assert BASE_METHOD in list_methods() and FULL_METHOD in list_methods()


def factor_list(value: Any, where: str = "--factors") -> list[str]:
    """Known, distinct factor names from a list or comma text."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where} must name factors, e.g. dam,dsm,sam")
    out: list[str] = []
    for f in value:
        if f not in FACTORS:
            import difflib

            close = difflib.get_close_matches(str(f), list(FACTORS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UnknownNameError(f"{where}: unknown factor '{f}'.{hint} "
                                   f"Known: {', '.join(FACTORS)}")
        if f in out:
            raise ConfigError(f"{where}: factor '{f}' is listed twice")
        out.append(str(f))
    return out


@dataclass(frozen=True)
class Cell:
    on: frozenset[str]

    @property
    def name(self) -> str:
        return "+".join(f for f in FACTORS if f in self.on) or "none"


def cells(factors: Sequence[str]) -> list[Cell]:
    """Every on/off combination of `factors`, from none to all."""
    return [Cell(frozenset(c)) for k in range(len(factors) + 1)
            for c in itertools.combinations(factors, k)]


def _flat(d: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if k == "options" and isinstance(v, Mapping):
            out.update(_flat(v, prefix))
        else:
            out[f"{prefix}.{k}"] = v
    return out


def cell_overrides(cell: Cell, factor_sets: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> dict[str, Any]:
    """Dotted overrides that turn the x3d_ce preset into `cell` (plus each on factor's extras).

    Only the keys the hdf preset file sets: a study's base settings (lr, size...) stay.
    """
    full = read_yaml(METHODS_DIR / f"{FULL_METHOD}.yaml")
    over: dict[str, Any] = {}
    for f in sorted(cell.on):
        section = FACTORS[f]
        over.update(_flat(full[section], section))
        over.update((factor_sets or {}).get(f, {}))
    return over


def _contrast(cell_names: list[str], on: Mapping[str, frozenset[str]], effect: tuple[str, ...]
              ) -> np.ndarray:
    """Yates weights over cells: +2/2^k where the product of the effect's signs is +, else -."""
    signs = np.array([np.prod([1 if f in on[c] else -1 for f in effect]) for c in cell_names])
    return signs * 2.0 / len(cell_names)


def effects(ok: Mapping[str, Mapping[str, np.ndarray]], on: Mapping[str, frozenset[str]],
            factors: Sequence[str], y_true: np.ndarray, *, level: float = 0.95) -> pd.DataFrame:
    """Main effects and two-way interactions with intervals over training seeds x clips.

    ok[metric_key][cell]: (S, N) correctness per training seed and clip (a mean over
    corruption conditions for "corrupted"), the same seeds and clips in every cell.
    metric_key is "clean" or "corrupted"; clean gives WAR and UAR, corrupted WAR.
    """
    names = sorted(on, key=lambda c: (len(on[c]), c))
    rows = []
    targets = [("clean", "war"), ("clean", "uar"), ("corrupted", "war")]
    terms = [(f,) for f in factors] + list(itertools.combinations(factors, 2))
    for key, metric in targets:
        if key not in ok:
            continue
        stack = np.stack([np.asarray(ok[key][c], dtype=np.float64) for c in names])  # (C, S, N)
        w = metric_weights(y_true, metric)
        for term in terms:
            d = np.tensordot(_contrast(names, on, term), stack, axes=1)  # (S, N)
            s = d.shape[0]
            row = {"effect": ":".join(term), "kind": "main" if len(term) == 1 else "interaction",
                   "metric": f"{key}_{metric}", "training_seeds": s, "clips": d.shape[1]}
            if s >= 2:
                r = seed_clip_interval(d, w, level=level)
                row.update(estimate=r["estimate"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                           note="")
            else:
                row.update(estimate=float((d @ w).mean()), ci_low=float("nan"),
                           ci_high=float("nan"), note=INTERVAL_NOTE)
            rows.append(row)
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def cell_correctness(predictions: pd.DataFrame, groups: Mapping[str, tuple[str, int]],
                     cell_names: Sequence[str]) -> tuple[dict[str, dict[str, np.ndarray]],
                                                         np.ndarray, list[int]]:
    """From the suite's predictions: ok["clean" | "corrupted"][cell] (S, N), labels, seeds.

    Only training seeds every cell has count; "corrupted" is the mean over every
    shift, severity and corruption seed of the suite.
    """
    pred = predictions.assign(ok=(predictions.y_true == predictions.y_pred).astype(float))
    pred = pred.assign(cell=pred.model.map(lambda m: groups[m][0]),
                       tseed=pred.model.map(lambda m: groups[m][1]))
    pred = pred[pred.cell.isin(cell_names)]
    per_cell = pred.groupby("cell").tseed.apply(set)
    seeds = sorted(set.intersection(*[per_cell.get(c, set()) for c in cell_names]))
    clean = pred[pred["shift"] == "clean"]
    clips = list(dict.fromkeys(clean["clip"]))
    y = clean.drop_duplicates("clip").set_index("clip").loc[clips, "y_true"].to_numpy()
    out: dict[str, dict[str, np.ndarray]] = {"clean": {}, "corrupted": {}}
    for key, part in (("clean", clean), ("corrupted", pred[pred["shift"] != "clean"])):
        if part.empty:
            out.pop(key)
            continue
        mean = part.groupby(["cell", "tseed", "clip"]).ok.mean()
        for c in cell_names:
            out[key][c] = np.stack([mean.loc[(c, s)].reindex(clips).to_numpy() for s in seeds])
    return out, y, seeds
