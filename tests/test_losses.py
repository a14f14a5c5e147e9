"""Losses: DSM against independent reference formulas, baselines against CE."""
from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.losses import LOSSES, LossOutput, build_loss
from bench.losses.dsm import dsc_code, dsc_figure, effective_pairs, ib_trace

torch.set_num_threads(2)
getcontext().prec = 50

K = 3
COUNTS = [8, 5, 2]


# ---------------------------------------------------------------- references
# Written from the DSM definition (docs/method.md) with plain loops; Decimal keeps exp(s / tau) and
# the tiny robust weights exact enough without any log-space trick.

def _ref_dsc(z: np.ndarray, y: list[int], tau: float, eta: float, variant: str) -> float:
    n = len(y)
    zn = [row / np.linalg.norm(row) for row in z]
    s = [[Decimal(float(np.dot(zn[i], zn[j]))) / Decimal(tau) for j in range(n)] for i in range(n)]
    eta_d = Decimal(eta)
    losses = []
    for i in range(n):
        pos = [p for p in range(n) if p != i and y[p] == y[i]]
        if not pos:
            continue
        if variant == "figure":
            w = [(-(s[i][a] - eta_d) ** 2 / (2 * eta_d**2)).exp() for a in range(n)]
            mean_w = sum(w[b] for b in range(n) if b != i) / (n - 1)
            den = sum(w[a] / mean_w * s[i][a].exp() for a in range(n) if a != i)
            terms = [(s[i][p].exp() / den).ln() for p in pos]
        else:
            mx = max(s[i])
            sh = [s[i][a] - mx for a in range(n)]
            w = [(-(v - eta_d) ** 2 / (2 * eta_d**2)).exp() for v in sh]
            w = [v / sum(w) for v in w]
            lse = sum(v.exp() for v in sh).ln()
            terms = [w[p] * (sh[p] - lse) for p in pos]
        losses.append(-sum(terms) / len(pos))
    return float(sum(losses) / len(losses)) if losses else 0.0


def _ref_ib(z: np.ndarray) -> float:
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    return float(np.trace(np.cov(zn.T, bias=True)))


def _ref_ce(logits: np.ndarray, y: list[int], ls: float) -> float:
    total = 0.0
    for row, t in zip(logits.tolist(), y):
        m = max(row)
        logp = [v - m - math.log(sum(math.exp(u - m) for u in row)) for v in row]
        total += -(1 - ls) * logp[t] - ls * sum(logp) / len(row)
    return total / len(y)


# 5 samples, 2-D, different norms; label 2 has no positive (anchor skipped)
Z = np.array([[2.0, 0.0], [0.8, 0.6], [0.0, 3.0], [-0.3, 0.4], [1.0, -1.0]])
Y = [0, 0, 1, 1, 2]
LOGITS = np.array([[1.0, 0.2, -0.5], [0.3, 0.1, 0.0], [-1.0, 2.0, 0.5],
                   [0.0, 0.0, 0.0], [0.4, -0.2, 1.5]])


@pytest.mark.parametrize("variant", ["figure", "code"])
@pytest.mark.parametrize("tau,eta", [(0.5, 0.3), (0.07, 0.2)])
def test_dsm_matches_reference(variant: str, tau: float, eta: float) -> None:
    alpha, beta, ibw, g, ls = 10.0, 0.1, 0.3, 3.0, 0.1
    loss = build_loss("dsm", class_counts=COUNTS, tau=tau, eta=eta, dsc_variant=variant,
                      ib_weight=ibw, alpha=alpha, beta=beta, label_smoothing=ls)
    logits = torch.tensor(LOGITS, dtype=torch.float32)
    z = torch.tensor(Z, dtype=torch.float32)
    out = loss(logits, z, torch.tensor(Y), grad_norm=g)
    dsc, ib, ce = _ref_dsc(Z, Y, tau, eta, variant), _ref_ib(Z), _ref_ce(LOGITS, Y, ls)
    expected = alpha * g / (g + 1) * ce + beta / (g + 1) * (dsc + ibw * ib)
    assert float(out.parts["dsc"]) == pytest.approx(dsc, rel=1e-4, abs=1e-6)
    assert float(out.parts["ib"]) == pytest.approx(ib, rel=1e-5)
    assert float(out.parts["ce"]) == pytest.approx(ce, rel=1e-5)
    assert out.total.item() == pytest.approx(expected, rel=1e-4)


