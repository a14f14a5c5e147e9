"""Clip-level training augmentation: one set of random parameters per clip.

    frames (T, H, W, 3) uint8 -> RandomResizedCrop -> HorizontalFlip -> brightness/contrast

albumentations 2.x applies one draw of parameters to every image passed as
`images=`; a per-frame draw would make the crop jitter in time, which a video
model would learn as motion. The draw is seeded from the caller's generator,
so a clip's augmentation is a function of (seed, epoch, index) only.
"""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np

__all__ = ["ClipAugment", "build_train_transform"]


class ClipAugment:
    """Callable `(frames, rng) -> frames`; picklable for DataLoader workers."""

    def __init__(self, compose: Any) -> None:
        self.compose = compose

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seed = int(rng.integers(2**63))
        # One shared stream for all transforms (Compose(seed=) would give every
        # transform the same stream, correlating e.g. flip with brightness).
        self.compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = self.compose(images=frames)["images"]  # (T, H, W, 3)
        return np.ascontiguousarray(out)


def build_train_transform(
    size: int,
    *,
    # crop: fraction of the frame area kept, aspect ratio range
    scale: tuple[float, float] = (0.7, 1.0),
    ratio: tuple[float, float] = (0.9, 1.1),
    # photometric
    flip_p: float = 0.5,
    brightness: float = 0.2,
    contrast: float = 0.2,
    color_p: float = 0.5,
) -> ClipAugment:
    """Light crop + flip + brightness/contrast, output (T, size, size, 3) uint8."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
    import albumentations as A

    compose = A.Compose([
        A.RandomResizedCrop(size=(size, size), scale=scale, ratio=ratio, p=1.0),
        A.HorizontalFlip(p=flip_p),
        A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast, p=color_p),
    ])
    return ClipAugment(compose)
