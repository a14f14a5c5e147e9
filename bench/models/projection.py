"""Projection head: what a contrastive loss sees instead of the pooled features.

    z (B, D) -> Linear(D, D) -> BatchNorm -> ReLU -> Linear(D, d_out) -> (B, d_out)

As in supervised contrastive learning, the head sits beside the classifier,
not before it: the classifier reads the pooled features, so the head is
trained only through the contrastive terms. Pooled X3D features come after a
ReLU, so they are non-negative and all pairwise cosines are large; the batch
normalisation centres each feature over the batch and the last linear layer
may output negative values, so the head's cosines spread around zero and
similarity-based weights can tell pairs apart.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """Two-layer MLP with batch normalisation; output width min(D, 128) by default."""

    def __init__(self, dim_in: int, *, dim_out: int | None = None) -> None:
        super().__init__()
        self.dim_out = dim_out or min(dim_in, 128)
        self.net = nn.Sequential(
            nn.Linear(dim_in, dim_in, bias=False),
            nn.BatchNorm1d(dim_in),
            nn.ReLU(inplace=True),
            nn.Linear(dim_in, self.dim_out, bias=False),
            nn.BatchNorm1d(self.dim_out, affine=False),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, D) -> (B, dim_out)
