"""DAM: the Time-Frequency Distributional Attention Module of HDF (docs/method.md).

HDF, "Learning from Heterogeneity: Generalizing Dynamic Facial Expression
Recognition via Distributionally Robust Optimization", ACM MM 2025
(arXiv 2507.15765). DAM sits after every X3D stage and re-weights frames
(temporal branch) and pixels (frequency branch):

    x (B, C, T, H, W) -+-> temporal branch -> g (B, T)    -> x_t = x * g + x
                       +-> frequency branch -> q (B, H, W) -> x_s = x * sigmoid(q) + x
    y = (w_t * x_t + w_s * x_s) / 2

Both branches only produce small gate tensors. Because x_t, x_s and y are
linear in x, y is computed as ONE full-size product `x * G` with the combined
gate G = (w_t * (1 + g) + w_s * (1 + sigmoid(q))) / 2 of shape (B, 1, T, H, W):
the same math with one pass over x instead of five, which is what keeps DAM's
share of the per-stage cost small. No `repeat`/`expand` copies anywhere.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError

__all__ = ["DAM", "dct_basis"]


def dct_basis(size: int = 7) -> torch.Tensor:
    """Orthonormal 2D DCT-II filters, (size*size, size, size), index u*size + v."""
    pos = torch.arange(size, dtype=torch.float64) + 0.5
    freq = torch.arange(size, dtype=torch.float64)
    basis_1d = torch.cos(math.pi * freq[:, None] * pos[None, :] / size)  # (U, N)
    basis_1d = basis_1d * math.sqrt(2.0 / size)
    basis_1d[0] = basis_1d[0] / math.sqrt(2.0)
    basis_2d = basis_1d[:, None, :, None] * basis_1d[None, :, None, :]  # (U, V, N, N)
    return basis_2d.reshape(size * size, size, size).float()


class _TemporalGate(nn.Module):
    """Per-frame gate from channel-binned avg/max profiles (spec 2, temporal 1-4)."""

    def __init__(self, num_frames: int) -> None:
        super().__init__()
        t = num_frames
        # Compensate + Wasserstein fusion (released code: gamma ones, delta zeros).
        self.gamma = nn.Parameter(torch.ones(t, t))
        self.delta = nn.Parameter(torch.zeros(t, t))
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.beta = nn.Parameter(torch.tensor(0.5))
        # Frame mixing (T -> T over the frame axis) and single-head attention:
        # q, k, v projections with bias and no output projection, as released.
        self.frame_mix = nn.Linear(t, t, bias=False)
        self.qkv = nn.Linear(t, 3 * t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        # Pool space first, then channels into t bins: same as pooling (C, H, W)
        # to (t, 1, 1) because every channel has the same number of pixels.
        a = F.adaptive_avg_pool1d(x.mean(dim=(3, 4)).transpose(1, 2), t)  # (B, T, K)
        # max(dim) backward scatters through indices; amax's is several full-size ops.
        m = F.adaptive_max_pool1d(x.flatten(3).max(dim=3).values.transpose(1, 2), t)  # (B, T, K)
        d = torch.linalg.vector_norm(a - a.mean(dim=2, keepdim=True), dim=2, keepdim=True)  # (B, T, 1)
        r = F.pad((a[:, :, 1:] - a[:, :, :-1]).abs(), (1, 0))  # (B, T, K), 0 for bin 0
        u = torch.sigmoid(self.gamma * (self.alpha * a + self.beta * m) + self.delta * d - r)
        u = self.frame_mix(u.transpose(1, 2)).transpose(1, 2)  # (B, T, K), frames mixed
        q, k, v = self.qkv(u).chunk(3, dim=-1)  # tokens = frames, width T
        att = F.scaled_dot_product_attention(q, k, v)  # (B, T, K), scale 1/sqrt(T)
        return torch.sigmoid(att.mean(dim=2))  # (B, T)


class _FrequencyGate(nn.Module):
    """Per-pixel gate from a fixed DCT bank with a distributional perturbation (spec 2, frequency 1-5).

    Works on (B, H*W, 49) maps, DCT channels last: the std across the 49
    channels is then a contiguous reduction, and both 7x7 convs are matmuls.
    """

    def __init__(self, dct_size: int, perturb_weight: float, eps: float = 1e-6) -> None:
        super().__init__()
        n = dct_size * dct_size
        self.dct_size = dct_size
        self.perturb_weight = perturb_weight
        self.eps = eps
        self.register_buffer("dct", dct_basis(dct_size).view(n, n), persistent=False)  # (49, 7*7)
        # Perturbation: n ~ N(0, 0.1^2), a (ones), b (zeros) per DCT channel; al/be mix.
        self.noise = nn.Parameter(0.1 * torch.randn(n))
        self.a = nn.Parameter(torch.ones(n))
        self.b = nn.Parameter(torch.zeros(n))
        self.al = nn.Parameter(torch.tensor(0.5))
        self.be = nn.Parameter(torch.tensor(0.5))
        # Adaptive dynamic tanh across the DCT channels (alpha init 0.5 as DyT).
        self.dyt_alpha = nn.Parameter(torch.tensor(0.5))
        self.dyt_gamma = nn.Parameter(torch.ones(n))
        self.dyt_beta = nn.Parameter(torch.zeros(n))
        # 7x7 conv 49 -> 1 without bias, nn.Conv2d's layout and default init.
        self.to_map = nn.Parameter(torch.empty(1, n, dct_size, dct_size))
        nn.init.kaiming_uniform_(self.to_map, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = x.shape
        k = self.dct_size
        # A conv whose kernel is the same basis for every input channel equals
        # the basis applied once to the channel sum: 1 channel, not C, run as
        # zero-padded 7x7 patches @ basis (oneDNN's 1 -> 49 conv is slow on CPU).
        s = x.sum(dim=(1, 2)).div(t).unsqueeze(1)  # (B, 1, H, W): time mean of channel sum
        patches = F.unfold(s, k, padding=k // 2)  # (B, 49 taps, H*W)
        f = patches.transpose(1, 2) @ self.dct.t()  # (B, H*W, 49)
        spread = torch.linalg.vector_norm(f - f.mean(dim=1, keepdim=True), dim=1, keepdim=True)  # (B, 1, 49)
        # F_adv = F + c * sign(F) with c = n * a + w * b * s, hence the mix
        # (al * F + be * F_adv) / 2 = F * (al + be) / 2 + sign(F) * c * be / 2:
        # the same math with the per-channel factors folded on small tensors.
        c = self.noise * self.a + self.perturb_weight * self.b * spread  # (B, 1, 49)
        f = torch.addcmul(f * ((self.al + self.be) / 2), torch.sign(f), c * (self.be / 2))
        # Adaptive DyT: tanh(alpha / (std_c + eps) * F') * gamma_c + beta_c.
        # Sample variance written out: aten's var is ~10x slower on 49-wide rows on CPU.
        dev = f - f.mean(dim=2, keepdim=True)
        var = (dev * dev).sum(dim=2, keepdim=True) / (f.shape[2] - 1)  # (B, H*W, 1)
        std = torch.sqrt(var + self.eps)
        f = torch.addcmul(self.dyt_beta, torch.tanh(f * (self.dyt_alpha / (std + self.eps))), self.dyt_gamma)
        # 7x7 conv 49 -> 1: mix channels per kernel tap, then sum the shifted taps
        # with fold (col2im). fold scatters where conv gathers, so the taps are flipped.
        taps = self.to_map.flip(2, 3).reshape(k * k, k * k)  # (49 channels, 49 taps)
        return F.fold((f @ taps).transpose(1, 2), (h, w), k, padding=k // 2)  # (B, 1, H, W)


class DAM(nn.Module):
    """Time-frequency attention after a stage; (B, C, T, H, W) -> same shape.

    `temporal=False` / `frequency=False` switch a branch off: the branch then
    contributes its identity, x_t = x or x_s = x, so the fusion weights stay in
    place (both off: y = (w_t + w_s) / 2 * x). That keeps "branch off" an
    ablation of the gate alone, not of the fusion. Parameters of a switched-off
    branch are not created. gamma, delta and the frame maps are T x T, so the
    module only accepts clips with exactly `num_frames` frames.
    """

    def __init__(
        self,
        channels: int,
        num_frames: int,
        *,
        temporal: bool = True,
        frequency: bool = True,
        dct_size: int = 7,
        perturb_weight: float = 0.05,
    ) -> None:
        super().__init__()
        if channels < 1 or num_frames < 1:
            raise ConfigError(f"DAM needs channels, num_frames >= 1 (got {channels}, {num_frames}).")
        if dct_size < 1 or dct_size % 2 == 0:
            raise ConfigError(f"DAM dct_size must be odd (the map keeps its size), got {dct_size}.")
        self.channels = channels
        self.num_frames = num_frames
        self.temporal = _TemporalGate(num_frames) if temporal else None
        self.frequency = _FrequencyGate(dct_size, perturb_weight) if frequency else None
        self.w_t = nn.Parameter(torch.tensor(0.8))
        self.w_s = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        b, c, t, _, _ = x.shape
        if c != self.channels or t != self.num_frames:
            raise ConfigError(
                f"DAM built for {self.channels} channels x {self.num_frames} frames got input "
                f"{tuple(x.shape)}; build the model with num_frames equal to the clip length."
            )
        # x_t = x * (1 + g) and x_s = x * (1 + sigmoid(q)); an off branch is x * 1.
        gate_t = 1 + self.temporal(x).view(b, 1, t, 1, 1) if self.temporal is not None else 1.0
        gate_s = 1 + torch.sigmoid(self.frequency(x)).unsqueeze(2) if self.frequency is not None else 1.0
        gate = (self.w_t * gate_t + self.w_s * gate_s) / 2  # (B, 1, T, H, W) by broadcasting
        return x * gate

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, num_frames={self.num_frames}, "
            f"temporal={self.temporal is not None}, frequency={self.frequency is not None}"
        )
