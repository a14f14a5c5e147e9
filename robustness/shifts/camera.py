"""The "new camera" shift: a whole camera look drawn from the synthetic generator's sources.

Reuses `bench.data.synth.sources` (the same archetypes and `apply_style` that
made the data), so "a camera" means the same thing in the generator and here:

    clip -> render resolution (area down) -> apply_style (up, blur, cast, exposure,
         flicker, contrast, gamma, saturation, per-frame noise) -> JPEG at the
         source's quality -> the source's frame rate (pulldown) -> clip

A random non-studio source is drawn from 12 (the 6 archetypes and one jittered
sibling of each); `source_spread` scales how far it sits from the clean camera.

| severity      | 1   | 2   | 3   | 4    | 5   |
| ------------- | --- | --- | --- | ---- | --- |
| source_spread | 0.3 | 0.5 | 0.7 | 0.85 | 1.0 |

On already-styled synthetic clips the look compounds with the clip's own
source; leave-one-source-out (robustness/sources.py) is the clean test of an
unseen camera.
"""
from __future__ import annotations

import cv2
import numpy as np

from bench.data.synth.sources import ARCHETYPES, REFERENCE, apply_style, decode_jpeg, encode_jpeg
from bench.data.synth.sources import sample_sources
from robustness.shifts import register_shift
from robustness.shifts.temporal import pulldown_indices

__all__ = ["LEVELS", "draw_camera", "film"]

LEVELS = {"source_spread": (0.3, 0.5, 0.7, 0.85, 1.0)}


def draw_camera(spread: float, size: int, rng: np.random.Generator) -> dict:
    """One source parameter dict, never the studio (reference) archetype or its sibling."""
    n = 2 * len(ARCHETYPES)
    sources = sample_sources(n, rng, spread=spread, noise_scale=1.0, size=size)
    choices = [i for i in range(n) if i % len(ARCHETYPES) != 0]
    return sources[choices[int(rng.integers(len(choices)))]]


def film(clip: np.ndarray, src: dict, rng: np.random.Generator) -> np.ndarray:
    """Re-shoot a clip (T, H, W, 3) uint8 with camera `src`; same shape out."""
    t, h, w, _ = clip.shape
    # apply_style works on square frames: render at min(render_res, h) square, restore (H, W) last.
    res = int(min(src["render_res"], h))
    if (res, res) != (h, w):
        clip = np.stack([cv2.resize(f, (res, res), interpolation=cv2.INTER_AREA) for f in clip])
    out = apply_style(clip, src, rng, size=h)  # (T, H, W, 3)
    if int(src["jpeg_quality"]) < 100:
        out = np.stack([decode_jpeg(encode_jpeg(f, int(src["jpeg_quality"]))) for f in out])
    ratio = src["fps"] / REFERENCE["fps"]
    if ratio < 1.0:
        out = out[pulldown_indices(t, ratio, rng)]
    if (h, w) != out.shape[1:3]:
        out = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in out])
    return np.ascontiguousarray(out)


@register_shift("new_camera", "camera")
def new_camera(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The clip as a random other camera would have filmed it."""
    spread = LEVELS["source_spread"][severity - 1]
    return film(clip, draw_camera(spread, clip.shape[1], rng), rng)
