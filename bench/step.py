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

Precision: the model's forward runs under autocast (bf16 or fp16) when asked;
every loss computes in float32. fp16 scales the loss (a `GradScaler`): in SAM's
first pass the gradient is unscaled before the ascent, and a step whose either
pass overflowed is skipped, with the scale lowered, as a plain fp16 step would be.

Nothing in a step waits for the device: g, the loss and its parts stay 0-dim
tensors; `step(check=True)` (the trainer asks every k steps and at an epoch's
end) reads them and raises `TrainingDiverged` if the loss stopped being finite.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import torch
from torch import nn

from bench.errors import TrainingDiverged
from bench.losses.base import LossOutput
from bench.losses.term_grads import GradientProbe
from bench.optim import SAM, bn_running_stats

__all__ = ["Stepper", "grad_norm", "autocast"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _check_resolved(precision: str) -> str:
    if precision not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"precision must be resolved to bf16, fp16 or fp32, got {precision!r}")
    return precision


def autocast(device_type: str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast a resolved train.precision (bf16, fp16, fp32) runs a forward under."""
    if _check_resolved(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=_DTYPES[precision])


def grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Global L2 norm of the parameters' gradients (0 when none has one); 0-dim tensor."""
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


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
        precision: str = "fp32",
        forward: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        """`precision` is resolved (bf16, fp16 or fp32); `forward` replaces `model(x)`
        (a compiled model), while BatchNorm handling keeps using `model`."""
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.forward = model if forward is None else forward
        self.params = list(params)
        self.probe = probe
        self.bn_both_passes = bn_both_passes
        self.grad_clip = grad_clip
        self.precision = _check_resolved(precision)
        self.device_type = self.params[0].device.type if self.params else "cpu"
        self.scaler = (torch.amp.GradScaler(self.device_type) if precision == "fp16" else None)
        self.grad_norm: torch.Tensor | float | None = None  # g from the previous step

    def _loss(self, x: torch.Tensor, y: torch.Tensor, g: Any) -> LossOutput:
        with autocast(self.device_type, self.precision):
            logits, z = self.forward(x)  # (B, K), (B, D)
        return self.loss_fn(logits, z, y, grad_norm=g)  # float32 inside every loss

    def _backward(self, out: LossOutput, retain_graph: bool = False) -> None:
        total = out.total if self.scaler is None else self.scaler.scale(out.total)
        total.backward(retain_graph=retain_graph)

    def _scaling_norm(self, scaled: torch.Tensor, out: LossOutput) -> Any:
        """The g the loss's next scaling feeds on, from the step's scaled gradient norm."""
        if (self.loss_fn.uses_grad_norm and self.loss_fn.scaling_grad == "unscaled"
                and out.terms is not None):
            return self.probe.unscaled_norm(float(scaled), out.terms)
        return scaled

    def _keep_finite(self, g: torch.Tensor) -> torch.Tensor:
        """fp16: an overflowed step's g (inf or nan) must not feed the next scaling."""
        if self.scaler is None:
            return g
        prev = torch.as_tensor(1.0 if self.grad_norm is None else self.grad_norm,  # 1: DSM's start
                               dtype=g.dtype, device=g.device)
        return torch.where(torch.isfinite(g), g, prev)

    @staticmethod
    def check_finite(out: LossOutput, epoch: int) -> None:
        """Raise TrainingDiverged if the loss is not finite (reads it from the device)."""
        if not torch.isfinite(out.total.detach()).item():
            parts = ", ".join(f"{k}={float(v):.4g}" for k, v in out.parts.items())
            raise TrainingDiverged(f"loss became {float(out.total.detach())} at epoch {epoch} (parts: {parts})")

    def step(self, x: torch.Tensor, y: torch.Tensor, *, probe: bool = False, epoch: int = 0,
             check: bool = True) -> tuple[dict[str, Any], dict[str, float]]:
        """One update on a batch x (B, C, T, H, W), y (B,); returns (loss parts, probe metrics).

        Loss parts are 0-dim tensors (or floats), the total under "loss". The probe
        metrics are empty unless `probe` and the loss has several terms; they are
        measured at w, in the (first) pass whose gradient gives g. `check` reads the
        loss to catch divergence (a host synchronisation; the trainer does it every k steps).
        """
        opt, scaler = self.optimizer, self.scaler
        out = self._loss(x, y, self.grad_norm)
        if check:
            self.check_finite(out, epoch)
        probing = probe and out.terms is not None and len(out.terms) > 1
        self._backward(out, retain_graph=probing)
        if scaler is not None:
            scaler.unscale_(opt)  # true gradients for the probe, g, SAM's ascent and clipping
        diag = self.probe.measure(out.terms, self.params) if probing else {}
        if isinstance(opt, SAM):
            g = self._keep_finite(self._scaling_norm(opt.first_step(zero_grad=True), out))
            if not self.bn_both_passes:
                bn_running_stats(self.model, False)  # BN statistics: first pass only
            try:
                out = self._loss(x, y, g)
                self._backward(out)
            finally:
                if not self.bn_both_passes:
                    bn_running_stats(self.model, True)
            opt.restore()
            base = opt.base_optimizer
            if scaler is not None:
                scaler.unscale_(base)
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            if scaler is not None:
                scaler.step(base)  # skipped when either pass overflowed (w + e is then inf)
                scaler.update()
            else:
                base.step()
            opt._opt_called = True  # LR schedulers check this to order their warnings
            opt.zero_grad(set_to_none=True)
            self.grad_norm = g
        else:
            if self.loss_fn.uses_grad_norm:
                self.grad_norm = self._keep_finite(
                    self._scaling_norm(grad_norm(self.params), out))
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
        return {"loss": out.total.detach(), **out.parts}, diag
