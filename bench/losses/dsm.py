"""DSM: Distribution-aware Scaling Module, HDF's training objective.

    z (B, D) -> L2 normalise -> s = z z^T / tau -> robust weights w(s; eta)
      -> L_DSC (distributionally robust SupCon, `figure` or `code` variant)
      -> L_IB = trace(Cov(z))
    total = lambda_CE * CE(logits, y) + lambda_SC * (L_DSC + ib_weight * L_IB)

with lambda_CE = alpha * g / (g + 1), lambda_SC = beta / (g + 1) from the global
gradient norm g (adaptive scaling) or fixed alpha, beta.

Options beyond the paper's figure:
- `scaling_grad`: g of the scaled total as back-propagated (`scaled`), or of
  the objective without the lambdas (`unscaled`), which the training loop
  estimates from its gradient probe (see `bench.losses.term_grads`). The
  scaled g carries lambda_CE itself, so it mostly measures the scaling's own
  output; the unscaled g measures the task's gradient.
- `features`: `pooled` contrasts the pooled backbone features, `projection` a
  small MLP head on them (built by the network, see `bench.models.projection`).
- `ib_cov`: the covariance of L_IB with 1/N (`population`) or 1/(N-1) (`sample`).

The pure functions below take normalised features so tests can check them
against straightforward formulas; `DSMLoss` only wires them together.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.errors import ConfigError
from bench.losses import LOSSES
from bench.losses.base import (SCALING_GRADS, Loss, LossOutput, Term, as_counts, check_choice,
                               check_range)

__all__ = ["DSMLoss", "dsc_figure", "dsc_code", "ib_trace", "dsm_lambdas", "effective_pairs",
           "DSC_VARIANTS", "FEATURES", "IB_COVS"]

DSC_VARIANTS = ("figure", "code")
FEATURES = ("pooled", "projection")
IB_COVS = ("population", "sample")


def _positives(y: Tensor) -> Tensor:
    """(B, B) bool: same label, not self."""
    eye = torch.eye(y.numel(), dtype=torch.bool, device=y.device)
    return (y[:, None] == y[None, :]) & ~eye


def _zero_like_graph(zn: Tensor) -> Tensor:
    """A zero that still depends on the features, so backward() works."""
    return zn.sum() * 0.0


def _log_row_weights(zn: Tensor, *, tau: float, eta: float) -> Tensor:
    """log of the figure's robust weights, normalised over each row without self: (B, B)."""
    n = zn.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=zn.device)
    s = zn @ zn.T / tau  # (B, B)
    log_w = (-((s - eta) ** 2) / (2.0 * eta**2)).masked_fill(eye, -math.inf)
    return log_w - torch.logsumexp(log_w, dim=1, keepdim=True)


@torch.no_grad()
def effective_pairs(zn: Tensor, *, tau: float, eta: float) -> Tensor:
    """How many pairs each anchor's `figure` weights rest on: 1 / sum_a p_ia^2, (B,).

    p_ia are the robust weights normalised to sum 1 over a != i (inverse Simpson
    index): B - 1 when all pairs weigh alike, 1 when a single pair takes all.
    Non-negative features (post-ReLU pooling) make all cosines large, and the
    Gaussian in s / tau then leaves nearly all weight on the least similar sample.
    """
    n = zn.shape[0]
    if n < 2:
        return torch.zeros(n, device=zn.device)
    log_p = _log_row_weights(zn.float(), tau=tau, eta=eta)  # (B, B), -inf on the diagonal
    return torch.exp(-torch.logsumexp(2.0 * log_p, dim=1))  # (B,)


def dsc_figure(zn: Tensor, y: Tensor, *, tau: float, eta: float) -> Tensor:
    """The paper figure's L_DSC with row-mean-normalised weights, in log space.

    L(i) = -1/|P(i)| sum_p [ s_ip - log sum_{a != i} v_ia exp(s_ia) ],
    v_ia = w_ia / mean_{b != i} w_ib.  Bounded by the range of s (about 2 / tau).
    """
    pos = _positives(y)  # (B, B)
    has_pos = pos.any(dim=1)  # (B,)
    if not bool(has_pos.any()):
        return _zero_like_graph(zn)
    n = zn.shape[0]  # >= 2 here
    eye = torch.eye(n, dtype=torch.bool, device=zn.device)
    s = zn @ zn.T / tau  # (B, B)
    log_w = -((s - eta) ** 2) / (2.0 * eta**2)  # (B, B), may be ~-1e4: never exp'd alone
    log_mean_w = torch.logsumexp(log_w.masked_fill(eye, -math.inf), dim=1, keepdim=True) - math.log(n - 1)
    log_v = log_w - log_mean_w  # (B, B), mean_{b != i} v_ib = 1
    log_den = torch.logsumexp((log_v + s).masked_fill(eye, -math.inf), dim=1, keepdim=True)  # (B, 1)
    log_prob = s - log_den  # (B, B)
    per_anchor = -(log_prob * pos).sum(dim=1) / pos.sum(dim=1).clamp_min(1)  # (B,)
    return per_anchor[has_pos].mean()


