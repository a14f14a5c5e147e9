"""Camera sources: each has a look (colour, exposure, blur, noise, JPEG, resolution, frame rate,
background), and the pure functions that apply that look to rendered frames.

Source archetypes are fixed so that "source 3" means the same camera in every
data set; `source_spread` pulls them toward a clean reference camera.
"""
from __future__ import annotations

from statistics import NormalDist
from typing import Any, Mapping

import cv2
import numpy as np

__all__ = ["ARCHETYPES", "REFERENCE", "sample_sources", "background", "apply_style", "encode_jpeg",
           "decode_jpeg"]

BACKGROUNDS = ("flat", "gradient", "clutter")

# A clean camera: what every source becomes at source_spread = 0.
REFERENCE: dict[str, Any] = dict(
    cast_r=1.0, cast_g=1.0, cast_b=1.0, exposure=1.0, contrast=1.0, gamma=1.0, saturation=1.0,
    blur=0.0, noise=2.0, jpeg_quality=90, render_res=80, fps=25, flicker=0.0,
)

ARCHETYPES: tuple[dict[str, Any], ...] = (
    dict(name="studio", background="flat", **REFERENCE),
    dict(name="webcam", background="gradient", cast_r=1.12, cast_g=1.0, cast_b=0.82,
         exposure=1.15, contrast=0.9, gamma=0.9, saturation=0.9, blur=0.7, noise=6.0,
         jpeg_quality=55, render_res=56, fps=15, flicker=0.03),
    dict(name="phone_night", background="clutter", cast_r=0.85, cast_g=0.95, cast_b=1.2,
         exposure=0.6, contrast=1.1, gamma=1.3, saturation=0.7, blur=0.4, noise=14.0,
         jpeg_quality=45, render_res=64, fps=20, flicker=0.05),
    dict(name="cctv", background="clutter", cast_r=0.9, cast_g=1.1, cast_b=0.9,
         exposure=0.95, contrast=0.7, gamma=1.0, saturation=0.35, blur=1.0, noise=8.0,
         jpeg_quality=30, render_res=32, fps=10, flicker=0.0),
    dict(name="film", background="gradient", cast_r=1.12, cast_g=0.98, cast_b=0.9,
         exposure=1.0, contrast=1.35, gamma=1.05, saturation=1.2, blur=0.2, noise=5.0,
         jpeg_quality=85, render_res=80, fps=24, flicker=0.0),
    dict(name="vlog", background="clutter", cast_r=1.08, cast_g=0.95, cast_b=1.05,
         exposure=1.25, contrast=0.95, gamma=0.8, saturation=1.1, blur=0.3, noise=3.0,
         jpeg_quality=70, render_res=48, fps=30, flicker=0.0),
)

# Standard normal quantiles of 256 equal-probability bins.
_GAUSS = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=np.float32)
_FLOAT_KEYS = ("cast_r", "cast_g", "cast_b", "exposure", "contrast", "gamma", "saturation",
               "blur", "noise", "flicker")


def sample_sources(num_sources: int, rng: np.random.Generator, *, spread: float,
                   noise_scale: float, size: int) -> list[dict[str, Any]]:
    """Source parameter dicts; beyond the archetypes, new sources are jittered archetypes."""
    out = []
    for i in range(num_sources):
        arch = dict(ARCHETYPES[i % len(ARCHETYPES)])
        if i >= len(ARCHETYPES):  # a sibling camera: same kind, different unit
            arch["name"] = f"{arch['name']}_{i // len(ARCHETYPES)}"
            for k in ("cast_r", "cast_g", "cast_b", "exposure", "contrast", "gamma"):
                arch[k] = float(arch[k] * rng.uniform(0.9, 1.1))
            arch["background"] = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        src: dict[str, Any] = {"source": i, "source_name": arch["name"],
                               "background": arch["background"]}
        for k in _FLOAT_KEYS:
            src[k] = float(REFERENCE[k] + spread * (arch[k] - REFERENCE[k]))
        src["blur"] *= noise_scale
        src["noise"] *= noise_scale
        q = REFERENCE["jpeg_quality"] + spread * (arch["jpeg_quality"] - REFERENCE["jpeg_quality"])
        src["jpeg_quality"] = int(np.clip(round(q), 5, 100))
        res = REFERENCE["render_res"] + spread * (arch["render_res"] - REFERENCE["render_res"])
        src["render_res"] = int(np.clip(round(res * size / 80), 16, size))
        src["fps"] = int(round(REFERENCE["fps"] + spread * (arch["fps"] - REFERENCE["fps"])))
        # Background palette: one base colour and one accent per source.
        src["bg_r"], src["bg_g"], src["bg_b"] = (float(x) for x in rng.uniform(40, 215, size=3))
        src["bg2_r"], src["bg2_g"], src["bg2_b"] = (float(x) for x in rng.uniform(20, 235, size=3))
        out.append(src)
    return out


