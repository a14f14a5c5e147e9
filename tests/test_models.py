"""X3D + DAM: DAM against a literal reading of its specification (docs/method.md), presets, per-stage switches."""
from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from bench.errors import ConfigError, UnknownNameError
from bench.models import MODELS, build_model
from bench.models import dam as dam_module
from bench.models.dam import DAM, dct_basis
from bench.models.x3d import PRESETS

torch.set_num_threads(2)

BRANCHES = [(True, True), (True, False), (False, True), (False, False)]


def reference_dam(dam: DAM, x: torch.Tensor) -> torch.Tensor:
    """DAM written out step by step as the spec reads: full C-channel DCT conv, explicit x_t and x_s."""
    b, c, t, h, w = x.shape
    x_t, x_s = x, x  # a switched-off branch contributes x
    if dam.temporal is not None:
        tg = dam.temporal
        frames = x.transpose(1, 2)  # (B, T, C, H, W): frames as channels of a 3D pool
        a = F.adaptive_avg_pool3d(frames, (t, 1, 1)).reshape(b, t, t)
        m = F.adaptive_max_pool3d(frames, (t, 1, 1)).reshape(b, t, t)
        d = ((a - a.mean(dim=2, keepdim=True)) ** 2).sum(dim=2, keepdim=True).sqrt()
        r = torch.zeros_like(a)
        r[:, :, 1:] = (a[:, :, 1:] - a[:, :, :-1]).abs()
        u = torch.sigmoid(tg.gamma * (tg.alpha * a + tg.beta * m) + tg.delta * d - r)
        u = torch.einsum("st,btk->bsk", tg.frame_mix.weight, u)
        wq, wk, wv = tg.qkv.weight.chunk(3)
        bq, bk, bv = tg.qkv.bias.chunk(3)
        q, k, v = u @ wq.T + bq, u @ wk.T + bk, u @ wv.T + bv
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(t), dim=-1) @ v
        g = torch.sigmoid(att.mean(dim=2))  # (B, T)
        x_t = x * g.view(b, 1, t, 1, 1).repeat(1, c, 1, h, w) + x
    if dam.frequency is not None:
        fg = dam.frequency
        weight = dct_basis(7)[:, None].repeat(1, c, 1, 1)  # same basis for every channel
        f = F.conv2d(x.mean(dim=2), weight, padding=3)  # (B, 49, H, W)
        spread = ((f - f.mean(dim=(2, 3), keepdim=True)) ** 2).sum(dim=(2, 3), keepdim=True).sqrt()
        n, a, b_, gamma, beta = (v.view(1, 49, 1, 1) for v in (fg.noise, fg.a, fg.b, fg.dyt_gamma, fg.dyt_beta))
        f_adv = f + n * a * torch.sign(f) + 0.05 * b_ * spread * torch.sign(f)
        f = (fg.al * f + fg.be * f_adv) / 2
        std = f.std(dim=1, keepdim=True)
        f = torch.tanh(fg.dyt_alpha / (std + 1e-6) * f) * gamma + beta
        q = F.conv2d(f, fg.to_map, padding=3)  # (B, 1, H, W)
        x_s = x * torch.sigmoid(q)[:, :, None].repeat(1, c, t, 1, 1) + x
    return (dam.w_t * x_t + dam.w_s * x_s) / 2


