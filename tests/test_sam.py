"""SAM/ASAM against hand-written update rules; BN stats; optimizer and schedule builders."""
from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from bench.errors import ConfigError, UnknownNameError
from bench.optim import OPTIMIZERS, SAM, bn_running_stats, build_optimizer, build_scheduler
from bench.optim.sam import frozen_bn_stats

torch.set_num_threads(2)


def _model(seed: int = 0, bn: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 6)] + ([nn.BatchNorm1d(6)] if bn else []) + [nn.Tanh(), nn.Linear(6, 3)]
    return nn.Sequential(*layers)


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in model.parameters()]


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("adaptive", [False, True])
def test_first_step_perturbation_and_norm(adaptive: bool) -> None:
    model, (x, y), rho = _model(), _batch(), 0.3
    opt = SAM(model.parameters(), torch.optim.SGD, rho=rho, adaptive=adaptive, lr=0.1)
    _loss(model, x, y).backward()
    w, g = _weights(model), _grads(model)
    norm = math.sqrt(sum(float((gi.double() ** 2).sum()) for gi in g))
    returned = float(opt.first_step())
    assert returned == pytest.approx(norm, rel=1e-6)  # plain ||g||, also for ASAM
    if adaptive:
        scaled = math.sqrt(sum(float(((wi.double() * gi) ** 2).sum()) for wi, gi in zip(w, g)))
        expected = [wi + rho * wi**2 * gi / scaled for wi, gi in zip(w, g)]
    else:
        expected = [wi + rho * gi / norm for wi, gi in zip(w, g)]
    for p, e, wi in zip(model.parameters(), expected, w):
        torch.testing.assert_close(p.detach(), e.float(), rtol=1e-6, atol=1e-7)
        assert not torch.equal(p.detach(), wi)


def test_second_step_restores_weights_exactly() -> None:
    model, (x, y) = _model(), _batch()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.0)  # lr 0: step is a no-op
    w = _weights(model)
    _loss(model, x, y).backward()
    opt.first_step(zero_grad=True)
    _loss(model, x, y).backward()
    opt.second_step(zero_grad=True)
    for p, wi in zip(model.parameters(), w):
        assert torch.equal(p.detach(), wi)
        assert p.grad is None


def _manual_step(name: str, w: torch.Tensor, g: torch.Tensor, lr: float, wd: float) -> torch.Tensor:
    """The first step of each base optimizer, written out."""
    if name == "sgd":  # momentum buffer starts as the gradient
        return w - lr * (g + wd * w)
    eps = 1e-8  # AdamW, bias-corrected moments after one step are g and g^2
    return w * (1 - lr * wd) - lr * g / (g.abs() + eps)


@pytest.mark.parametrize("name", ["adamw", "sgd"])
@pytest.mark.parametrize("asam", [False, True])
def test_sam_step_equals_base_step_with_perturbed_gradient(name: str, asam: bool) -> None:
    model, (x, y) = _model(), _batch()
    lr, wd = 0.01, 0.05
    opt = build_optimizer(list(model.parameters()), name=name, lr=lr, weight_decay=wd,
                          sam=True, rho=0.1, asam=asam)
    assert isinstance(opt, SAM)
    w = _weights(model)
    _loss(model, x, y).backward()
    opt.first_step(zero_grad=True)
    _loss(model, x, y).backward()
    g_adv = _grads(model)
    opt.second_step()
    for p, wi, gi in zip(model.parameters(), w, g_adv):
        decay = wd if p.ndim >= 2 else 0.0  # norm/bias params are exempt
        torch.testing.assert_close(p.detach(), _manual_step(name, wi, gi, lr, decay),
                                   rtol=1e-5, atol=1e-6)


def test_step_with_closure_matches_explicit_passes() -> None:
    (x, y), results = _batch(), []
    for use_closure in (True, False):
        model = _model()
        opt = SAM(model.parameters(), torch.optim.AdamW, rho=0.05, lr=1e-2)
        for _ in range(3):
            opt.zero_grad()
            _loss(model, x, y).backward()
            if use_closure:
                def closure() -> torch.Tensor:
                    loss = _loss(model, x, y)
                    loss.backward()
                    return loss
                opt.step(closure)
            else:
                opt.first_step(zero_grad=True)
                _loss(model, x, y).backward()
                opt.second_step()
        results.append(_weights(model))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


