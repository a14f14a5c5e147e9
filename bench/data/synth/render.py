"""Rendering one clip from its table row: time courses -> faces -> camera look.

    row -> action tracks (T, A), blinks (T,), pose (T, 5)
        -> draw_face per frame at the source's render resolution
        -> apply_style (upsample, blur, colour, noise) -> (T, H, W, 3) uint8
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from bench.data.synth.expressions import ACTIONS, POSE_KEYS, blink_track, envelope, talk_track
from bench.data.synth.faces import draw_face
from bench.data.synth.sources import apply_style, background

__all__ = ["expression_envelope", "action_tracks", "pose_track", "render_clip"]

_JAW = ACTIONS.index("jaw_drop")


def expression_envelope(row: Mapping[str, Any]) -> np.ndarray:
    """The clip's expression activation (T,) in [0, 1]."""
    return envelope(int(row["num_frames"]), int(row["onset"]), int(row["apex"]),
                    int(row["apex_end"]), int(row["offset"]), residual=float(row["residual"]))


def action_tracks(row: Mapping[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame actions (T, A) and lid closure (T,): resting face + expression + talking."""
    n, fps = int(row["num_frames"]), float(row["fps"])
    env = expression_envelope(row)  # (T,)
    rest = np.array([row[f"rest_{a}"] for a in ACTIONS], dtype=np.float64)
    act = np.array([row[f"act_{a}"] for a in ACTIONS], dtype=np.float64)
    tracks = rest[None, :] + env[:, None] * act[None, :]  # (T, A)
    tracks[:, _JAW] += talk_track(n, fps, float(row["talk"]), rng)
    blinks = blink_track(n, fps, float(row["blink_rate"]), rng)
    return tracks, blinks


def pose_track(row: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """(yaw, roll, scale, tx, ty) per frame (T, 5): clip pose + drift + sway + expression motion."""
    n = int(row["num_frames"])
    s = np.linspace(0.0, 1.0, n)[:, None]  # (T, 1)
    base = np.array([row["yaw"], row["roll"], row["scale"], row["tx"], row["ty"]])
    drift = np.array([row["drift_yaw"], row["drift_roll"], row["drift_scale"],
                      row["drift_tx"], row["drift_ty"]])
    freq = rng.uniform(0.2, 0.8) * n / float(row["fps"])
    sway = np.sin(2 * np.pi * freq * s + rng.uniform(0, 2 * np.pi)) * 0.25 * drift
    head = np.array([row.get(f"head_{k}", 0.0) for k in POSE_KEYS])  # (5,)
    pose = base + (s - 0.5) * drift + sway + expression_envelope(row)[:, None] * head
    pose[:, 2] = np.clip(pose[:, 2], 0.75, 1.75)
    return pose


def render_clip(row: Mapping[str, Any], rng: np.random.Generator, *, size: int | None = None) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 RGB of one clip; H = W = size (default: the table's frame size)."""
    out = int(size if size is not None else row.get("size", 80))
    res = min(int(row["render_res"]), out)
    tracks, blinks = action_tracks(row, rng)
    pose = pose_track(row, rng)
    bg = background(row, res, rng)  # (r, r, 3)
    frames = np.empty((len(tracks), res, res, 3), dtype=np.uint8)
    for t in range(len(tracks)):
        frames[t] = bg
        draw_face(frames[t], row, tracks[t], float(blinks[t]), pose[t])
    return apply_style(frames, row, rng, size=out)
