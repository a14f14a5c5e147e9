"""Temporal shifts: a stream that loses, holds, repeats, reorders or resamples frames.

Each shift draws an index map `idx` (T,) into the clip's own T frames and
returns `clip[idx]`, so T (the model's input shape) never changes. The shifts
see only the T sampled frames: they cannot invent frames between them, which
is also what a player does with a broken stream.

Severity level table (index = severity 1..5), T = clip length:

| shift            | parameter                                              | 1    | 2    | 3    | 4    | 5    |
| ---------------- | ------------------------------------------------------ | ---- | ---- | ---- | ---- | ---- |
| frame_drop_hold  | P(frame lost), lost frames show the last one received  | 0.1  | 0.2  | 0.3  | 0.45 | 0.6  |
| frame_drop_dup   | P(frame lost), the survivors are stretched over T      | 0.1  | 0.2  | 0.3  | 0.45 | 0.6  |
| burst_drop       | burst length / T, held on the frame before the burst   | 0.15 | 0.3  | 0.45 | 0.6  | 0.75 |
| freeze           | stall length / T; playback resumes late, tail is lost  | 0.15 | 0.3  | 0.45 | 0.6  | 0.75 |
| frame_rate       | capture rate / display rate (nearest-frame pulldown)   | 0.75 | 0.6  | 0.5  | 0.4  | 0.25 |
| local_shuffle    | window size whose frames are permuted                  | 2    | 3    | 4    | 5    | 6    |
| global_shuffle   | share of frames permuted anywhere in the clip          | 0.25 | 0.4  | 0.55 | 0.75 | 1.0  |
| reverse          | share of the clip played backwards (random segment)    | 0.3  | 0.45 | 0.6  | 0.8  | 1.0  |
| speed            | playback speed-up (or 1/x slow-down, 50/50)            | 1.25 | 1.5  | 2.0  | 2.5  | 3.0  |

Lost and frozen frames never include frame 0 (a stream starts with a frame).
"""
from __future__ import annotations

import numpy as np

from robustness.shifts import register_shift

__all__ = ["LEVELS", "pulldown_indices"]

LEVELS: dict[str, tuple[float, ...]] = {
    "frame_drop_hold": (0.1, 0.2, 0.3, 0.45, 0.6),
    "frame_drop_dup": (0.1, 0.2, 0.3, 0.45, 0.6),
    "burst_drop": (0.15, 0.3, 0.45, 0.6, 0.75),
    "freeze": (0.15, 0.3, 0.45, 0.6, 0.75),
    "frame_rate": (0.75, 0.6, 0.5, 0.4, 0.25),
    "local_shuffle": (2, 3, 4, 5, 6),
    "global_shuffle": (0.25, 0.4, 0.55, 0.75, 1.0),
    "reverse": (0.3, 0.45, 0.6, 0.8, 1.0),
    "speed": (1.25, 1.5, 2.0, 2.5, 3.0),
}


def _level(name: str, severity: int) -> float:
    return LEVELS[name][severity - 1]


def _lost(t: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Flags of lost frames: Bernoulli(p), frame 0 kept; nested across severities
    (one uniform draw per frame), so a higher p loses a superset of frames."""
    u = rng.random(t)
    lost = u < p
    lost[0] = False
    return lost


def _burst(t: int, frac: float, rng: np.random.Generator) -> tuple[int, int]:
    """Start (>= 1) and length (>= 1) of a burst covering `frac` of the clip."""
    length = int(np.clip(round(frac * t), 1, max(t - 1, 1)))
    start = 1 + int(np.floor(rng.random() * max(t - length, 1)))
    return start, length


@register_shift("frame_drop_hold", "temporal")
def frame_drop_hold(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Random packet loss: a lost frame shows the last frame received (timing kept)."""
    t = clip.shape[0]
    lost = _lost(t, _level("frame_drop_hold", severity), rng)
    idx = np.maximum.accumulate(np.where(lost, 0, np.arange(t)))
    return clip[idx]


@register_shift("frame_drop_dup", "temporal")
def frame_drop_dup(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Lost frames removed, survivors duplicated evenly to fill T (the action slows down)."""
    t = clip.shape[0]
    kept = np.flatnonzero(~_lost(t, _level("frame_drop_dup", severity), rng))
    idx = kept[np.arange(t) * len(kept) // t]
    return clip[idx]


@register_shift("burst_drop", "temporal")
def burst_drop(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A burst of consecutive frames lost; the frame before it is held (timing kept)."""
    t = clip.shape[0]
    start, length = _burst(t, _level("burst_drop", severity), rng)
    idx = np.arange(t)
    idx[start:start + length] = start - 1
    return clip[idx]


@register_shift("freeze", "temporal")
def freeze(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Buffering: the picture stalls, then resumes where it stopped; the tail never plays."""
    t = clip.shape[0]
    start, length = _burst(t, _level("freeze", severity), rng)
    idx = np.concatenate([np.arange(start), np.full(length, start - 1), np.arange(start, t)])[:t]
    return clip[idx]


def pulldown_indices(t: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Index map of a camera capturing at `ratio` x the display rate (ratio <= 1): each
    display slot shows the latest captured frame, capture phase random.  # (T,)"""
    phase = rng.random()
    i = np.arange(t)
    k = np.floor(i * ratio + phase)  # captures so far
    idx = np.ceil((k - phase) / ratio - 1e-9).astype(int)  # time of the latest capture
    return np.clip(idx, 0, i)


@register_shift("frame_rate", "temporal")
def frame_rate(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A lower capture frame rate shown at the display rate (nearest-frame pulldown)."""
    return clip[pulldown_indices(clip.shape[0], _level("frame_rate", severity), rng)]


@register_shift("local_shuffle", "temporal")
def local_shuffle(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Out-of-order delivery within short windows (random window offset)."""
    t = clip.shape[0]
    w = int(_level("local_shuffle", severity))
    idx = np.arange(t)
    offset = int(rng.integers(w))
    edges = [0, *range(offset or w, t, w), t]
    for a, b in zip(edges[:-1], edges[1:]):
        idx[a:b] = rng.permutation(idx[a:b])
    return clip[idx]


@register_shift("global_shuffle", "temporal")
def global_shuffle(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A share of the frames moved anywhere (a cyclic shift among them, so all move)."""
    t = clip.shape[0]
    k = int(np.clip(round(_level("global_shuffle", severity) * t), 2, t))
    chosen = np.sort(rng.permutation(t)[:k])
    idx = np.arange(t)
    idx[chosen] = np.roll(chosen, int(rng.integers(1, k)))
    return clip[idx]


@register_shift("reverse", "temporal")
def reverse(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A segment played backwards; at severity 5 the whole clip."""
    t = clip.shape[0]
    length = int(np.clip(round(_level("reverse", severity) * t), 2, t))
    start = int(rng.integers(t - length + 1))
    idx = np.arange(t)
    idx[start:start + length] = idx[start:start + length][::-1]
    return clip[idx]


@register_shift("speed", "temporal")
def speed(clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Playback speed changed: faster (holds the last frame once it runs out) or slower
    (a random window of the clip, frames repeated), direction 50/50."""
    t = clip.shape[0]
    factor = _level("speed", severity)
    rate = factor if rng.random() < 0.5 else 1.0 / factor
    span = (t - 1) * rate
    start = rng.random() * max(0.0, (t - 1) - span)
    idx = np.clip(np.floor(start + np.arange(t) * rate + 0.5).astype(int), 0, t - 1)
    return clip[idx]
