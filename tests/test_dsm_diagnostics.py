"""DSM's diagnostics and variants on a tiny X3D: the gradient probe, the unscaled g,
the projection head's effect on the `figure` weights, and the released code's BN rule."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench.config import load_config
from bench.data import build_dataset
from bench.data.clips import model_input
from bench.engine import model_from_config, optimizer_from_config, stepper_from_config
from bench.losses import Term, build_loss
from bench.losses.dsm import dsc_figure, effective_pairs, ib_trace
from bench.losses.term_grads import GradientProbe
from bench.models import build_model
from bench.optim import build_optimizer
from bench.search.results import model_metrics
from bench.search.run import TrialRecord
from bench.search.spaces import load_study
from bench.search.trainable import trial_epochs
from bench.step import Stepper

torch.set_num_threads(2)

COUNTS = [10] * 7
SHRINK = ["data.num_frames=4", "data.size=32", "model.dropout=0.0"]


def _batch(seed: int = 0, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, 32, 32, generator=g)  # (B, C, T, H, W)
    return x, torch.arange(n) % 3  # every class has positives


def _tiny(seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("hdf", num_frames=4, crop_size=32, preset="tiny", dropout=0.0, **kwargs)


def _stepper(model: torch.nn.Module, *, sam: bool, every: int = 1, **loss_options) -> Stepper:
    params = [p for p in model.parameters() if p.requires_grad]
    return Stepper(model=model, loss_fn=build_loss("dsm", class_counts=COUNTS, **loss_options),
                   optimizer=build_optimizer(params, lr=1e-3, sam=sam), params=params,
                   probe=GradientProbe(every))


def _lambdas(g: float, alpha: float = 10.0, beta: float = 0.1) -> tuple[float, float]:
    return alpha * g / (g + 1), beta / (g + 1)


# ---------------------------------------------------------------- the g DSM's scaling feeds on

@pytest.mark.parametrize("sam", [False, True])
@pytest.mark.parametrize("scaling_grad", ["scaled", "unscaled"])
def test_g_is_the_norm_of_its_objectives_gradient(sam: bool, scaling_grad: str) -> None:
    """g after a probed step = ||grad|| of the (un)scaled objective at w, computed the long way."""
    x, y = _batch()
    model = _tiny()
    reference = copy.deepcopy(model)
    stepper = _stepper(model, sam=sam, scaling_grad=scaling_grad, ib_weight=0.3)
    stepper.grad_norm = 2.5  # the previous step's g: the first pass's lambdas come from it

    logits, z = reference(x)  # the same point w, batch statistics as in training
    zn = F.normalize(z, dim=1)
    ce = F.cross_entropy(logits, y, label_smoothing=0.1)
    dsc, ib = dsc_figure(zn, y, tau=0.07, eta=0.2), ib_trace(zn)
    lam_ce, lam_sc = _lambdas(2.5) if scaling_grad == "scaled" else (1.0, 1.0)
    objective = lam_ce * ce + lam_sc * (dsc + 0.3 * ib)
    grads = torch.autograd.grad(objective, list(reference.parameters()), allow_unused=True)
    expected = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads if g is not None))

    stepper.step(x, y, probe=True)
    assert stepper.grad_norm == pytest.approx(expected, rel=1e-5)


def test_probe_shares_match_per_term_gradients_and_change_nothing() -> None:
    x, y = _batch(1)
    probed, plain = _tiny(), _tiny()
    reference = copy.deepcopy(probed)
    a, b = _stepper(probed, sam=True), _stepper(plain, sam=True)
    a.grad_norm = b.grad_norm = 4.0
    _, diag = a.step(x, y, probe=True)
    _, none = b.step(x, y, probe=False)
    assert none == {}
    for p, q in zip(probed.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(p, q)  # same update, same BN statistics

    # each term's gradient by its own forward and backward
    lam_ce, lam_sc = _lambdas(4.0)
    params = [p for p in reference.parameters() if p.requires_grad]

    def flat(term: str) -> torch.Tensor:
        logits, z = reference(x)
        zn = F.normalize(z, dim=1)
        value = {"ce": lambda: F.cross_entropy(logits, y, label_smoothing=0.1),
                 "dsc": lambda: dsc_figure(zn, y, tau=0.07, eta=0.2),
                 "ib": lambda: ib_trace(zn)}[term]()
        gs = torch.autograd.grad(value, params, allow_unused=True)
        return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).double()
                          for g, p in zip(gs, params)])

    g = {t: flat(t) for t in ("ce", "dsc", "ib")}
    weights = {"ce": lam_ce, "dsc": lam_sc, "ib": lam_sc * 0.1}
    total = float(sum(w * g[t] for t, w in weights.items()).norm())
    for t, w in weights.items():
        assert diag[f"grad_share_{t}"] == pytest.approx(w * float(g[t].norm()) / total, rel=1e-4)
    cos = float(g["dsc"] @ g["ce"] / (g["dsc"].norm() * g["ce"].norm()))
    assert diag["grad_cos_dsc"] == pytest.approx(cos, rel=1e-3, abs=1e-5)
    assert 0 < diag["grad_share_dsc"] < diag["grad_share_ce"]


def test_unscaled_estimate_between_probes_follows_the_scaled_norm() -> None:
    """Exact when the per-term gradients keep their sizes and angles up to a common scale."""
    gen = torch.Generator().manual_seed(0)
    vecs = torch.randn(3, 50, generator=gen, dtype=torch.float64)  # g_ce, g_dsc, g_ib
    probe = GradientProbe(10)
    probe.names, probe.gram = ["ce", "dsc", "ib"], vecs @ vecs.T
    later = 0.37 * vecs  # a later step: same geometry, smaller gradients
    w, u = [6.0, 0.02, -0.01], [1.0, 1.0, -0.5]  # that step's lambdas differ from the probe's
    terms = {k: Term(torch.tensor(0.0), wk, uk) for k, wk, uk in zip(probe.names, w, u)}
    scaled = float((torch.tensor(w, dtype=torch.float64) @ later).norm())
    expected = float((torch.tensor(u, dtype=torch.float64) @ later).norm())
    assert probe.unscaled_norm(scaled, terms) == pytest.approx(expected, rel=1e-12)

    restored = GradientProbe(10)  # the state a checkpoint carries: plain lists
    restored.load_state_dict(copy.deepcopy(probe.state_dict()))
    assert restored.unscaled_norm(scaled, terms) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(RuntimeError, match="diag_every"):
        GradientProbe(0).unscaled_norm(scaled, terms)
    assert [GradientProbe(3).due(i) for i in range(7)] == [True, False, False, True, False,
                                                              False, True]
    assert not any(GradientProbe(0).due(i) for i in range(5))


# ---------------------------------------------------------------- features: pooled | projection

def test_projection_spreads_the_figure_weights_over_more_pairs() -> None:
    ds = build_dataset("synthetic", split="train", preset="ci", num_frames=4, size=32,
                       augment=False, seed=0)
    clips = torch.stack([ds[i][0] for i in range(32)])  # (32, 4, 32, 32, 3) uint8 real clips
    x = model_input(clips, torch.device("cpu"))  # (32, 3, 4, 32, 32)
    pairs = {}
    for projection in (False, True):
        model = _tiny(projection=projection).train()
        with torch.no_grad():
            _, z = model(x)
        if not projection:
            assert (z >= 0).all()  # post-ReLU pooling: why the weights collapse
        pairs[projection] = effective_pairs(F.normalize(z, dim=1), tau=0.07, eta=0.2)
    assert pairs[False].mean() < 1.1  # one pair per anchor
    assert pairs[True].mean() > 1.5 and pairs[True].max() > 3.0
    # the classifier still reads the pooled features: the head changes no logit
    with_head, without = _tiny(projection=True).eval(), _tiny(projection=False).eval()
    with torch.no_grad():
        assert torch.equal(with_head(x[:4])[0], without(x[:4])[0])


def test_projection_head_is_trained_only_through_dsm() -> None:
    x, y = _batch()
    model = _tiny(projection=True)
    logits, z = model(x)
    F.cross_entropy(logits, y).backward(retain_graph=True)
    assert all(p.grad is None for p in model.head.parameters())
    build_loss("dsm", class_counts=COUNTS)(logits, z, y).total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.parameters())


# ---------------------------------------------------------------- the released code's SAM step

@pytest.mark.parametrize("method,passes", [("hdf", 1), ("hdf_released", 2)])
def test_bn_statistics_move_once_or_as_two_forward_passes(method: str, passes: int) -> None:
    cfg = load_config(method=method, overrides=SHRINK)
    torch.manual_seed(0)
    model = model_from_config(cfg).train()
    params = [p for p in model.parameters() if p.requires_grad]
    stepper = stepper_from_config(
        cfg, model=model, loss_fn=build_loss(cfg.loss.name, class_counts=COUNTS, **cfg.loss.options),
        optimizer=optimizer_from_config(cfg, params), params=params)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(_module, inputs):  # batch statistics each forward pass normalises with
        h = inputs[0].detach().transpose(0, 1).flatten(1)  # (C, B*T*H*W)
        seen.append((h.mean(1), h.var(1, unbiased=True)))

    bn.register_forward_pre_hook(record)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    tracked = int(bn.num_batches_tracked)
    stepper.step(*_batch(2), probe=True)
    assert len(seen) == 2  # SAM: two forward passes
    m = bn.momentum
    for batch_mean, batch_var in seen[:passes]:
        mean, var = (1 - m) * mean + m * batch_mean, (1 - m) * var + m * batch_var
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, var, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked) == tracked + passes
    assert not torch.allclose(seen[0][0], seen[1][0])  # the passes differ: the test can fail


def test_released_preset_choices() -> None:
    cfg = load_config(method="hdf_released")
    loss = build_loss(cfg.loss.name, class_counts=COUNTS, **cfg.loss.options)
    assert not loss.uses_grad_norm and (loss.alpha, loss.beta) == (10.0, 0.1)
    assert (loss.dsc_variant, loss.ib_weight, loss.ib_cov) == ("code", -0.5, "sample")
    assert cfg.optim.sam and cfg.optim.sam_bn_both_passes and cfg.optim.lr == 5e-4
    opt = optimizer_from_config(cfg, list(model_from_config(cfg).parameters()))
    assert [g["weight_decay"] for g in opt.param_groups] == [cfg.optim.weight_decay]
    default = load_config(method="hdf")  # the spec's choices stay the defaults
    assert not default.optim.sam_bn_both_passes and not default.optim.decay_all
    assert default.loss.options.get("scaling_grad", "scaled") == "scaled"


# ---------------------------------------------------------------- what a trial reports

def test_trial_reports_dsm_diagnostics_for_the_trials_table() -> None:
    study = load_study(Path(__file__).resolve().parents[1] / "search_spaces" / "smoke.yaml")
    cfg = load_config(method="hdf", overrides=[*SHRINK, "data.preset=ci", "train.epochs=1",
                                               "data.batch_size=8", "train.diag_every=4"])
    result, _ = next(trial_epochs(cfg, study))
    for key in ("train_ce", "train_dsc", "train_ib", "train_lambda_ce", "train_lambda_sc",
                "train_g", "train_grad_share_ce", "train_grad_share_dsc", "train_grad_share_ib"):
        assert math.isfinite(result[key]), key
    assert 0 < result["train_lambda_sc"] < 0.1 < result["train_lambda_ce"]
    rows = model_metrics(TrialRecord("t000", {}, pd.DataFrame([result]), "", None, Path(".")))
    train = rows[rows.split == "train"].set_index("metric").value
    assert train["lambda_sc"] == result["train_lambda_sc"] and train["loss"] == result["train_loss"]
