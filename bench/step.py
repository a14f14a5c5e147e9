"""One optimisation step: plain or SAM, DSM's gradient norm g, and the gradient probe.

Computation only (no data, no files), shared by the `Trainer` and by
`python -m bench.perf model`, so the benchmark times the step that trains.

    plain:  loss(w; g_prev).backward() -> [probe] -> g = ||grad|| -> base step
    SAM:    loss(w; g_prev).backward() -> [probe] -> g = first_step() (ascent to w + e)
            -> loss(w + e; g).backward() -> second_step() (restore w, base step)

With `loss.scaling_grad: unscaled` the norm that feeds the next scaling is
the unscaled objective's, estimated by the probe from the scaled norm (see
`bench.losses.term_grads`). BatchNorm running statistics move in SAM's first
pass only, unless `bn_both_passes` (what the released HDF code does).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from bench.errors import TrainingDiverged
from bench.losses.base import LossOutput
from bench.losses.term_grads import GradientProbe
from bench.optim import SAM, bn_running_stats

__all__ = ["Stepper", "grad_norm"]


def grad_norm(params: Sequence[torch.Tensor]) -> float:
    """Global L2 norm of the parameters' gradients (0 when none has one)."""
    norms = [p.grad.detach().norm(2) for p in params if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


class Stepper:
    """Runs steps for one model, loss and optimizer; holds g between steps and the probe."""

    def __init__(
        self,
        *,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        params: Sequence[torch.Tensor],
        probe: GradientProbe,
        bn_both_passes: bool = False,
        grad_clip: float | None = None,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.params = list(params)
        self.probe = probe
        self.bn_both_passes = bn_both_passes
        self.grad_clip = grad_clip
        self.grad_norm: float | None = None  # g from the previous step (None: first step)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, g: float | None, epoch: int) -> LossOutput:
        logits, z = self.model(x)  # (B, K), (B, D)
        out = self.loss_fn(logits, z, y, grad_norm=g)
        if not torch.isfinite(out.total):
            raise TrainingDiverged(
                f"loss became {out.total.item()} at epoch {epoch} "
                f"(parts: {', '.join(f'{k}={v:.4g}' for k, v in out.parts.items())})")
        return out

    def _scaling_norm(self, scaled: float, out: LossOutput) -> float:
        """The g the loss's next scaling feeds on, from the step's scaled gradient norm."""
        if (self.loss_fn.uses_grad_norm and self.loss_fn.scaling_grad == "unscaled"
                and out.terms is not None):
            return self.probe.unscaled_norm(scaled, out.terms)
        return scaled

    def step(self, x: torch.Tensor, y: torch.Tensor, *, probe: bool = False,
             epoch: int = 0) -> tuple[dict[str, float], dict[str, float]]:
        """One update on a batch x (B, C, T, H, W), y (B,); returns (loss parts, probe metrics).

        The probe metrics are empty unless `probe` and the loss has several terms;
        they are measured at w, in the (first) pass whose gradient gives g.
        """
        opt = self.optimizer
        out = self._loss(x, y, self.grad_norm, epoch)
        probing = probe and out.terms is not None and len(out.terms) > 1
        out.total.backward(retain_graph=probing)
        diag = self.probe.measure(out.terms, self.params) if probing else {}
        if isinstance(opt, SAM):
            g = self._scaling_norm(opt.first_step(zero_grad=True), out)
            if not self.bn_both_passes:
                bn_running_stats(self.model, False)  # BN statistics: first pass only
            try:
                out = self._loss(x, y, g, epoch)
                out.total.backward()
            finally:
                if not self.bn_both_passes:
                    bn_running_stats(self.model, True)
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            opt.second_step(zero_grad=True)
            self.grad_norm = g
        else:
            if self.loss_fn.uses_grad_norm:
                self.grad_norm = self._scaling_norm(grad_norm(self.params), out)
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return {"loss": float(out.total.detach()), **out.parts}, diag