def dsc_code(zn: Tensor, y: Tensor, *, tau: float, eta: float) -> Tensor:
    """The released code's L_DSC, kept faithful (it is nearly zero on most batches).

    s is shifted by its row max (detached, SupCon style); weights are computed from
    the shifted s and normalised to sum 1 over the whole row, self included;
    log_prob is a log-softmax over the whole row, self included.
    """
    pos = _positives(y)  # (B, B)
    has_pos = pos.any(dim=1)  # (B,)
    if not bool(has_pos.any()):
        return _zero_like_graph(zn)
    s = zn @ zn.T / tau  # (B, B)
    s = s - s.max(dim=1, keepdim=True).values.detach()
    w = torch.softmax(-((s - eta) ** 2) / (2.0 * eta**2), dim=1)  # (B, B), rows sum to 1
    log_prob = s - torch.logsumexp(s, dim=1, keepdim=True)  # (B, B)
    per_anchor = -(w * log_prob * pos).sum(dim=1) / pos.sum(dim=1).clamp_min(1)  # (B,)
    return per_anchor[has_pos].mean()


def ib_trace(zn: Tensor, *, cov: str = "population") -> Tensor:
    """trace(Cov(Z)): the batch's total variance, with 1/N (`population`) or 1/(N-1) (`sample`).

    The released code uses the sample covariance; a batch of one has no spread (0).
    """
    n = zn.shape[0]
    centred = zn - zn.mean(dim=0, keepdim=True)  # (B, D)
    total = (centred**2).sum()
    return total / (max(n - 1, 1) if cov == "sample" else n)


def dsm_lambdas(
    *, alpha: float, beta: float, adaptive: bool, grad_norm: float | Tensor | None
) -> tuple[float | Tensor, float | Tensor]:
    """(lambda_CE, lambda_SC); g defaults to 1.0 on the first step.

    A tensor g (the trainer's, still on the device) gives tensor lambdas without
    waiting for the device; a NaN g then turns the loss NaN, which the trainer's
    divergence check reports.
    """
    if not adaptive:
        return alpha, beta
    if isinstance(grad_norm, Tensor):
        g = grad_norm.detach().float()
        inf = torch.isinf(g)
        g = torch.where(inf, torch.zeros_like(g), g)
        return (torch.where(inf, torch.full_like(g, alpha), alpha * g / (g + 1.0)),
                torch.where(inf, torch.zeros_like(g), beta / (g + 1.0)))
    g = 1.0 if grad_norm is None else float(grad_norm)
    if math.isnan(g) or g < 0:
        raise ValueError(f"DSM got an invalid gradient norm {g!r}; training has diverged")
    if math.isinf(g):
        return alpha, 0.0
    return alpha * g / (g + 1.0), beta / (g + 1.0)


_DSC = {"figure": dsc_figure, "code": dsc_code}


