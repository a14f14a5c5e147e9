"""Clip augmentation split in two: parameters drawn per item, pixels moved per batch on the device.

    worker:  rng(seed, epoch, index) -> draw(...) -> params (8,) float32     (microseconds)
    device:  uint8 (B, T, H, W, 3) + params (B, 8)
             -> crop + resize + flip (one affine grid per clip, bilinear, every frame alike)
             -> brightness / contrast (x * alpha + beta * 255, clipped) -> normalise
             -> float32 (B, 3, T, size, size)

The same augmentation family as `bench.data.transforms` (albumentations'
RandomResizedCrop, HorizontalFlip, RandomBrightnessContrast with the same
ranges), drawn the same way, but resampled with `grid_sample` rather than
OpenCV: pixels differ slightly (the outermost output pixels may blend in the
half pixel just outside the crop), the distribution does not. The draw is a
function of (seed, epoch, index), so it does not depend on workers or order.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ClipParams", "PARAMS", "apply_params"]

PARAMS = 8  # y0, x0, h, w (crop, pixels), flip (0/1), alpha, beta, unused


class ClipParams:
    """Callable `(rng, height, width) -> params (8,) float32`; picklable for workers.

    Ranges as `bench.data.transforms.build_train_transform`.
    """

    def __init__(self, *, scale: tuple[float, float] = (0.7, 1.0),
                 ratio: tuple[float, float] = (0.9, 1.1), flip_p: float = 0.5,
                 brightness: float = 0.2, contrast: float = 0.2, color_p: float = 0.5) -> None:
        self.scale, self.ratio = scale, ratio
        self.flip_p, self.brightness, self.contrast, self.color_p = flip_p, brightness, contrast, color_p

    def _crop(self, rng: np.random.Generator, h: int, w: int) -> tuple[int, int, int, int]:
        """RandomResizedCrop's draw: up to 10 tries, then the central crop."""
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        side = min(h, w)
        return (h - side) // 2, (w - side) // 2, side, side

    def __call__(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        y0, x0, ch, cw = self._crop(rng, h, w)
        flip = float(rng.random() < self.flip_p)
        alpha, beta = 1.0, 0.0
        if rng.random() < self.color_p:
            alpha = 1.0 + rng.uniform(-self.contrast, self.contrast)
            beta = rng.uniform(-self.brightness, self.brightness)
        return np.array([y0, x0, ch, cw, flip, alpha, beta, 0.0], dtype=np.float32)


def apply_params(x: torch.Tensor, params: torch.Tensor, *, size: int) -> torch.Tensor:
    """uint8 clips (B, T, H, W, 3) on the device + params (B, 8) -> float (B, 3, T, size, size)
    in [0, 255], augmented; normalisation is the caller's."""
    b, t, h, w, c = x.shape
    p = params.to(x.device, torch.float32)
    y0, x0, ch, cw, flip, alpha, beta = (p[:, i] for i in range(7))
    frames = x.permute(0, 4, 1, 2, 3).reshape(b, c * t, h, w).float()  # (B, 3T, H, W)
    # affine map from output [-1, 1] to the crop's box in input [-1, 1] (align_corners=False)
    sx, sy = cw / w, ch / h
    cx, cy = (2 * x0 + cw) / w - 1, (2 * y0 + ch) / h - 1
    sx = torch.where(flip > 0.5, -sx, sx)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta, [b, c * t, size, size], align_corners=False)
    out = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = out * alpha.view(b, 1, 1, 1) + (beta * 255.0).view(b, 1, 1, 1)
    return out.clamp_(0.0, 255.0).view(b, c, t, size, size)  # (B, 3, T, size, size)