def test_reference_case_is_not_trivial() -> None:
    # the two variants and the two temperatures must give distinct L_DSC values,
    # otherwise the reference test above could pass on a constant
    vals = {(v, t): _ref_dsc(Z, Y, t, 0.2, v) for v in ("figure", "code") for t in (0.5, 0.07)}
    assert len({round(x, 6) for x in vals.values()}) == 4
    assert all(abs(vals[("figure", t)]) > 0.1 for t in (0.5, 0.07))


def test_adaptive_and_fixed_lambdas() -> None:
    logits, z, y = torch.randn(6, K), torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    adaptive = build_loss("dsm", class_counts=COUNTS, alpha=4.0, beta=0.5)
    assert adaptive.uses_grad_norm
    parts = adaptive(logits, z, y, grad_norm=0.25).parts
    assert parts["lambda_ce"] == pytest.approx(4.0 * 0.25 / 1.25)
    assert parts["lambda_sc"] == pytest.approx(0.5 / 1.25)
    first = adaptive(logits, z, y).parts  # no norm yet: g = 1
    assert (first["lambda_ce"], first["lambda_sc"]) == pytest.approx((2.0, 0.25))
    fixed = build_loss("dsm", class_counts=COUNTS, alpha=4.0, beta=0.5, adaptive_scaling=False)
    assert not fixed.uses_grad_norm
    parts = fixed(logits, z, y, grad_norm=0.25).parts
    assert (parts["lambda_ce"], parts["lambda_sc"]) == (4.0, 0.5)


@pytest.mark.parametrize("option,value,hint", [("scaling_grad", "unscale", "unscaled"),
                                               ("features", "projections", "projection"),
                                               ("ib_cov", "samples", "sample"),
                                               ("dsc_variant", "figures", "figure")])
def test_dsm_choices_suggest_the_nearest(option: str, value: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=f"'{option}' = '{value}' is unknown. "
                                          f"Did you mean '{hint}'\\? Allowed: "):
        build_loss("dsm", class_counts=COUNTS, **{option: value})


def test_ib_covariance_population_and_sample() -> None:
    zn = F.normalize(torch.tensor(Z, dtype=torch.float64), dim=1)
    assert ib_trace(zn).item() == pytest.approx(_ref_ib(Z), rel=1e-12)
    sample = float(np.trace(np.cov(zn.numpy().T, ddof=1)))
    assert ib_trace(zn, cov="sample").item() == pytest.approx(sample, rel=1e-12)
    assert ib_trace(zn[:1], cov="sample").item() == 0.0
    out = build_loss("dsm", class_counts=COUNTS, ib_cov="sample")(
        torch.tensor(LOGITS, dtype=torch.float32), torch.tensor(Z, dtype=torch.float32),
        torch.tensor(Y))
    assert float(out.parts["ib"]) == pytest.approx(sample, rel=1e-5)


def test_dsm_terms_add_up_to_the_total() -> None:
    logits, z, y = torch.randn(6, K), torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    for options in (dict(), dict(adaptive_scaling=False, ib_weight=-0.5)):
        out = build_loss("dsm", class_counts=COUNTS, **options)(logits, z, y, grad_norm=3.0)
        assert list(out.terms) == ["ce", "dsc", "ib"]
        rebuilt = sum(t.weight * t.value for t in out.terms.values())
        assert rebuilt.item() == pytest.approx(out.total.item(), rel=1e-6)
        ib_w = options.get("ib_weight", 0.1)
        assert [t.unscaled for t in out.terms.values()] == [1.0, 1.0, ib_w]
        assert out.parts["lambda_sc"] == out.terms["dsc"].weight
    assert build_loss("ce", class_counts=COUNTS)(logits, z, y).terms is None


def test_effective_pairs_count_the_pairs_the_weights_rest_on() -> None:
    n = 6
    assert effective_pairs(torch.ones(n, 4) / 2, tau=0.07, eta=0.2).tolist() == \
        pytest.approx([n - 1] * n, rel=1e-3)  # identical features: all pairs weigh alike
    g = torch.Generator().manual_seed(0)
    positive = F.normalize(torch.rand(16, 16, generator=g), dim=1)  # non-negative: cosines > 0.5
    assert effective_pairs(positive, tau=0.07, eta=0.2).mean() < 1.1
    spread = F.normalize(torch.randn(16, 8, generator=g), dim=1)
    assert effective_pairs(spread, tau=1.0, eta=1.0).mean() > 3.0  # a wide kernel
    assert effective_pairs(torch.ones(1, 4), tau=0.07, eta=0.2).tolist() == [0.0]