class DSMLoss(Loss):
    """CE + distributionally robust SupCon + information bottleneck, gradient-scaled."""

    def __init__(
        self,
        *,
        # similarity / robust weights
        tau: float = 0.07,
        eta: float = 0.2,
        dsc_variant: str = "figure",
        # information bottleneck
        ib_weight: float = 0.1,
        # scaling
        alpha: float = 10.0,
        beta: float = 0.1,
        adaptive_scaling: bool = True,
        ib_cov: str = "population",
        scaling_grad: str = "scaled",
        # which features the contrastive terms see (the network builds the head)
        features: str = "pooled",
        # cross-entropy
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        self.tau, self.eta, self.dsc_variant = tau, eta, dsc_variant
        self.ib_weight, self.ib_cov, self.alpha, self.beta = ib_weight, ib_cov, alpha, beta
        self.adaptive_scaling, self.label_smoothing = adaptive_scaling, label_smoothing
        self.scaling_grad, self.features = scaling_grad, features
        self.uses_grad_norm = adaptive_scaling

    def forward(self, logits: Tensor, z: Tensor, y: Tensor, *,
                grad_norm: float | None = None) -> LossOutput:
        ce = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        # exp(-(s - eta)^2 / 2 eta^2) at s ~ 1 / tau needs float32 similarities,
        # which autocast would otherwise compute in half precision
        with torch.autocast(device_type=z.device.type, enabled=False):
            zn = F.normalize(z.float().flatten(1), dim=1)  # (B, D)
            dsc = _DSC[self.dsc_variant](zn, y, tau=self.tau, eta=self.eta)
            ib = ib_trace(zn, cov=self.ib_cov)
        lam_ce, lam_sc = dsm_lambdas(alpha=self.alpha, beta=self.beta,
                                     adaptive=self.adaptive_scaling, grad_norm=grad_norm)
        total = lam_ce * ce + lam_sc * (dsc + self.ib_weight * ib)
        # detached, on the device: read them when logging, not every step
        parts = {"ce": ce.detach(), "dsc": dsc.detach(), "ib": ib.detach(),
                 "lambda_ce": lam_ce, "lambda_sc": lam_sc}
        if self.adaptive_scaling:
            parts["g"] = 1.0 if grad_norm is None else (
                grad_norm.detach() if isinstance(grad_norm, Tensor) else float(grad_norm))
        if self.dsc_variant == "figure":
            parts["pairs"] = effective_pairs(zn.detach(), tau=self.tau, eta=self.eta).mean()
        terms = {"ce": Term(ce, lam_ce, 1.0), "dsc": Term(dsc, lam_sc, 1.0),
                 "ib": Term(ib, lam_sc * self.ib_weight, self.ib_weight)}
        return LossOutput(total, parts, terms)

    def extra_repr(self) -> str:
        return (f"variant={self.dsc_variant}, tau={self.tau}, eta={self.eta}, "
                f"ib_weight={self.ib_weight}, ib_cov={self.ib_cov}, alpha={self.alpha}, "
                f"beta={self.beta}, adaptive={self.adaptive_scaling}, "
                f"scaling_grad={self.scaling_grad}, features={self.features}")


@LOSSES.register("dsm")
def dsm(
    *,
    class_counts: Sequence[int],
    # similarity / robust weights
    tau: float = 0.07,
    eta: float = 0.2,
    dsc_variant: str = "figure",
    # information bottleneck (signed: + figure, - released code)
    ib_weight: float = 0.1,
    # scaling
    alpha: float = 10.0,
    beta: float = 0.1,
    adaptive_scaling: bool = True,
    # covariance of L_IB: 1/N (population) or 1/(N-1) (sample, the released code)
    ib_cov: str = "population",
    # g of the scaled total (scaled) or of the objective without the lambdas (unscaled)
    scaling_grad: str = "scaled",
    # contrast the pooled features or a projection head's output
    features: str = "pooled",
    # cross-entropy
    label_smoothing: float = 0.1,
) -> DSMLoss:
    as_counts(class_counts)
    check_choice("dsc_variant", dsc_variant, DSC_VARIANTS)
    check_choice("ib_cov", ib_cov, IB_COVS)
    check_choice("scaling_grad", scaling_grad, SCALING_GRADS)
    check_choice("features", features, FEATURES)
    if not isinstance(adaptive_scaling, bool):
        raise ConfigError(f"loss option 'adaptive_scaling' = {adaptive_scaling!r}; allowed: true, false")
    return DSMLoss(
        tau=check_range("tau", tau, low=0.0, low_open=True),
        eta=check_range("eta", eta, low=0.0, low_open=True),
        dsc_variant=dsc_variant,
        ib_weight=check_range("ib_weight", ib_weight),
        alpha=check_range("alpha", alpha, low=0.0, low_open=True),
        beta=check_range("beta", beta, low=0.0),
        adaptive_scaling=adaptive_scaling,
        ib_cov=ib_cov,
        scaling_grad=scaling_grad,
        features=features,
        label_smoothing=check_range("label_smoothing", label_smoothing, low=0.0, high=1.0,
                                    high_open=True),
    )
