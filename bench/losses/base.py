"""The loss contract shared by every objective, and `build_loss`.

Every loss is an `nn.Module` called as `loss(logits, z, y, grad_norm=...)` so the
training loop never needs to know which one it runs: baselines ignore `z` and
`grad_norm`, DSM uses both. A loss made of several terms also returns them
(`LossOutput.terms`), so the training loop can measure what each term
contributes to the gradient without knowing the loss.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, NamedTuple, Sequence

import torch
from torch import nn

from bench.errors import ConfigError

__all__ = ["Term", "LossOutput", "Loss", "build_loss", "check_range", "check_choice",
           "as_counts", "check_num_classes", "SCALING_GRADS"]

#: Which gradient norm g a gradient-scaled loss feeds on (see `Loss.scaling_grad`).
SCALING_GRADS = ("scaled", "unscaled")


class Term(NamedTuple):
    """One term of a weighted-sum objective: total = sum(weight * value) over the terms."""

    value: torch.Tensor  # () differentiable, unweighted
    weight: float  # its coefficient in `LossOutput.total`
    unscaled: float  # its coefficient in the objective without gradient-driven scaling


class LossOutput(NamedTuple):
    """The differentiable total plus detached scalars for logging.

    `terms` (None for single-term losses) lists the total's terms in order, the
    first being the one the others are measured against (cross-entropy).
    """

    total: torch.Tensor
    parts: dict[str, "float | torch.Tensor"]  # 0-dim, detached, on the device: read when logging
    terms: dict[str, Term] | None = None


class Loss(nn.Module):
    """Base of all objectives; subclasses implement `forward`."""

    #: True when the loss wants the global gradient norm of the current step
    #: (DSM with adaptive scaling); the training loop passes `grad_norm` then.
    uses_grad_norm: bool = False
    #: "scaled": g is the norm of the gradient of `total`, as back-propagated;
    #: "unscaled": g is the norm of the gradient of sum(unscaled * value) over
    #: `terms`, which the training loop estimates from its gradient probe.
    scaling_grad: str = "scaled"

    def forward(  # noqa: D102
        self,
        logits: torch.Tensor,  # (B, K)
        z: torch.Tensor,  # (B, D) un-normalised pooled features
        y: torch.Tensor,  # (B,) int64
        *,
        grad_norm: float | None = None,
    ) -> LossOutput:
        raise NotImplementedError


def build_loss(name: str, *, class_counts: Sequence[int], **kwargs: Any) -> nn.Module:
    """Build a registered loss by name; unknown names/options raise ConfigError."""
    from bench.losses import LOSSES

    return LOSSES.build(name, class_counts=class_counts, **kwargs)


def check_range(
    what: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Reject an out-of-range option with one line naming it and the allowed range."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ConfigError(f"loss option '{what}' = {value!r} is out of range; allowed {lo}, {hi}")
    return float(value)


def check_choice(what: str, value: Any, choices: Sequence[str]) -> str:
    """Reject a value outside its list with one line, suggesting the nearest choice."""
    if isinstance(value, str) and value in choices:
        return value
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"loss option '{what}' = {value!r} is unknown.{hint} "
                      f"Allowed: {', '.join(choices)}.")


def as_counts(class_counts: Sequence[int]) -> torch.Tensor:
    """Validate per-class training counts; returns a float64 tensor (K,)."""
    counts = list(class_counts)
    if len(counts) < 2 or any(
        isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c < 0
        for c in counts
    ) or sum(counts) <= 0:
        raise ConfigError(
            f"loss option 'class_counts' = {counts!r} is invalid; "
            "need >= 2 non-negative counts with a positive sum"
        )
    return torch.tensor(counts, dtype=torch.float64)


def check_num_classes(logits: torch.Tensor, k: int) -> None:
    """Catch a class-count / classifier-width mismatch before it turns into garbage."""
    if logits.shape[-1] != k:
        raise ConfigError(
            f"logits have {logits.shape[-1]} classes but 'class_counts' has {k} entries"
        )