def test_ib_weight_is_signed() -> None:
    logits, z, y = torch.randn(6, K), torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    plus = build_loss("dsm", class_counts=COUNTS, ib_weight=0.4)(logits, z, y, grad_norm=1.0)
    minus = build_loss("dsm", class_counts=COUNTS, ib_weight=-0.4)(logits, z, y, grad_norm=1.0)
    lam_sc = plus.parts["lambda_sc"]
    diff = plus.total.item() - minus.total.item()
    assert diff == pytest.approx(2 * lam_sc * 0.4 * float(plus.parts["ib"]), rel=1e-4)
    assert float(plus.parts["ib"]) > 0


def _degenerate(case: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    if case == "one_class":
        return torch.randn(6, 8, generator=g), torch.zeros(6, dtype=torch.long)
    if case == "one_per_class":
        return torch.randn(3, 8, generator=g), torch.arange(3)
    if case == "identical":
        return torch.ones(5, 8), torch.tensor([0, 0, 1, 1, 2])
    if case == "duplicated_pairs":
        z = torch.randn(3, 8, generator=g)
        return torch.cat([z, z]), torch.tensor([0, 1, 2, 0, 1, 2])
    if case == "batch_of_2":
        return torch.randn(2, 8, generator=g), torch.tensor([1, 1])
    if case == "batch_of_1":
        return torch.randn(1, 8, generator=g), torch.tensor([2])
    raise AssertionError(case)


CASES = ["one_class", "one_per_class", "identical", "duplicated_pairs", "batch_of_2", "batch_of_1"]


@pytest.mark.parametrize("variant", ["figure", "code"])
@pytest.mark.parametrize("case", CASES)
def test_dsm_finite_on_degenerate_batches(variant: str, case: str) -> None:
    z, y = _degenerate(case)
    z.requires_grad_(True)
    logits = torch.randn(len(y), K, requires_grad=True)
    out = build_loss("dsm", class_counts=COUNTS, dsc_variant=variant)(logits, z, y)
    out.total.backward()
    assert torch.isfinite(out.total)
    assert all(math.isfinite(float(v)) for v in out.parts.values())
    assert torch.isfinite(z.grad).all() and torch.isfinite(logits.grad).all()
    if case in ("one_per_class", "batch_of_1"):
        assert float(out.parts["dsc"]) == 0.0  # no anchor has a positive


def test_figure_variant_is_bounded_at_small_tau() -> None:
    tau, n = 0.07, 16
    bound = 2 / tau + math.log(n)
    g = torch.Generator().manual_seed(0)
    for dim in (2, 3, 8, 64):
        for _ in range(10):
            zn = F.normalize(torch.randn(n, dim, generator=g), dim=1).requires_grad_(True)
            y = torch.randint(0, 3, (n,), generator=g)
            val = dsc_figure(zn, y, tau=tau, eta=0.2)
            val.backward()
            assert torch.isfinite(val) and abs(val.item()) <= bound
            assert torch.isfinite(zn.grad).all()


def test_code_variant_is_nearly_zero_on_random_features() -> None:
    # The spec's observation (~1e-75 at n=12): after the max shift the weights sit
    # on self, so positives contribute almost nothing. Faithful, not a bug.
    g = torch.Generator().manual_seed(0)
    zn = F.normalize(torch.randn(12, 64, generator=g, dtype=torch.float64), dim=1)
    y = torch.randint(0, 3, (12,), generator=g)
    assert 0 <= dsc_code(zn, y, tau=0.07, eta=0.2).item() < 1e-30
    assert dsc_figure(zn, y, tau=0.07, eta=0.2).item() > 1.0


# ---------------------------------------------------------------- every loss

BAD_OPTIONS = {
    "ce": [dict(label_smoothing=1.0), dict(label_smoothing=-0.1)],
    "focal": [dict(gamma=-1.0), dict(label_smoothing=1.5)],
    "logit_adjust": [dict(tau=-1.0), dict(label_smoothing=1.0)],
    "class_balanced": [dict(beta=1.0), dict(beta=-0.1)],
    "dsm": [dict(tau=0.0), dict(eta=-0.2), dict(dsc_variant="paper"), dict(alpha=0.0),
            dict(beta=-1.0), dict(ib_weight=float("nan")), dict(scaling_grad="unscale"),
            dict(features="projections"), dict(ib_cov="biased")],
}


def test_every_loss_has_bad_option_cases() -> None:
    assert sorted(BAD_OPTIONS) == LOSSES.names()


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_finite_and_differentiable(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, K, generator=g).requires_grad_(True)
    z = torch.randn(8, 16, generator=g).requires_grad_(True)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 0])
    out = build_loss(name, class_counts=COUNTS)(logits, z, y, grad_norm=2.0)
    assert isinstance(out, LossOutput) and out.total.ndim == 0
    out.total.backward()
    assert torch.isfinite(out.total) and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    assert all(isinstance(v, (float, torch.Tensor)) and math.isfinite(float(v)) for v in out.parts.values())


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_with_zero_count_class(name: str) -> None:
    logits = torch.randn(6, K, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2])  # class 2 appears although its count is 0
    out = build_loss(name, class_counts=[10, 3, 0])(logits, torch.randn(6, 4), y)
    out.total.backward()
    assert torch.isfinite(out.total) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", LOSSES.names())