@pytest.mark.parametrize("momentum", [0.1, None])
def test_bn_running_stats_updated_once_per_step(momentum: float | None) -> None:
    x, y = _batch()
    model = _model(bn=True)
    model[1].momentum = momentum
    reference = copy.deepcopy(model)
    reference(x)  # one forward pass: the update SAM's step must match
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    _loss(model, x, y).backward()
    opt.first_step(zero_grad=True)
    with frozen_bn_stats(model):
        _loss(model, x, y).backward()
    opt.second_step()
    bn, ref = model[1], reference[1]
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=0, atol=0)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 1
    assert bn.momentum == momentum

    # control: without freezing, the perturbed pass moves the statistics again
    unfrozen = _model(bn=True)
    unfrozen[1].momentum = momentum
    opt = SAM(unfrozen.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    _loss(unfrozen, x, y).backward()
    opt.first_step(zero_grad=True)
    _loss(unfrozen, x, y).backward()
    assert not torch.allclose(unfrozen[1].running_var, ref.running_var)


def test_bn_running_stats_function_pairs() -> None:
    model = _model(bn=True)
    bn_running_stats(model, False)
    bn_running_stats(model, False)  # idempotent: the saved setting is not overwritten
    assert model[1].track_running_stats is False and model[1].momentum == 0.1
    bn_running_stats(model, True)
    assert model[1].track_running_stats is True
    untracked = _model(bn=False)  # no BatchNorm: nothing to do
    bn_running_stats(untracked, False)
    bn_running_stats(untracked, True)


@pytest.mark.parametrize("sam", [False, True])
def test_scheduler_drives_lr(sam: bool) -> None:
    model, (x, y) = _model(), _batch()
    opt = build_optimizer(model.parameters(), lr=0.1, sam=sam)
    sched = build_scheduler(opt, epochs=4, steps_per_epoch=5, warmup_epochs=1.0)
    inner = opt.base_optimizer if sam else opt
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        for _ in range(20):
            lrs.append(inner.param_groups[0]["lr"])
            _loss(model, x, y).backward()
            if sam:
                opt.first_step(zero_grad=True)
                _loss(model, x, y).backward()
                opt.second_step(zero_grad=True)
            else:
                opt.step()
                opt.zero_grad()
            sched.step()
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[5] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:]))
    assert lrs[-1] < 0.002
    assert len({g["lr"] for g in inner.param_groups}) == 1  # decay and no-decay groups alike
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in inner.param_groups]


def test_state_dict_carries_base_state() -> None:
    model, (x, y) = _model(), _batch()
    opt = build_optimizer(model.parameters(), sam=True)
    _loss(model, x, y).backward()
    opt.first_step(zero_grad=True)
    _loss(model, x, y).backward()
    opt.second_step()
    state = opt.state_dict()
    assert "exp_avg" in state["state"][0]
    fresh = build_optimizer(model.parameters(), sam=True)
    fresh.load_state_dict(state)
    assert fresh.param_groups is fresh.base_optimizer.param_groups
    torch.testing.assert_close(fresh.base_optimizer.state_dict()["state"][0]["exp_avg"],
                               state["state"][0]["exp_avg"])


def test_no_weight_decay_on_vectors() -> None:
    model = _model(bn=True)
    opt = build_optimizer(model.parameters(), weight_decay=0.05)
    decays = {p.ndim: g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays == {2: 0.05, 1: 0.0}



@pytest.mark.parametrize("sam", [False, True])
def test_decay_all_decays_every_parameter(sam: bool) -> None:
    model = _model(bn=True)
    opt = build_optimizer(model.parameters(), weight_decay=0.05, decay_all=True, sam=sam)
    decays = {p.ndim: g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays == {2: 0.05, 1: 0.05}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_sgd_options() -> None:
    model = _model()
    opt = build_optimizer(model.parameters(), name="sgd", lr=0.1, momentum=0.8, nesterov=True)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["nesterov"]
    assert OPTIMIZERS.names() == ["adamw", "sgd"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(sam=True, rho=0.0), "rho"),
    (dict(sam=True, rho=-0.1), "rho"),
    (dict(lr=0.0), "lr"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(momentum=1.0), "momentum"),
    (dict(asam=True), "asam"),
    (dict(name="sgd", momentum=0.0, nesterov=True), "nesterov"),
])
def test_bad_optimizer_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_optimizer(_model().parameters(), **kwargs)


def test_unknown_optimizer_and_bad_schedule() -> None:
    with pytest.raises(UnknownNameError, match="adamw"):
        build_optimizer(_model().parameters(), name="adamx")
    opt = build_optimizer(_model().parameters())
    with pytest.raises(ConfigError, match="epochs"):
        build_scheduler(opt, epochs=0, steps_per_epoch=10)
    with pytest.raises(ConfigError, match="warmup_epochs"):
        build_scheduler(opt, epochs=2, steps_per_epoch=10, warmup_epochs=-1)
    with pytest.raises(ConfigError, match="rho"):
        SAM(_model().parameters(), torch.optim.SGD, rho=0, lr=0.1)
