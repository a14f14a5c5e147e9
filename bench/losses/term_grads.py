"""What each loss term contributes to the gradient, measured cheaply every k steps.

A multi-term loss (DSM: total = lambda_CE * CE + lambda_SC * DSC + lambda_SC *
ib_weight * IB) returns its terms with their coefficients. On a probed step
the training loop back-propagates the total as usual (keeping the graph), then
asks autograd for the gradient of every term but the first; the first term's
gradient follows from the total's by subtraction, so a probe costs one
backward pass per extra term and changes nothing in the update. From the
per-term gradients g_k the probe keeps their Gram matrix M_jk = <g_j, g_k>,
which gives any weighted sum's norm: ||sum_k a_k g_k||^2 = a^T M a.

Reported per probed step: each term's share of the total's gradient norm,
||w_k g_k|| / ||sum_j w_j g_j||, and each term's cosine with the first.

The unscaled gradient norm (the objective without DSM's lambdas, coefficients
u_k) is exact on a probed step: sqrt(u^T M u). Between probes it is estimated
from the step's exact scaled norm S and its coefficients w:
S * sqrt(u^T M u / w^T M w) with the last probe's M, i.e. assuming that the
per-term gradients keep the relative sizes and angles they had at the last
probe while their common scale follows S. No extra backward pass is needed.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from bench.losses.base import Term

__all__ = ["term_gram", "weighted_norm", "GradientProbe"]


def term_gram(terms: Mapping[str, Term], params: Sequence[Tensor]) -> Tensor:
    """Gram matrix (K, K) float64 of the unweighted per-term gradients over `params`.

    Call after `total.backward(retain_graph=True)`: each `p.grad` holds the
    gradient of the total, sum_k weight_k * g_k. The graph is freed on return.
    """
    names = list(terms)
    params = [p for p in params if p.grad is not None]
    first, rest = names[0], names[1:]
    w_first = terms[first].weight
    to_autograd = rest if w_first != 0.0 else names  # a zero weight hides g_first in the total
    grads: dict[str, list[Tensor]] = {}
    for j, name in enumerate(to_autograd):
        got = torch.autograd.grad(terms[name].value, params, allow_unused=True,
                                  retain_graph=j < len(to_autograd) - 1)
        grads[name] = [torch.zeros_like(p) if g is None else g for g, p in zip(got, params)]
    if first not in grads:
        grads[first] = [(p.grad - sum(terms[k].weight * grads[k][i] for k in rest)) / w_first
                        for i, p in enumerate(params)]
    flat = torch.stack([torch.cat([g.detach().reshape(-1).double() for g in grads[k]])
                        for k in names])  # (K, P)
    return flat @ flat.T  # (K, K)


def weighted_norm(gram: Tensor, coef: Sequence[float]) -> float:
    """||sum_k coef_k g_k|| from the Gram matrix of the g_k."""
    a = torch.tensor([float(c) for c in coef], dtype=torch.float64, device=gram.device)
    return math.sqrt(max(float(a @ gram @ a), 0.0))


class GradientProbe:
    """Per-term gradient shares every `every`-th step of an epoch; the unscaled norm in between.

    `every` = 0 turns probing off. Its state (the last Gram matrix) is plain
    lists, so it rides in a weights_only checkpoint.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self.names: list[str] = []
        self.gram: Tensor | None = None  # (K, K) float64, from the last probe

    def due(self, step_in_epoch: int) -> bool:
        """Probe the first step of every epoch, then every `every`-th."""
        return self.every > 0 and step_in_epoch % self.every == 0

    def measure(self, terms: Mapping[str, Term], params: Sequence[Tensor]) -> dict[str, float]:
        """Probe this step (after `total.backward(retain_graph=True)`); returns its metrics."""
        self.names = list(terms)
        self.gram = term_gram(terms, params)
        w = [t.weight for t in terms.values()]
        total = weighted_norm(self.gram, w)
        out: dict[str, float] = {}
        for k, name in enumerate(self.names):
            own = abs(w[k]) * math.sqrt(max(float(self.gram[k, k]), 0.0))
            out[f"grad_share_{name}"] = own / total if total > 0 else math.nan
        first = math.sqrt(max(float(self.gram[0, 0]), 0.0))
        for k, name in enumerate(self.names[1:], start=1):
            norm = first * math.sqrt(max(float(self.gram[k, k]), 0.0))
            out[f"grad_cos_{name}"] = float(self.gram[0, k]) / norm if norm > 0 else 0.0
        return out

    def unscaled_norm(self, scaled_norm: float, terms: Mapping[str, Term]) -> float:
        """Norm of the gradient of sum(unscaled_k * term_k), from this step's scaled norm.

        Exact on a probed step (up to float rounding); in between it assumes the
        last probe's Gram matrix up to a common scale (see the module docstring).
        """
        if self.gram is None or list(terms) != self.names:
            raise RuntimeError("the unscaled gradient norm needs a gradient probe of this loss "
                               "first (train.diag_every >= 1)")
        w = [t.weight for t in terms.values()]
        u = [t.unscaled for t in terms.values()]
        scaled_at_probe = weighted_norm(self.gram, w)
        unscaled_at_probe = weighted_norm(self.gram, u)
        if scaled_at_probe <= 0.0:
            return unscaled_at_probe
        return scaled_norm * unscaled_at_probe / scaled_at_probe

    def state_dict(self) -> dict[str, Any]:
        return {"names": list(self.names),
                "gram": None if self.gram is None else self.gram.tolist()}

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        state = state or {}
        self.names = list(state.get("names") or [])
        gram = state.get("gram")
        self.gram = None if gram is None else torch.tensor(gram, dtype=torch.float64)
