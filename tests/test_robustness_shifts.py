"""Every registered shift at every severity: shape, dtype, purity, determinism, strength."""
from __future__ import annotations

import numpy as np
import pytest

from bench.errors import ConfigError
from robustness.shifts import (DEFAULT_SHIFTS, KINDS, SEVERITIES, SHIFTS, apply_shift,
                               parse_severities, parse_shifts, shift_rng)


def _clip(t: int = 8, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A face-like blob over texture whose brightness ramps with time, so a temporal
    shift's distance from the clean clip measures how far frames moved."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = 40 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + rng.normal(0, 6, (h, w))
    blob = 60 * np.exp(-(((xx - w / 2) / (w / 5)) ** 2 + ((yy - h / 2) / (h / 4)) ** 2))
    frames = [np.stack([110 + texture + blob + 12 * i + c * 10 for c in range(3)], -1)
              for i in range(t)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)  # (T, H, W, 3)


CLIP = _clip()


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", SHIFTS.names())
def test_shape_dtype_purity_determinism(name, severity):
    before = CLIP.copy()
    a = apply_shift(name, CLIP, severity, shift_rng(name, severity, 0, 3))
    b = apply_shift(name, CLIP, severity, shift_rng(name, severity, 0, 3))
    assert a.shape == CLIP.shape and a.dtype == np.uint8
    assert np.array_equal(CLIP, before), "a shift must not modify its input"
    assert np.array_equal(a, b), "same (shift, severity, seed, clip) must give the same clip"
    assert int(a.min()) >= 0 and int(a.max()) <= 255 and a.flags.c_contiguous


@pytest.mark.parametrize("name", SHIFTS.names())
def test_other_clip_shapes(name):
    clip = _clip(t=5, h=48, w=64)
    out = apply_shift(name, clip, 5, np.random.default_rng(1))
    assert out.shape == clip.shape and out.dtype == np.uint8


def _distance(name: str, severity: int, n: int = 16) -> float:
    """Mean absolute difference from the clean clip over n clips and draws."""
    d = []
    for i in range(n):
        clip = CLIP if i % 2 == 0 else _clip(seed=i)
        out = apply_shift(name, clip, severity, shift_rng(name, severity, 0, i))
        d.append(np.abs(out.astype(np.float32) - clip).mean())
    return float(np.mean(d))


@pytest.mark.parametrize("name", SHIFTS.names())
def test_strength_grows_with_severity(name):
    d = [_distance(name, s) for s in SEVERITIES]
    assert d[0] > 0, f"{name} at severity 1 changed nothing"
    # Non-decreasing up to 3 % (random draws), and clearly stronger at 5 than at 1.
    for lo, hi in zip(d, d[1:]):
        assert hi >= 0.97 * lo, f"{name}: distance by severity {np.round(d, 2)}"
    assert d[-1] > 1.3 * d[0], f"{name}: distance by severity {np.round(d, 2)}"


def test_noise_is_fresh_per_frame_and_style_is_held():
    flat = np.full((4, 32, 32, 3), 128, np.uint8)
    noisy = apply_shift("gaussian_noise", flat, 3, np.random.default_rng(0)).astype(int) - 128
    assert not np.array_equal(noisy[0], noisy[1])  # not one noise map repeated
    for name in ("colour_temperature", "exposure", "defocus_blur", "jpeg", "fog", "shadow"):
        out = apply_shift(name, flat, 4, np.random.default_rng(0))
        assert all(np.array_equal(out[0], f) for f in out[1:]), f"{name} varies across frames"


def test_temporal_shifts_only_reuse_clip_frames():
    for name in (n for n in SHIFTS.names() if KINDS[n] == "temporal"):
        out = apply_shift(name, CLIP, 5, np.random.default_rng(2))
        for frame in out:
            assert any(np.array_equal(frame, f) for f in CLIP), name


def test_seeds_and_clips_get_different_corruptions():
    a = apply_shift("gaussian_noise", CLIP, 3, shift_rng("gaussian_noise", 3, 0, 0))
    b = apply_shift("gaussian_noise", CLIP, 3, shift_rng("gaussian_noise", 3, 1, 0))
    c = apply_shift("gaussian_noise", CLIP, 3, shift_rng("gaussian_noise", 3, 0, 1))
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_parse_shifts_and_severities():
    assert parse_shifts(None) == list(DEFAULT_SHIFTS)
    assert parse_shifts("all") == SHIFTS.names()
    assert set(parse_shifts("temporal")) == {n for n in SHIFTS.names() if KINDS[n] == "temporal"}
    assert parse_shifts("jpeg,reverse,jpeg") == ["jpeg", "reverse"]
    with pytest.raises(ConfigError, match="Did you mean 'jpeg'.*Valid:.*reverse"):
        parse_shifts("jpg")
    assert parse_severities("5,1,3") == [1, 3, 5] and parse_severities("all") == [1, 2, 3, 4, 5]
    for bad in ("7", "0", "x", "1,6"):
        with pytest.raises(ConfigError, match="valid: 1, 2, 3, 4, 5"):
            parse_severities(bad)
    with pytest.raises(ConfigError, match="out of range"):
        apply_shift("jpeg", CLIP, 6, np.random.default_rng(0))