def _jiggle(module: torch.nn.Module) -> None:
    """Move every parameter off its init (b, delta start at 0 and would hide their terms)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))


# ---- DAM ----------------------------------------------------------------------------


@pytest.mark.parametrize("temporal,frequency", BRANCHES)
def test_dam_keeps_shape(temporal: bool, frequency: bool) -> None:
    x = torch.randn(2, 16, 8, 10, 12)
    y = DAM(16, 8, temporal=temporal, frequency=frequency)(x)
    assert y.shape == x.shape


@pytest.mark.parametrize("temporal,frequency", BRANCHES)
@pytest.mark.parametrize("channels,frames", [(16, 8), (12, 8), (24, 4)])
def test_dam_matches_spec_reference(temporal: bool, frequency: bool, channels: int, frames: int) -> None:
    # (12, 8): channel bins overlap, so the pooling order must be exact, not just "reshape".
    torch.manual_seed(0)
    dam = DAM(channels, frames, temporal=temporal, frequency=frequency)
    _jiggle(dam)
    x = torch.randn(2, channels, frames, 9, 7)
    torch.testing.assert_close(dam(x), reference_dam(dam, x), rtol=1e-4, atol=1e-5)


def test_dam_with_both_branches_off_only_scales_by_the_fusion_weights() -> None:
    dam = DAM(8, 4, temporal=False, frequency=False)
    x = torch.randn(2, 8, 4, 5, 5)
    torch.testing.assert_close(dam(x), x * (0.8 + 0.3) / 2)
    assert [n for n, _ in dam.named_parameters()] == ["w_t", "w_s"]


@pytest.mark.parametrize("temporal,frequency", BRANCHES[:3])
def test_dam_gradients_reach_input_and_every_parameter(temporal: bool, frequency: bool) -> None:
    torch.manual_seed(0)
    dam = DAM(16, 8, temporal=temporal, frequency=frequency)
    x = torch.randn(2, 16, 8, 6, 6, requires_grad=True)
    (dam(x) ** 2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in dam.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_dam_switched_off_branch_has_no_parameters() -> None:
    names = {n.split(".")[0] for n, _ in DAM(16, 8, temporal=False).named_parameters()}
    assert "temporal" not in names and "frequency" in names
    names = {n.split(".")[0] for n, _ in DAM(16, 8, frequency=False).named_parameters()}
    assert "frequency" not in names and "temporal" in names


def test_dam_stays_finite_on_a_1x1_map_and_a_constant_clip() -> None:
    # crop 32 leaves a 1x1 map after stage 4; a constant clip has zero spread everywhere.
    for x in (torch.randn(2, 16, 8, 1, 1), torch.ones(2, 16, 8, 4, 4)):
        x.requires_grad_(True)
        dam = DAM(16, 8)
        dam(x).sum().backward()
        assert torch.isfinite(x.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in dam.parameters())


def test_dam_rejects_a_clip_of_another_length_and_an_even_dct_size() -> None:
    with pytest.raises(ConfigError, match="num_frames"):
        DAM(16, 8)(torch.randn(1, 16, 4, 6, 6))
    with pytest.raises(ConfigError, match="dct_size"):
        DAM(16, 8, dct_size=6)


def test_dam_source_uses_broadcasting_not_copies() -> None:
    source = inspect.getsource(dam_module)
    for copy in (".repeat(", ".expand(", ".expand_as(", "repeat_interleave", ".tile(", "torch.tile"):
        assert copy not in source, f"dam.py materialises a copy with {copy}"


def test_dct_basis_is_orthonormal_and_fixed() -> None:
    basis = dct_basis(7).reshape(49, 49)
    torch.testing.assert_close(basis @ basis.T, torch.eye(49), atol=1e-5, rtol=0)
    torch.testing.assert_close(basis[0], torch.full((49,), 1 / 7))  # DC filter is a flat average
    dam = DAM(8, 4)
    assert all("dct" not in n for n, _ in dam.named_parameters())
    assert "frequency.dct" not in dam.state_dict()


# ---- X3D ----------------------------------------------------------------------------


def _count_dams(model: torch.nn.Module) -> int:
    return sum(isinstance(m, DAM) for m in model.modules())


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("name", ["x3d", "hdf"])
def test_every_preset_builds_and_returns_logits_and_features(name: str, preset: str) -> None:
    batch, frames = (2, 8) if preset == "tiny" else (1, 4)
    model = build_model(name, preset=preset, num_frames=frames, crop_size=64).eval()
    with torch.no_grad():
        logits, z = model(torch.randn(batch, 3, frames, 64, 64))
    assert logits.shape == (batch, 7)
    assert z.shape == (batch, model.feature_dim)
    assert model.feature_dim == PRESETS[preset].head_dim_out
    assert _count_dams(model) == (4 if name == "hdf" else 0)


def test_plain_x3d_computes_what_pytorchvideo_builds() -> None:
    from pytorchvideo.models.x3d import create_x3d

    torch.manual_seed(0)
    ours = build_model("x3d", num_frames=4, crop_size=64).eval()
    torch.manual_seed(0)
    reference = create_x3d(
        input_clip_length=4, input_crop_size=64, model_num_class=7, width_factor=1.0, depth_factor=1.0,
        head_dim_out=128, head_activation=None,
    ).eval()
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], reference(x))


@pytest.mark.parametrize("crop_size", [32, 64, 100, 112])
def test_head_pool_is_global_for_the_built_crop_size(crop_size: int) -> None:
    model = build_model("x3d", num_frames=4, crop_size=crop_size, num_classes=3).eval()
    with torch.no_grad():
        h = model.stem(torch.randn(1, 3, 4, crop_size, crop_size))
        for stage in model.stages:
            h = stage(h)
        pooled = model.head_pool(h)
    assert h.shape[2:] == (4, math.ceil(crop_size / 32), math.ceil(crop_size / 32))
    assert pooled.shape[2:] == (1, 1, 1)
    with torch.no_grad():
        logits, z = model(torch.randn(2, 3, 4, crop_size, crop_size))
    assert logits.shape == (2, 3) and z.shape == (2, model.feature_dim)


@pytest.mark.parametrize(
    "dam_stages", [(False,) * 4, (True,) * 4, (False, False, True, True), (True, False, True, False)]
)
def test_dam_stages_insert_dam_exactly_where_asked(dam_stages: tuple[bool, ...]) -> None:
    model = MODELS.build("x3d", dam_stages=list(dam_stages))
    assert _count_dams(model) == sum(dam_stages)
    assert [isinstance(d, DAM) for d in model.dams] == list(dam_stages)
    channels = [s.res_blocks[-1].branch2.conv_c.out_channels for s in model.stages]
    assert [d.channels for d in model.dams if isinstance(d, DAM)] == [
        c for c, on in zip(channels, dam_stages) if on
    ]


def test_dam_branch_switches_reach_every_inserted_dam() -> None:
    model = MODELS.build("hdf", dam_temporal=False)
    dams = [d for d in model.dams if isinstance(d, DAM)]
    assert len(dams) == 4
    assert all(d.temporal is None and d.frequency is not None for d in dams)


def test_hdf_trains_end_to_end() -> None:
    torch.manual_seed(0)
    model = build_model("hdf", num_frames=4, crop_size=32)
    logits, z = model(torch.randn(2, 3, 4, 32, 32))
    (F.cross_entropy(logits, torch.tensor([0, 1])) + z.pow(2).mean()).backward()
    for i, dam in enumerate(model.dams):
        assert all(p.grad is not None for p in dam.parameters()), f"DAM {i} got no gradient"


def test_unknown_preset_lists_the_known_presets() -> None:
    with pytest.raises(UnknownNameError) as err:
        build_model("x3d", preset="huge")
    for name in PRESETS:
        assert f"{name}" in str(err.value).split("Known:")[1]


@pytest.mark.parametrize(
    "bad",
    [dict(dam_stages=[True] * 3), dict(dam_stages="1111"), dict(dam_stages=[1, 0, 2, 0]), dict(crop_size=16),
     dict(num_frames=0), dict(dropout=1.0)],
)
def test_bad_model_options_raise_config_errors(bad: dict) -> None:
    with pytest.raises(ConfigError):
        build_model("x3d", **bad)


def test_builders_check_option_names() -> None:
    assert {"x3d", "hdf"} <= set(MODELS.names())
    with pytest.raises(ConfigError, match="dam_stages"):
        build_model("hdf", dam_stage=[True] * 4)
    with pytest.raises(UnknownNameError):
        build_model("x3e")
