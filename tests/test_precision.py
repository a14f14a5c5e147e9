"""train.precision: resolution per device, fp16 loss scaling through SAM's two passes, bf16 training."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from bench import train as train_cli
from bench.config import PRECISIONS
from bench.engine import resolve_precision
from bench.errors import ConfigError
from bench.losses import build_loss
from bench.losses.term_grads import GradientProbe
from bench.optim import build_optimizer
from bench.step import Stepper

CPU = torch.device("cpu")
SMALL = ["--set", "data.preset=ci", "--set", "data.num_frames=4", "--set", "data.size=32",
         "--set", "train.epochs=1", "--set", "data.batch_size=8", "--quiet"]


@pytest.mark.parametrize("name,expected", [("auto", "fp32"), ("fp32", "fp32"), ("bf16", "bf16")])
def test_precision_on_cpu(name: str, expected: str) -> None:
    assert resolve_precision(name, CPU) == expected


@pytest.mark.parametrize("name,needle", [("fp16", "fp16 needs a CUDA device"),
                                         ("fp8", "must be one of auto, bf16, fp16, fp32")])
def test_precision_refusals_on_cpu(name: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve_precision(name, CPU)


def test_every_precision_name_is_checked() -> None:
    assert set(PRECISIONS) == {"auto", "bf16", "fp16", "fp32"}


class _Net(nn.Module):
    """A model with the (logits, features) interface and a BatchNorm layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.head = nn.Linear(8, 7)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.body(x)
        return self.head(z), z


class _Poison(nn.Module):
    """DSM whose n-th call returns an infinite loss (an fp16 overflow, made to order)."""

    def __init__(self, bad_call: int) -> None:
        super().__init__()
        self.inner = build_loss("dsm", class_counts=[3] * 7)
        self.uses_grad_norm, self.scaling_grad = True, "scaled"
        self.calls, self.bad_call = 0, bad_call

    def forward(self, logits, z, y, *, grad_norm=None):
        out = self.inner(logits, z, y, grad_norm=grad_norm)
        self.calls += 1
        if self.calls == self.bad_call:
            out = out._replace(total=out.total * float("inf"))
        return out


def _stepper(loss: nn.Module, precision: str) -> tuple[Stepper, _Net]:
    net = _Net()
    params = list(net.parameters())
    opt = build_optimizer(params, name="sgd", lr=0.1, weight_decay=0.0, sam=True, rho=0.05)
    return Stepper(model=net, loss_fn=loss, optimizer=opt, params=params,
                   probe=GradientProbe(0), precision=precision), net


@pytest.mark.parametrize("bad_pass", [1, 2])
def test_fp16_skips_a_sam_step_that_overflowed_in_either_pass(bad_pass: int) -> None:
    """The scaler sees both passes: an inf in the ascent's or the descent's gradient
    leaves the weights exactly as they were, lowers the scale, and keeps g finite."""
    x, y = torch.randn(12, 6), torch.arange(12) % 7
    stepper, net = _stepper(_Poison(bad_call=2 + bad_pass), "fp16")  # step 2 overflows
    stepper.step(x, y, check=False)  # a clean step
    before = [p.detach().clone() for p in net.parameters()]
    scale, g = stepper.scaler.get_scale(), float(stepper.grad_norm)
    stepper.step(x, y, check=False)
    for p, b in zip(net.parameters(), before):
        assert torch.equal(p.detach(), b)
    assert stepper.scaler.get_scale() < scale
    assert torch.isfinite(torch.as_tensor(stepper.grad_norm)) and float(stepper.grad_norm) > 0
    if bad_pass == 2:  # the ascent's gradient was fine: g is this step's
        assert float(stepper.grad_norm) != g
    stepper.step(x, y, check=False)  # and training goes on
    assert any(not torch.equal(p.detach(), b) for p, b in zip(net.parameters(), before))


def test_fp16_sam_step_matches_fp32_when_nothing_overflows() -> None:
    x, y = torch.randn(12, 6), torch.arange(12) % 7
    a, net_a = _stepper(build_loss("dsm", class_counts=[3] * 7), "fp32")
    b, net_b = _stepper(build_loss("dsm", class_counts=[3] * 7), "fp16")
    b.scaler = torch.amp.GradScaler("cpu", init_scale=16.0)  # no overflow: every step is taken
    for _ in range(3):
        a.step(x, y)
        b.step(x, y)
    for p, q in zip(net_a.parameters(), net_b.parameters()):
        torch.testing.assert_close(p, q, rtol=2e-2, atol=2e-3)  # fp16 forward, same update


@pytest.mark.parametrize("option", ["train.precision=bf16", "train.channels_last=true"])
def test_bf16_and_channels_last_train_and_score(tmp_path: Path, option: str) -> None:
    with pytest.raises(SystemExit) as e:
        train_cli.run_main(train_cli.main, [*SMALL, "--method", "hdf", "--set", option,
                                            "--out", str(tmp_path), "--name", "bf"])
    assert e.value.code == 0
    m = pd.read_csv(tmp_path / "bf" / "metrics.csv")
    assert m[(m.split == "train") & (m.metric == "loss")].value.notna().all()
    assert 0.0 <= m[(m.split == "test") & (m.metric == "war")].value.item() <= 1.0
