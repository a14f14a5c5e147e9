"""Training on a subset of the training split (held-out sources, long-tailed priors).

`subset_trainer(cfg, select)` builds a bench `Trainer`, then keeps only the
training clips `select(train_set)` picks, before the first step. The class
counts, the loss (class-balanced losses read them), the loader and the LR
schedule (steps per epoch) are rebuilt for the subset, mirroring
`Trainer.__init__`; replace this with a dataset hook if the engine grows one.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from torch.utils.data import DataLoader

from bench.config import Config
from bench.data.clips import ClipDataset
from bench.data.labels import EMOTIONS
from bench.engine import Trainer
from bench.errors import ConfigError
from bench.losses import build_loss
from bench.optim import build_scheduler

__all__ = ["subset_trainer", "train_and_score"]

Select = Callable[[ClipDataset], np.ndarray]  # train set -> indices to keep


def subset_trainer(cfg: Config, select: Select) -> Trainer:
    trainer = Trainer(cfg)
    old = trainer.train_set
    idx = np.asarray(select(old), dtype=np.int64)
    if len(idx) < 2:
        raise ConfigError(f"the training subset has {len(idx)} clips; need at least 2")
    subset = ClipDataset([old.records[i] for i in idx], num_frames=old.num_frames, size=old.size,
                         transform=old.transform, train=True, seed=old.seed, cache=old.cache,
                         on_error=old.on_error)
    loader = trainer.train_loader
    trainer.train_set = subset
    trainer.class_counts = list(subset.class_counts(len(EMOTIONS)))
    trainer.train_loader = DataLoader(subset, batch_size=loader.batch_size, shuffle=True,
                                      drop_last=len(subset) > loader.batch_size,
                                      num_workers=loader.num_workers, generator=loader.generator,
                                      pin_memory=loader.pin_memory,
                                      persistent_workers=loader.num_workers > 0)
    trainer.loss_fn = build_loss(cfg.loss.name, class_counts=trainer.class_counts,
                                 **cfg.loss.options).to(trainer.device)
    trainer.scheduler = build_scheduler(trainer.optimizer, epochs=cfg.train.epochs,
                                        steps_per_epoch=max(1, len(trainer.train_loader)),
                                        warmup_epochs=cfg.optim.warmup_epochs)
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
