"""Classification baselines DSM is compared against on imbalanced DFER data.

- `ce`: cross-entropy with label smoothing (the HDF reference's CE term).
- `focal`: Lin et al. 2017, down-weights easy samples by (1 - p_t)^gamma.
- `logit_adjust`: Menon et al. 2021, trains on logits + tau * log(prior).
- `class_balanced`: Cui et al. 2019, weights CE by the inverse effective
  number of samples (1 - beta^n) / (1 - beta), normalised to sum K.

A class with zero training samples is treated as having one, so every weight
and prior stays finite.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.losses import LOSSES
from bench.losses.base import Loss, LossOutput, as_counts, check_num_classes, check_range

__all__ = ["CrossEntropy", "FocalLoss", "LogitAdjustedLoss", "ClassBalancedLoss"]


class CrossEntropy(Loss):
    def __init__(self, *, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, z: Tensor, y: Tensor, *,
                grad_norm: float | None = None) -> LossOutput:
        ce = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        return LossOutput(ce, {"ce": ce.detach()})


class FocalLoss(Loss):
    def __init__(self, *, gamma: float = 2.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, z: Tensor, y: Tensor, *,
                grad_norm: float | None = None) -> LossOutput:
        logits = logits.float()  # (B, K)
        ce = F.cross_entropy(logits, y, reduction="none", label_smoothing=self.label_smoothing)
        log_pt = torch.log_softmax(logits, dim=-1).gather(1, y[:, None]).squeeze(1)  # (B,)
        # 1 - p_t via expm1 for precision; the floor keeps d/dp (1-p)^gamma finite
        # for gamma < 1 when a sample is classified with p_t == 1.
        one_minus_pt = (-torch.expm1(log_pt)).clamp_min(1e-12)
        focal = (one_minus_pt.pow(self.gamma) * ce).mean()
        return LossOutput(focal, {"focal": focal.detach()})


class LogitAdjustedLoss(Loss):
    def __init__(self, *, class_counts: Sequence[int], tau: float = 1.0,
                 label_smoothing: float = 0.1) -> None:
        super().__init__()
        counts = as_counts(class_counts).clamp_min(1.0)
        self.register_buffer("log_prior", (counts / counts.sum()).log().float())  # (K,)
        self.tau = tau
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, z: Tensor, y: Tensor, *,
                grad_norm: float | None = None) -> LossOutput:
        check_num_classes(logits, self.log_prior.numel())
        adjusted = logits.float() + self.tau * self.log_prior  # (B, K)
        ce = F.cross_entropy(adjusted, y, label_smoothing=self.label_smoothing)
        return LossOutput(ce, {"ce": ce.detach()})


class ClassBalancedLoss(Loss):
    def __init__(self, *, class_counts: Sequence[int], beta: float = 0.999,
                 label_smoothing: float = 0.1) -> None:
        super().__init__()
        counts = as_counts(class_counts).clamp_min(1.0)
        effective = (1.0 - beta ** counts) / (1.0 - beta)  # (K,) effective numbers
        weights = 1.0 / effective
        weights = weights / weights.sum() * counts.numel()  # sum K: same scale as CE
        self.register_buffer("weights", weights.float())
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, z: Tensor, y: Tensor, *,
                grad_norm: float | None = None) -> LossOutput:
        check_num_classes(logits, self.weights.numel())
        ce = F.cross_entropy(logits.float(), y, reduction="none",
                             label_smoothing=self.label_smoothing)  # (B,)
        loss = (self.weights[y] * ce).mean()
        return LossOutput(loss, {"ce": ce.mean().detach(), "cb": loss.detach()})


def _smoothing(value: float) -> float:
    return check_range("label_smoothing", value, low=0.0, high=1.0, high_open=True)


@LOSSES.register("ce")
def ce(*, class_counts: Sequence[int], label_smoothing: float = 0.1) -> CrossEntropy:
    as_counts(class_counts)
    return CrossEntropy(label_smoothing=_smoothing(label_smoothing))


@LOSSES.register("focal")
def focal(*, class_counts: Sequence[int], gamma: float = 2.0,
          label_smoothing: float = 0.0) -> FocalLoss:
    as_counts(class_counts)
    return FocalLoss(gamma=check_range("gamma", gamma, low=0.0),
                     label_smoothing=_smoothing(label_smoothing))


@LOSSES.register("logit_adjust")
def logit_adjust(*, class_counts: Sequence[int], tau: float = 1.0,
                 label_smoothing: float = 0.1) -> LogitAdjustedLoss:
    return LogitAdjustedLoss(class_counts=class_counts, tau=check_range("tau", tau, low=0.0),
                             label_smoothing=_smoothing(label_smoothing))


@LOSSES.register("class_balanced")
def class_balanced(*, class_counts: Sequence[int], beta: float = 0.999,
                   label_smoothing: float = 0.1) -> ClassBalancedLoss:
    return ClassBalancedLoss(
        class_counts=class_counts,
        beta=check_range("beta", beta, low=0.0, high=1.0, high_open=True),
        label_smoothing=_smoothing(label_smoothing),
    )
