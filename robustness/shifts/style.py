"""Style shifts: what a different camera, lens, light or encoder does to the frames.

Parameters are drawn once per clip and held on every frame where the physics
holds them (a lens, a white balance, an encoder setting, fog, a shadow);
sensor noise and light flicker are drawn fresh for every frame. albumentations
does the clip-constant ones: called with `images=`, it draws one set of
parameters for all frames. Its noise transforms would then repeat one noise map
on every frame, so noise is numpy here.

Severity level table (index = severity 1..5):

| shift              | parameter                                   | 1     | 2     | 3     | 4     | 5     |
| ------------------ | ------------------------------------------- | ----- | ----- | ----- | ----- | ----- |
| colour_temperature | cast k: R*(1+k), B*(1-k) (warm) or mirrored | 0.08  | 0.16  | 0.25  | 0.35  | 0.5   |
| exposure           | gain, under (or over, 1/gain-ish, 50/50)    | 0.75  | 0.6   | 0.45  | 0.33  | 0.22  |
|                    | over-exposure gain                          | 1.3   | 1.6   | 1.9   | 2.3   | 2.8   |
| contrast           | albumentations contrast_limit (reduction)   | -0.2  | -0.35 | -0.5  | -0.65 | -0.8  |
| gamma              | gamma (or 1/gamma, 50/50)                   | 1.3   | 1.6   | 2.0   | 2.5   | 3.2   |
| defocus_blur       | disc radius (px at 64 px)                   | 1     | 2     | 3     | 4     | 6     |
| motion_blur        | kernel length (px), random angle            | 3     | 5     | 7     | 9     | 13    |
| jpeg               | JPEG quality                                | 25    | 18    | 15    | 10    | 7     |
| downscale          | scale of the intermediate resolution        | 0.6   | 0.45  | 0.33  | 0.25  | 0.18  |
| fog                | fog density at its thickest                 | 0.2   | 0.3   | 0.45  | 0.6   | 0.75  |
| shadow             | darkening of 2 random polygons              | 0.3   | 0.45  | 0.6   | 0.75  | 0.9   |
| gaussian_noise     | sensor noise sigma (0-255), per frame       | 6     | 10    | 15    | 22    | 32    |
| shot_noise         | photons at full white (Poisson), per frame  | 60    | 25    | 12    | 5     | 3     |
| flicker            | per-frame gain sd (mains / auto-exposure)   | 0.05  | 0.1   | 0.15  | 0.22  | 0.3   |

Noise, JPEG and blur magnitudes follow ImageNet-C (Hendrycks & Dietterich 2019)
scaled to 64 px faces.
"""
from __future__ import annotations

import os
import random

import cv2
import numpy as np

from robustness.shifts import register_shift

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
import albumentations as A  # noqa: E402

__all__ = ["LEVELS"]

LEVELS: dict[str, tuple[float, ...]] = {
    "colour_temperature": (0.08, 0.16, 0.25, 0.35, 0.5),
    "exposure_under": (0.75, 0.6, 0.45, 0.33, 0.22),
    "exposure_over": (1.3, 1.6, 1.9, 2.3, 2.8),
    "contrast": (-0.2, -0.35, -0.5, -0.65, -0.8),
    "gamma": (1.3, 1.6, 2.0, 2.5, 3.2),
    "defocus_blur": (1, 2, 3, 4, 6),
    "motion_blur": (3, 5, 7, 9, 13),
    "jpeg": (25, 18, 15, 10, 7),
    "downscale": (0.6, 0.45, 0.33, 0.25, 0.18),
    "fog": (0.2, 0.3, 0.45, 0.6, 0.75),
    "shadow": (0.3, 0.45, 0.6, 0.75, 0.9),
    "gaussian_noise": (6, 10, 15, 22, 32),
    "shot_noise": (60, 25, 12, 5, 3),
    "flicker": (0.05, 0.1, 0.15, 0.22, 0.3),
}


def _level(name: str, severity: int) -> float:
    return LEVELS[name][severity - 1]


