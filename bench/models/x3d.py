"""X3D backbone (pytorchvideo) with an optional DAM after each residual stage.

X3D: Feichtenhofer, "X3D: Expanding Architectures for Efficient Video
Recognition", CVPR 2020; built with `pytorchvideo.models.x3d.create_x3d`.
HDF (docs/method.md) inserts DAM after every stage:

    clip (B, 3, T, H, W) -> stem -> [stage_i -> DAM_i] x 4 -> ProjectedPool
        -> global avg -> z (B, D) -> dropout -> Linear -> logits (B, num_classes)
                           z -> [projection head] -> features for DSM

The network returns (logits, features): what DSM contrasts, the pooled z or,
with `projection`, a small MLP head's output on z. X3D has no temporal stride,
so every DAM sees all T frames and is built for `num_frames`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import torch
from pytorchvideo.models.x3d import create_x3d
from torch import nn

from bench.errors import ConfigError, UnknownNameError
from bench.models import MODELS
from bench.models.dam import DAM
from bench.models.projection import ProjectionHead

__all__ = ["X3DPreset", "PRESETS", "X3D", "build_x3d", "build_hdf", "build_model", "get_preset"]

# Spatial stride of stem (2) and the 4 stages (2 each); X3D has no temporal stride.
_SPATIAL_STRIDE = 32


@dataclass(frozen=True)
class X3DPreset:
    """Size of an X3D variant; clip_length and crop_size are the paper's defaults, for reference only."""

    width_factor: float
    depth_factor: float
    head_dim_out: int
    bottleneck_factor: float = 2.25
    clip_length: int = 8
    crop_size: int = 64


PRESETS: dict[str, X3DPreset] = {
    # CPU-sized: 16/24/48/96 channels, depths 1/2/5/3, 128-d features.
    "tiny": X3DPreset(width_factor=1.0, depth_factor=1.0, head_dim_out=128),
    # pytorchvideo's x3d_xs / x3d_s / x3d_m differ only in their clip size.
    "xs": X3DPreset(2.0, 2.2, 2048, clip_length=4, crop_size=160),
    "s": X3DPreset(2.0, 2.2, 2048, clip_length=13, crop_size=160),
    "m": X3DPreset(2.0, 2.2, 2048, clip_length=16, crop_size=224),
}


def get_preset(name: str) -> X3DPreset:
    """Look a preset up by name; a typo lists the known presets."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownNameError(
            f"unknown x3d preset '{name}'.{hint} Known: {', '.join(sorted(PRESETS))}."
        )
    return PRESETS[name]


class X3D(nn.Module):
    """Stem, 4 stages each followed by DAM or Identity, projected-pool head, linear classifier."""

    def __init__(
        self,
        *,
        stem: nn.Module,
        stages: nn.ModuleList,
        dams: nn.ModuleList,
        head_pool: nn.Module,
        dropout: nn.Module,
        proj: nn.Linear,
        head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if len(stages) != len(dams):
            raise ValueError(f"{len(stages)} stages but {len(dams)} DAM slots")
        self.stem = stem
        self.stages = stages
        self.dams = dams
        self.head_pool = head_pool
        self.dropout = dropout
        self.proj = proj
        self.head = head if head is not None else nn.Identity()  # what DSM contrasts
        self.feature_dim: int = proj.in_features  # pooled z, what the classifier reads

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (B, 3, T, H, W) -> pooled feature z (B, D)."""
        x = self.stem(x)
        for stage, dam in zip(self.stages, self.dams):
            x = dam(stage(x))  # (B, C_i, T, H_i, W_i)
        x = self.head_pool(x)  # (B, D, 1, 1, 1) at the built clip size
        return x.mean(dim=(2, 3, 4))  # (B, D)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, K), contrastive features (B, D) or (B, D_head))."""
        z = self.forward_features(x)  # (B, D)
        return self.proj(self.dropout(z)), self.head(z)


def _create_x3d(
    *,
    # Task and clip.
    num_classes: int,
    num_frames: int,
    crop_size: int,
    # Backbone size.
    preset: str,
    dropout: float,
    # DAM.
    dam_stages: Sequence[bool],
    dam_temporal: bool,
    dam_frequency: bool,
    # Contrastive features.
    projection: bool,
) -> X3D:
    size = get_preset(preset)
    if isinstance(dam_stages, str) or len(dam_stages) != 4 or not all(s in (True, False) for s in dam_stages):
        raise ConfigError(f"model.dam_stages must list 4 booleans (one per X3D stage), got {dam_stages!r}.")
    if num_classes < 1:
        raise ConfigError(f"model.num_classes must be >= 1, got {num_classes}.")
    if num_frames < 1:
        raise ConfigError(f"model.num_frames must be >= 1, got {num_frames}.")
    if crop_size < _SPATIAL_STRIDE:
        raise ConfigError(f"model.crop_size must be >= {_SPATIAL_STRIDE} (X3D downsamples by 32), got {crop_size}.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}.")
    # create_x3d sets the head pool kernel to (T, ceil(crop/32), ceil(crop/32)),
    # exactly the final feature map, so the pool is global for this clip size.
    net = create_x3d(
        input_clip_length=num_frames,
        input_crop_size=crop_size,
        model_num_class=num_classes,
        dropout_rate=dropout,
        width_factor=size.width_factor,
        depth_factor=size.depth_factor,
        bottleneck_factor=size.bottleneck_factor,
        head_dim_out=size.head_dim_out,
        head_activation=None,
    )
    stem, *stages, head = net.blocks
    dams = [
        DAM(_stage_channels(stage), num_frames, temporal=dam_temporal, frequency=dam_frequency)
        if on else nn.Identity()
        for stage, on in zip(stages, dam_stages)
    ]
    return X3D(
        stem=stem,
        stages=nn.ModuleList(stages),
        dams=nn.ModuleList(dams),
        head_pool=head.pool,
        dropout=head.dropout if head.dropout is not None else nn.Identity(),
        proj=head.proj,
        head=ProjectionHead(head.proj.in_features) if projection else None,
    )


def _stage_channels(stage: nn.Module) -> int:
    """Output channels of a pytorchvideo ResStage: its last block's final 1x1x1 conv."""
    return stage.res_blocks[-1].branch2.conv_c.out_channels


@MODELS.register("x3d")
def build_x3d(
    *,
    # Task and clip.
    num_classes: int = 7,
    num_frames: int = 8,
    crop_size: int = 64,
    # Backbone size.
    preset: str = "tiny",
    dropout: float = 0.5,
    # DAM: one switch per stage, and per branch.
    dam_stages: Sequence[bool] = (False, False, False, False),
    dam_temporal: bool = True,
    dam_frequency: bool = True,
    # Contrastive features: pooled z, or a projection head on it.
    projection: bool = False,
) -> nn.Module:
    """Plain X3D by default; `dam_stages` puts DAM after the chosen stages."""
    return _create_x3d(
        num_classes=num_classes,
        num_frames=num_frames,
        crop_size=crop_size,
        preset=preset,
        dropout=dropout,
        dam_stages=dam_stages,
        dam_temporal=dam_temporal,
        dam_frequency=dam_frequency,
        projection=projection,
    )


# HDF's network: the same builder with DAM after every stage.
build_hdf = MODELS.register("hdf")(partial(build_x3d, dam_stages=(True, True, True, True)))


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name (keyword names are checked)."""
    return MODELS.build(name, **kwargs)