def test_bad_options_raise_config_error(name: str) -> None:
    for bad in BAD_OPTIONS[name]:
        key = next(iter(bad))
        with pytest.raises(ConfigError, match=key):
            build_loss(name, class_counts=COUNTS, **bad)
    with pytest.raises(ConfigError, match="no option"):
        build_loss(name, class_counts=COUNTS, temperatur=0.1)
    with pytest.raises(ConfigError, match="class_counts"):
        build_loss(name, class_counts=[3, -1, 2])


# ---------------------------------------------------------------- baselines

def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(10, K, generator=g) * 3, torch.randn(10, 4, generator=g), \
        torch.randint(0, K, (10,), generator=g)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_focal_gamma_zero_is_ce(ls: float) -> None:
    logits, z, y = _data()
    out = build_loss("focal", class_counts=COUNTS, gamma=0.0, label_smoothing=ls)(logits, z, y)
    assert out.total.item() == pytest.approx(_ref_ce(logits.numpy(), y.tolist(), ls), rel=1e-5)


def test_focal_matches_formula() -> None:
    logits, z, y = _data(1)
    out = build_loss("focal", class_counts=COUNTS, gamma=2.0)(logits, z, y)
    p = torch.softmax(logits.double(), 1)[torch.arange(10), y].numpy()
    assert out.total.item() == pytest.approx(float(np.mean(-(1 - p) ** 2 * np.log(p))), rel=1e-4)


def test_logit_adjust_uniform_prior_is_ce() -> None:
    logits, z, y = _data(2)
    out = build_loss("logit_adjust", class_counts=[7, 7, 7])(logits, z, y)
    assert out.total.item() == pytest.approx(_ref_ce(logits.numpy(), y.tolist(), 0.1), rel=1e-5)


def test_logit_adjust_adds_scaled_log_prior() -> None:
    logits, z, y = _data(3)
    counts, tau = [6, 3, 1], 1.5
    out = build_loss("logit_adjust", class_counts=counts, tau=tau, label_smoothing=0.0)(logits, z, y)
    shifted = logits.numpy() + tau * np.log(np.array(counts) / 10.0)
    assert out.total.item() == pytest.approx(_ref_ce(shifted, y.tolist(), 0.0), rel=1e-5)


def test_class_balanced_beta_zero_is_ce() -> None:
    logits, z, y = _data(4)
    out = build_loss("class_balanced", class_counts=[100, 10, 1], beta=0.0)(logits, z, y)
    assert out.total.item() == pytest.approx(_ref_ce(logits.numpy(), y.tolist(), 0.1), rel=1e-5)


def test_class_balanced_weights_follow_effective_number() -> None:
    logits, z, y = _data(5)
    counts, beta = [20, 5, 1], 0.9
    w = np.array([(1 - beta) / (1 - beta**n) for n in counts])
    w = w / w.sum() * 3
    ce_i = [_ref_ce(logits[i : i + 1].numpy(), [int(y[i])], 0.0) for i in range(10)]
    expected = float(np.mean([w[int(t)] * c for t, c in zip(y, ce_i)]))
    out = build_loss("class_balanced", class_counts=counts, beta=beta,
                     label_smoothing=0.0)(logits, z, y)
    assert out.total.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["logit_adjust", "class_balanced"])
def test_class_count_mismatch_is_config_error(name: str) -> None:
    logits, z, y = _data()
    with pytest.raises(ConfigError, match="class_counts"):
        build_loss(name, class_counts=[1, 2, 3, 4])(logits, z, y)


def test_dsm_similarities_stay_float32_under_autocast() -> None:
    g = torch.Generator().manual_seed(3)
    logits, z = torch.randn(8, K, generator=g), torch.randn(8, 32, generator=g)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    loss = build_loss("dsm", class_counts=COUNTS)
    plain = loss(logits, z, y).parts["dsc"].item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(logits, z, y).parts["dsc"].item()
    assert mixed == pytest.approx(plain, rel=1e-5)