def _albu(transform: A.BasicTransform, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One albumentations draw applied to every frame, seeded from `rng`."""
    compose = A.Compose([transform])
    seed = int(rng.integers(2**63))
    compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return np.ascontiguousarray(compose(images=clip)["images"])  # (T, H, W, 3)


def _lut(clip: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a (256,) or (256, 3) float table to every pixel, rounded to uint8."""
    t = np.clip(np.rint(table), 0, 255).astype(np.uint8).reshape(1, 256, -1)
    if t.shape[-1] == 1:
        t = np.repeat(t, 3, axis=-1)
    flat = clip.reshape(-1, clip.shape[2], 3)  # (T*H, W, 3): cv2.LUT wants an image
    return cv2.LUT(flat, t).reshape(clip.shape)


# -- held across the clip ---------------------------------------------------------------

@register_shift("colour_temperature", "style")
def colour_temperature(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """White balance off toward warm (tungsten) or cool (shade), direction 50/50."""
    k = _level("colour_temperature", severity)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    gains = np.array([1 + sign * k, 1.0, 1 - sign * k])
    return _lut(clip, np.arange(256)[:, None] * gains[None, :])


@register_shift("exposure", "style")
def exposure(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Under- or over-exposed (50/50): one multiplicative gain, clipped like a sensor."""
    key = "exposure_under" if rng.random() < 0.5 else "exposure_over"
    g = _level(key, severity)
    return _albu(A.MultiplicativeNoise(multiplier=(g, g), per_channel=False, elementwise=False,
                                       p=1.0), clip, rng)


@register_shift("contrast", "style")
def contrast(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Flat, hazy-lens / cheap-sensor contrast."""
    c = _level("contrast", severity)
    return _albu(A.RandomBrightnessContrast(brightness_limit=(0.0, 0.0), contrast_limit=(c, c),
                                            p=1.0), clip, rng)


@register_shift("gamma", "style")
def gamma(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A wrong tone curve: gamma or 1/gamma (50/50)."""
    g = _level("gamma", severity)
    g = g if rng.random() < 0.5 else 1.0 / g
    pct = int(round(100 * g))
    return _albu(A.RandomGamma(gamma_limit=(pct, pct), p=1.0), clip, rng)


@register_shift("defocus_blur", "style")
def defocus_blur(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus lens: a disc kernel, the same on every frame."""
    r = int(_level("defocus_blur", severity))
    return _albu(A.Defocus(radius=(r, r), alias_blur=(0.1, 0.1), p=1.0), clip, rng)


@register_shift("motion_blur", "style")
def motion_blur(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Camera shake during a long exposure: one line kernel (random angle) for the clip."""
    k = int(_level("motion_blur", severity))
    return _albu(A.MotionBlur(blur_limit=(k, k), allow_shifted=False, p=1.0), clip, rng)


@register_shift("jpeg", "style")
def jpeg(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Heavy compression at one encoder quality."""
    q = int(_level("jpeg", severity))
    return _albu(A.ImageCompression(quality_range=(q, q), p=1.0), clip, rng)


@register_shift("downscale", "style")
def downscale(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A low-resolution sensor upsampled to the model's size (area down, linear up)."""
    s = _level("downscale", severity)
    return _albu(A.Downscale(scale_range=(s, s), p=1.0, interpolation_pair={
        "downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}), clip, rng)


@register_shift("fog", "style")
def fog(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Haze or a dirty lens: a smooth random density field blended toward light grey.

    numpy, not A.RandomFog: that one costs ~80 ms per 8-frame clip.
    """
    _, h, w, _ = clip.shape
    density = _level("fog", severity)
    coarse = rng.random((4, 4)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)  # (H, W)
    alpha = density * np.clip(0.55 + 0.45 * field, 0.0, 1.0)[None, :, :, None]  # (1, H, W, 1)
    tint = np.float32(rng.uniform(190, 230))
    out = clip.astype(np.float32) * (1 - alpha) + tint * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@register_shift("shadow", "style")
def shadow(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Hard shadows cast across the face, fixed in the frame."""
    v = _level("shadow", severity)
    return _albu(A.RandomShadow(shadow_roi=(0.0, 0.0, 1.0, 1.0), num_shadows_limit=(2, 2),
                                shadow_dimension=5, shadow_intensity_range=(v, v), p=1.0),
                 clip, rng)


# -- fresh every frame --------------------------------------------------------------------

@register_shift("gaussian_noise", "style")
def gaussian_noise(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Read/thermal sensor noise: independent per pixel, channel and frame."""
    sigma = np.float32(_level("gaussian_noise", severity))
    out = clip.astype(np.float32)
    out += rng.standard_normal(clip.shape, dtype=np.float32) * sigma
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@register_shift("shot_noise", "style")
def shot_noise(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Photon noise of a dim scene: worst in the bright parts, fresh per frame.

    Poisson(n) with n = photons * x / 255, drawn as its normal approximation
    N(n, n): numpy's Poisson sampler costs ~15 ms per clip, this ~2 ms.
    """
    photons = _level("shot_noise", severity)
    x = clip.astype(np.float32)
    sd = np.sqrt(x * np.float32(255.0 / photons))  # sd of x in 0-255 units
    x += rng.standard_normal(clip.shape, dtype=np.float32) * sd
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@register_shift("flicker", "style")
def flicker(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Mains-light flicker or hunting auto-exposure: one gain per frame."""
    sd = _level("flicker", severity)
    gains = np.clip(1.0 + sd * rng.standard_normal(clip.shape[0]), 0.2, 3.0)
    out = np.empty_like(clip)
    ramp = np.arange(256, dtype=np.float64)
    for t, g in enumerate(gains):
        out[t] = _lut(clip[t:t + 1], ramp * g)[0]
    return out
