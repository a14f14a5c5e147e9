"""Unseen-source evaluation: leave camera sources out of training, score test clips by source.

The synthetic data records each clip's camera `source`, so "does the model
cope with a camera it never saw?" is measured on the same test subjects:

    train split without sources S  ->  test split, clips grouped by source
    seen = sources not in S, unseen = sources in S

`holdout_sources` (an option of the "synthetic" data set) applies
`drop_sources` to the train split; `accuracy_by_source` then turns the test
predictions into a tidy table. Both are pure.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from bench.errors import ConfigError

__all__ = ["drop_sources", "accuracy_by_source", "seen_unseen"]


def drop_sources(records: list[Any], sources: Iterable[int], *, num_sources: int) -> list[Any]:
    """Records whose `meta["source"]` is not in `sources` (ConfigError on an unknown source)."""
    held = {int(s) for s in sources}
    bad = sorted(s for s in held if not 0 <= s < num_sources)
    if bad:
        raise ConfigError(f"holdout_sources {bad} out of range: this data set has sources "
                          f"0..{num_sources - 1}")
    if len(held) >= num_sources:
        raise ConfigError(f"holdout_sources would leave out all {num_sources} sources")
    return [r for r in records if int(r.meta["source"]) not in held]


def accuracy_by_source(meta: pd.DataFrame, y_true: Sequence[int], y_pred: Sequence[int],
                       held_out: Iterable[int] = ()) -> pd.DataFrame:
    """Tidy accuracy per source: columns source, source_name, seen, clips, war.

    `meta` is the test split's metadata (ClipDataset.meta), in prediction order.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(meta) != len(y_true) or len(y_true) != len(y_pred):
        raise ValueError(f"meta ({len(meta)}), y_true ({len(y_true)}) and y_pred "
                         f"({len(y_pred)}) must have the same length")
    held = {int(s) for s in held_out}
    src = meta["source"].to_numpy().astype(int)
    names = meta["source_name"].to_numpy() if "source_name" in meta else src.astype(str)
    rows = []
    for s in np.unique(src):
        m = src == s
        rows.append({"source": int(s), "source_name": str(names[m][0]), "seen": int(s) not in held,
                     "clips": int(m.sum()), "war": float(np.mean(y_true[m] == y_pred[m]))})
    return pd.DataFrame(rows, columns=["source", "source_name", "seen", "clips", "war"])


def seen_unseen(meta: pd.DataFrame, y_true: Sequence[int], y_pred: Sequence[int],
                held_out: Iterable[int]) -> dict[str, float]:
    """Clip-weighted accuracy on seen and on unseen sources, and the drop (seen - unseen)."""
    held = {int(s) for s in held_out}
    src = meta["source"].to_numpy().astype(int)
    hit = np.asarray(y_true) == np.asarray(y_pred)
    unseen = np.isin(src, list(held))
    seen_acc = float(hit[~unseen].mean()) if (~unseen).any() else float("nan")
    unseen_acc = float(hit[unseen].mean()) if unseen.any() else float("nan")
    return {"seen_war": seen_acc, "unseen_war": unseen_acc, "drop": seen_acc - unseen_acc}
