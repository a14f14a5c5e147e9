"""Leave-sources-out: train without some synthetic camera sources, test on seen vs held-out ones.

    tidy = leave_sources_out(cfg, held_out=[3])     # train on sources != 3
    tidy = leave_one_source_out(cfg)                 # every source in turn

Rows: method, held_out ("3" or "1+4"), subset ("seen" = test clips from training
sources, "held_out" = from the held-out ones), metric (war, uar, recall_<class>),
value, n_clips. The gap seen - held_out is the unseen-camera penalty. Needs data
with a `source` column in its metadata (the synthetic generator's metadata.csv).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from bench.config import Config
from bench.data.clips import ClipDataset
from bench.engine import build_split
from bench.errors import ConfigError
from robustness.imbalance import long_tail_subset
from robustness.training import train_and_score

__all__ = ["clip_sources", "leave_sources_out", "leave_one_source_out", "train_imbalanced"]

COLUMNS = ["method", "held_out", "subset", "metric", "value", "n_clips"]


def clip_sources(dataset: ClipDataset) -> np.ndarray:
    """Source id of every clip, in dataset order."""
    meta = dataset.meta
    if "source" not in meta.columns:
        raise ConfigError("leave-sources-out needs clip metadata with a 'source' column "
                          "(the synthetic data set has one)")
    return meta["source"].to_numpy().astype(int)


def leave_sources_out(cfg: Config, held_out: Sequence[int]) -> pd.DataFrame:
    held = sorted({int(s) for s in held_out})
    if not held:
        raise ConfigError("hold out at least one source")

    def select(train: ClipDataset) -> np.ndarray:
        src = clip_sources(train)
        unknown = set(held) - set(src.tolist())
        if unknown:
            raise ConfigError(f"source(s) {sorted(unknown)} not in the training split; "
                              f"known: {sorted(set(src.tolist()))}")
        return np.flatnonzero(~np.isin(src, held))

    def groups(test: ClipDataset) -> dict[str, np.ndarray]:
        out = np.isin(clip_sources(test), held)
        return {"seen": ~out, "held_out": out}

    _, scores = train_and_score(cfg, select, groups)
    tag = "+".join(map(str, held))
    n = {k: int(v.sum()) for k, v in groups(build_split(cfg, "test")).items()}
    rows = [{"method": cfg.method or "", "held_out": tag, "subset": subset, "metric": m,
             "value": v, "n_clips": n[subset]}
            for subset, metrics in scores.items() for m, v in metrics.items()]
    return pd.DataFrame(rows, columns=COLUMNS)


def leave_one_source_out(cfg: Config, sources: Sequence[int] | None = None) -> pd.DataFrame:
    """One training per source (all of the test split's sources unless given)."""
    if sources is None:
        sources = sorted(set(clip_sources(build_split(cfg, "test")).tolist()))
    return pd.concat([leave_sources_out(cfg, [s]) for s in sources], ignore_index=True)


def train_imbalanced(cfg: Config, profile: str, ratio: int, *, seed: int = 0) -> pd.DataFrame:
    """Train on a long-tailed subset of the training split; clean test metrics.

    Rows: method, profile, ratio, metric, value (war, uar, recall_<class>).
    """
    rng = np.random.default_rng([seed, int(ratio)])

    def select(train: ClipDataset) -> np.ndarray:
        return long_tail_subset(train.labels, profile, ratio, rng)

    _, scores = train_and_score(cfg, select, lambda test: {"all": np.ones(len(test), bool)})
    return pd.DataFrame([{"method": cfg.method or "", "profile": profile, "ratio": int(ratio),
                          "metric": m, "value": v} for m, v in scores["all"].items()])
