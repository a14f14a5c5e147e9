"""SAM / ASAM around any base optimizer, and BatchNorm freezing for the second pass.

Sharpness-Aware Minimization (Foret et al., ICLR 2021):

    grad at w -> e = rho * g / ||g||            (first_step: w <- w + e)
    grad at w + e -> restore w -> base step      (second_step)

ASAM (Kwon et al., ICML 2021) rescales element-wise with T_w = |w|:
e = rho * T_w^2 g / ||T_w g||.

Usage with an explicit second pass (what DSM's gradient scaling needs, since the
first step returns ||g||):

    loss(model(x)).backward()
    g = opt.first_step(zero_grad=True)
    with frozen_bn_stats(model):
        loss(model(x), grad_norm=g).backward()
    opt.second_step(zero_grad=True)
"""
from __future__ import annotations

from contextlib import contextmanager
import weakref
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from bench.errors import ConfigError

__all__ = ["SAM", "bn_running_stats", "frozen_bn_stats"]


class SAM(torch.optim.Optimizer):
    """Two-pass optimizer; shares `param_groups` with the base so schedulers drive both."""

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        *,
        rho: float = 0.05,
        adaptive: bool = False,
        **base_kwargs: Any,
    ) -> None:
        if not (isinstance(rho, (int, float)) and rho > 0 and rho != float("inf")):
            raise ConfigError(f"optimizer option 'rho' = {rho!r} is out of range; allowed (0, inf)")
        super().__init__(params, dict(rho=float(rho), adaptive=bool(adaptive), **base_kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups  # the same dicts, one list
        self.defaults.update(self.base_optimizer.defaults)
        self.last_grad_norm: torch.Tensor | None = None
        self._saved: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def _grouped(self) -> list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]:
        """(group, params, grads) of each group's parameters that have a gradient."""
        out = []
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            if ps:
                out.append((group, ps, [p.grad for p in ps]))
        return out

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> torch.Tensor:
        """Move to w + e; return the plain global gradient norm ||g|| at w (0-dim tensor).

        The norm stays on the device: nothing here waits for the GPU.
        """
        groups = self._grouped()
        if not groups:
            raise RuntimeError("SAM.first_step: no parameter has a gradient; call backward() first")
        device = groups[0][1][0].device
        norms = [torch.linalg.vector_norm(torch.stack(torch._foreach_norm(gs)).to(device))
                 for _, _, gs in groups]
        grad_norm = torch.linalg.vector_norm(torch.stack(norms))
        if any(g["adaptive"] for g, _, _ in groups):
            tg = [torch._foreach_mul(gs, torch._foreach_abs(ps)) if g["adaptive"] else gs
                  for g, ps, gs in groups]  # T_w g
            scaled_norm = torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(torch.stack(torch._foreach_norm(t)).to(device))
                 for t in tg]))
        else:
            scaled_norm = grad_norm
        self._saved = []
        for group, ps, gs in groups:
            self._saved.append((ps, self._copies(ps)))
            e = torch._foreach_mul(gs, group["rho"] / (scaled_norm + 1e-12))
            if group["adaptive"]:
                torch._foreach_mul_(e, torch._foreach_mul(ps, ps))  # T_w^2 (ASAM)
            torch._foreach_add_(ps, e)
        if zero_grad:
            self.zero_grad()
        self.last_grad_norm = grad_norm
        return grad_norm

    def _copies(self, ps: list[torch.Tensor]) -> list[torch.Tensor]:
        """w saved into buffers kept between steps (no allocation per step)."""
        bufs = []
        for p in ps:
            buf = self.state[p].get("w")
            if buf is None or buf.shape != p.shape or buf.dtype != p.dtype or buf.device != p.device:
                buf = self.state[p]["w"] = torch.empty_like(p, memory_format=torch.preserve_format)
            bufs.append(buf)
        torch._foreach_copy_(bufs, [p.detach() for p in ps])
        return bufs

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the weights w saved by `first_step` (exactly; no-op if none)."""
        for ps, old in self._saved:
            torch._foreach_copy_(ps, old)
        self._saved = []

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore w exactly and take the base step with the gradient from w + e."""
        self.restore()
        self.base_optimizer.step()
        self._opt_called = True  # LR schedulers check this to order their warnings
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Both passes; `closure` must zero grads (or not), run forward + backward, return loss."""
        if closure is None:
            raise RuntimeError("SAM.step needs a closure that recomputes the loss; "
                               "or call first_step() / second_step() yourself")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    # Checkpoints hold the base optimizer's state (e.g. AdamW moments), which SAM's
    # own `state` (only the saved weights between the passes) does not.
    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


_BATCHNORMS: "weakref.WeakKeyDictionary[nn.Module, list[_BatchNorm]]" = weakref.WeakKeyDictionary()


def _batchnorms(model: nn.Module) -> list[_BatchNorm]:
    """The model's BatchNorm layers, found once per model (the tree is walked once)."""
    found = _BATCHNORMS.get(model)
    if found is None:
        found = _BATCHNORMS[model] = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    return found


def bn_running_stats(model: nn.Module, enabled: bool) -> None:
    """Freeze (enabled=False) or restore (True) BatchNorm running statistics.

    Frozen, a layer in training mode still normalises with the batch's own
    statistics but neither moves its running mean/variance nor counts the batch
    (`track_running_stats` off for the pass), so the second SAM pass leaves the
    statistics exactly as the first pass left them. The layers are looked up once
    per model, and toggling is attribute assignment only: no tensor is touched.
    """
    for m in _batchnorms(model):
        if not enabled:
            if not hasattr(m, "_sam_tracking"):
                m._sam_tracking = m.track_running_stats
            m.track_running_stats = False
        elif hasattr(m, "_sam_tracking"):
            m.track_running_stats = m._sam_tracking
            del m._sam_tracking


@contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[nn.Module]:
    """`with frozen_bn_stats(model):` around SAM's second forward pass."""
    bn_running_stats(model, False)
    try:
        yield model
    finally:
        bn_running_stats(model, True)