def background(src: Mapping[str, Any], res: int, rng: np.random.Generator) -> np.ndarray:
    """Static background (res, res, 3) uint8 RGB for one clip."""
    c1 = np.array([src["bg_r"], src["bg_g"], src["bg_b"]], dtype=np.float32)
    c2 = np.array([src["bg2_r"], src["bg2_g"], src["bg2_b"]], dtype=np.float32)
    c1 = np.clip(c1 + rng.normal(0, 12, size=3), 0, 255).astype(np.float32)
    kind = src["background"]
    if kind == "flat":
        return np.broadcast_to(np.rint(c1).astype(np.uint8), (res, res, 3)).copy()
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:res, 0:res].astype(np.float32) / max(res - 1, 1)
    ramp = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)[..., None]
    img = np.ascontiguousarray(np.rint((1 - ramp) * c1 + ramp * c2).astype(np.uint8))
    if kind == "clutter":
        for _ in range(int(rng.integers(4, 9))):
            colour = tuple(float(x) for x in rng.uniform(0, 255, size=3))
            x0, y0 = (int(v) for v in rng.integers(0, res, size=2))
            w, h = (int(v) for v in rng.integers(res // 10 + 1, res // 3 + 2, size=2))
            if rng.random() < 0.5:
                cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), colour, -1, cv2.LINE_AA)
            else:
                cv2.circle(img, (x0, y0), max(w // 2, 1), colour, -1, cv2.LINE_AA)
    return img


def apply_style(frames: np.ndarray, src: Mapping[str, Any], rng: np.random.Generator,
                *, size: int) -> np.ndarray:
    """Camera look on rendered frames (T, r, r, 3) uint8 -> (T, size, size, 3) uint8.

    Order: upsample from the render resolution, optics blur, colour cast,
    exposure (with per-frame flicker), contrast, gamma, saturation, then
    sensor noise drawn fresh for every frame. JPEG comes last, at write time.
    """
    t = frames.shape[0]
    # Cast, exposure, contrast and gamma act per channel: one 256-entry table per frame.
    v = np.arange(256, dtype=np.float32) / 255.0
    cast = np.array([src["cast_r"], src["cast_g"], src["cast_b"]], dtype=np.float32)
    gain = src["exposure"] * (1.0 + src["flicker"] * rng.standard_normal(t)).astype(np.float32)
    x = v[None, :, None] * cast[None, None, :] * gain[:, None, None]  # (T, 256, 3)
    luts = (np.clip((x - 0.5) * src["contrast"] + 0.5, 0.0, 1.0) ** np.float32(src["gamma"])) * 255
    sat, noise = np.float32(src["saturation"]), np.float32(src["noise"])
    out = np.empty((t, size, size, 3), dtype=np.uint8)
    # Frame by frame: small arrays stay in the heap (whole-clip temporaries cost page faults).
    for i, frame in enumerate(frames):
        if frame.shape[0] != size:
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
        if src["blur"] > 0.05:
            frame = cv2.GaussianBlur(frame, (0, 0), src["blur"])
        x = cv2.LUT(frame, luts[i:i + 1])  # (H, W, 3) float32
        grey = cv2.transform(x, np.full((1, 3), (1 - sat) / 3, dtype=np.float32))  # (H, W, 1)
        x *= sat
        x += grey[..., None] if grey.ndim == 2 else grey
        # Sensor noise, fresh per frame: a 256-level quantised Gaussian (fast to draw).
        u8 = np.frombuffer(rng.bytes(x.size), dtype=np.uint8).reshape(x.shape)
        x += cv2.LUT(u8, _GAUSS) * noise
        x += np.float32(0.5)
        np.clip(x, 0, 255, out=x)
        out[i] = x
    return out


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """RGB uint8 (H, W, 3) -> JPEG bytes (deterministic for the same input)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - cv2 only fails on invalid input
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 (H, W, 3); the source's compression as a pure function."""
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
