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
        self.last_grad_norm: float | None = None

    def _params_with_grad(self) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> float:
        """Move to w + e and return the plain global gradient norm ||g|| at w."""
        pairs = list(self._params_with_grad())
        if not pairs:
            raise RuntimeError("SAM.first_step: no parameter has a gradient; call backward() first")
        device = pairs[0][1].device
        grad_norm = torch.linalg.vector_norm(
            torch.stack([p.grad.norm(2).to(device) for _, p in pairs])
        )
        if any(g["adaptive"] for g in self.param_groups):
            scaled_norm = torch.linalg.vector_norm(torch.stack([
                ((p.abs() if g["adaptive"] else 1.0) * p.grad).norm(2).to(device) for g, p in pairs
            ]))
        else:
            scaled_norm = grad_norm
        for group, p in pairs:
            t2 = p.pow(2) if group["adaptive"] else 1.0  # T_w^2 (ASAM) or 1 (SAM)
            e = t2 * p.grad * (group["rho"] / (scaled_norm + 1e-12)).to(p)
            self.state[p]["old_p"] = p.detach().clone()
            p.add_(e)
        if zero_grad:
            self.zero_grad()
        self.last_grad_norm = float(grad_norm)
        return self.last_grad_norm

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore w exactly and take the base step with the gradient from w + e."""
        for group in self.param_groups:
            for p in group["params"]:
                old = self.state[p].pop("old_p", None) if p in self.state else None
                if old is not None:
                    p.copy_(old)
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


def bn_running_stats(model: nn.Module, enabled: bool) -> None:
    """Freeze (enabled=False) or restore (True) BatchNorm running statistics.

    Freezing sets momentum to 0 and remembers `num_batches_tracked`, so the second
    SAM pass leaves the statistics exactly as the first pass left them.
    """
    for m in model.modules():
        if not isinstance(m, _BatchNorm):
            continue
        if not enabled:
            if not hasattr(m, "_sam_momentum"):
                m._sam_momentum = m.momentum
                m._sam_tracked = (None if m.num_batches_tracked is None
                                  else m.num_batches_tracked.clone())
            m.momentum = 0.0
        elif hasattr(m, "_sam_momentum"):
            m.momentum = m._sam_momentum
            if m._sam_tracked is not None:
                m.num_batches_tracked.copy_(m._sam_tracked)
            del m._sam_momentum, m._sam_tracked


@contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[nn.Module]:
    """`with frozen_bn_stats(model):` around SAM's second forward pass."""
    bn_running_stats(model, False)
    try:
        yield model
    finally:
        bn_running_stats(model, True)
