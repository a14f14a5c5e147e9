"""Base optimizers by name, `build_optimizer` (optionally SAM/ASAM-wrapped), LR schedule.

A registered optimizer builder returns `(optimizer class, keyword arguments)`
rather than an instance, so SAM can construct the base around its own
`param_groups`.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Iterable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from bench.errors import ConfigError
from bench.optim import OPTIMIZERS
from bench.optim.sam import SAM

__all__ = ["build_optimizer", "build_scheduler", "decay_groups"]

OptimSpec = tuple[type[Optimizer], dict[str, Any]]


@OPTIMIZERS.register("adamw")
def adamw(*, lr: float, weight_decay: float) -> OptimSpec:
    return torch.optim.AdamW, dict(lr=lr, weight_decay=weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(*, lr: float, weight_decay: float, momentum: float = 0.9,
        nesterov: bool = False) -> OptimSpec:
    if nesterov and momentum <= 0:
        raise ConfigError("optimizer option 'nesterov' = true needs 'momentum' > 0")
    return torch.optim.SGD, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                 nesterov=nesterov)


def _check(what: str, value: float, ok: bool, allowed: str) -> None:
    if not ok or not math.isfinite(value):
        raise ConfigError(f"optimizer option '{what}' = {value!r} is out of range; allowed {allowed}")


def decay_groups(params: Iterable[Any], weight_decay: float, *,
                 decay_all: bool = False) -> list[dict[str, Any]]:
    """Exempt norm scales, biases and scalars (ndim < 2) from weight decay.

    Decaying a BatchNorm scale or a DAM gate scalar toward 0 shrinks what the
    layer can express without regularising anything; given groups pass through.
    `decay_all` decays every parameter alike (what the released HDF code does).
    """
    items = list(params)
    if not items or isinstance(items[0], dict):
        return items
    if decay_all:
        kept = [p for p in items if p.requires_grad]
        return [dict(params=kept, weight_decay=weight_decay)] if kept else []
    decay = [p for p in items if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in items if p.requires_grad and p.ndim < 2]
    groups = [dict(params=decay, weight_decay=weight_decay),
              dict(params=no_decay, weight_decay=0.0)]
    return [g for g in groups if g["params"]]


def build_optimizer(
    params: Iterable[Any],
    *,
    # base optimizer
    name: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    decay_all: bool = False,
    momentum: float = 0.9,
    nesterov: bool = False,
    # sharpness-aware wrapper
    sam: bool = False,
    rho: float = 0.05,
    asam: bool = False,
) -> Optimizer:
    """The base optimizer, wrapped in SAM (ASAM when `asam`) when `sam` is set.

    Norm scales, biases and scalars get no weight decay unless `decay_all`.
    """
    builder = OPTIMIZERS.get(name)
    _check("lr", lr, lr > 0, "(0, inf)")
    _check("weight_decay", weight_decay, weight_decay >= 0, "[0, inf)")
    _check("momentum", momentum, 0 <= momentum < 1, "[0, 1)")
    if asam and not sam:
        raise ConfigError("optimizer option 'asam' = true needs 'sam' = true")
    options = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)
    accepted = inspect.signature(builder).parameters
    cls, kwargs = builder(**{k: v for k, v in options.items() if k in accepted})
    groups = decay_groups(params, weight_decay, decay_all=decay_all)
    if not groups:
        raise ConfigError("build_optimizer got no trainable parameters")
    if sam:
        return SAM(groups, cls, rho=rho, adaptive=asam, **kwargs)
    return cls(groups, **kwargs)


def build_scheduler(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 1.0,
) -> LRScheduler:
    """Linear warm-up to the base LR, then cosine to 0; call `.step()` once per step.

    A warm-up longer than the run is cut to the run (tiny smoke configs).
    """
    if epochs < 1 or steps_per_epoch < 1:
        raise ConfigError(f"scheduler needs epochs >= 1 and steps_per_epoch >= 1, "
                          f"got {epochs} and {steps_per_epoch}")
    if not (warmup_epochs >= 0 and math.isfinite(warmup_epochs)):
        raise ConfigError(f"scheduler option 'warmup_epochs' = {warmup_epochs!r}; allowed [0, inf)")
    total = epochs * steps_per_epoch
    warmup = min(total, round(warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
