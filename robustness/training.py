"""Training on a subset of the training split (held-out sources, long-tailed priors).

`subset_trainer(cfg, select)` builds a bench `Trainer` that keeps only the
training clips `select(train_set)` picks (the engine's `select` hook), so the
class counts, the loss, the loader and the LR schedule all see the subset.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from bench.config import Config
from bench.data.clips import ClipDataset
from bench.data.labels import EMOTIONS
from bench.engine import Trainer
from bench.errors import ConfigError

__all__ = ["subset_trainer", "train_and_score"]

Select = Callable[[ClipDataset], np.ndarray]  # train set -> indices to keep


def subset_trainer(cfg: Config, select: Select) -> Trainer:
    trainer = Trainer(cfg, select=select)
    if len(trainer.train_set) < 2:
        raise ConfigError(f"the training subset has {len(trainer.train_set)} clips; need at least 2")
    return trainer


def train_and_score(cfg: Config, select: Select, groups: Callable[[ClipDataset], dict[str, np.ndarray]]
                    ) -> tuple[Trainer, dict[str, dict[str, float]]]:
    """Train on the subset for cfg.train.epochs; metrics of each named group of test clips."""
    from bench.metrics import score

    trainer = subset_trainer(cfg, select)
    for _ in range(cfg.train.epochs):
        trainer.train_epoch()
    ev = trainer.evaluate()  # test split, in dataset order
    out = {}
    for name, mask in groups(trainer.test_set).items():
        if np.any(mask):
            out[name] = score(ev.y_true[mask], ev.y_pred[mask], EMOTIONS)
    return trainer, out
