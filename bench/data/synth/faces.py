"""Subjects (face geometry, colouring, expression style) and drawing one face frame.

Faces are drawn with anti-aliased cv2 primitives at sub-pixel precision in a
face-centred frame (units: fraction of the image side), then posed: a cheap
yaw (features move on a sphere, so the nose moves most), roll, scale and
translation.
"""
from __future__ import annotations

from typing import Any, Mapping

import cv2
import numpy as np

from bench.data.synth.expressions import ACTIONS

__all__ = ["sample_subject", "draw_face", "RESTING_ACTIONS"]

_SHIFT = 4                 # cv2 fixed-point bits: coordinates in 1/16 px
_ONE = 1 << _SHIFT
_SKIN_LIGHT = np.array([238.0, 204.0, 178.0])
_SKIN_DARK = np.array([92.0, 60.0, 44.0])
# Actions a resting face may carry (a habitual frown, smile, pout...).
RESTING_ACTIONS = ("brow_lower", "brow_inner_raise", "lip_corner_down", "lip_corner_up",
                   "lid_tighten", "brow_raise")
A = {name: i for i, name in enumerate(ACTIONS)}
# Faces fill most of the frame, like the face-cropped clips of DFEW.
FACE_ZOOM = 1.25


def sample_subject(rng: np.random.Generator, *, style_strength: float,
                   pose_range: float) -> dict[str, Any]:
    """One subject's geometry, colours, expression style and habitual pose."""
    s: dict[str, Any] = {}
    u = rng.uniform
    # Geometry (fractions of the image side).
    s.update(face_w=u(0.27, 0.33), face_h=u(0.34, 0.40), eye_dx=u(0.10, 0.135),
             eye_y=u(-0.10, -0.06), eye_w=u(0.050, 0.064), eye_h=u(0.026, 0.034),
             brow_gap=u(0.06, 0.08), brow_len=u(1.0, 1.3), brow_thick=u(0.018, 0.032),
             nose_len=u(0.10, 0.14), mouth_w=u(0.08, 0.11), mouth_dy=u(0.06, 0.085),
             lip_thick=u(0.011, 0.019), iris_size=u(0.5, 0.8))
    tone = rng.beta(1.3, 1.3)
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK + rng.normal(0, 8, size=3)
    s["skin_r"], s["skin_g"], s["skin_b"] = np.clip(skin, 20, 255)
    hair = rng.uniform(10, 90) * np.array([1.0, 0.8, 0.6]) * rng.uniform(0.6, 1.6, size=3)
    if rng.random() < 0.15:  # blond / grey
        hair = rng.uniform(150, 220) * np.array([1.0, 0.9, 0.7])
    s["hair_r"], s["hair_g"], s["hair_b"] = np.clip(hair, 0, 255)
    s["hair_style"] = int(rng.integers(0, 3))  # 0 short, 1 cap, 2 long
    s["iris_c"] = u(20, 110)
    # Expression style: per-action gain, a resting face, talkativeness, blinking.
    gains = np.exp(rng.normal(0.0, 0.3 * style_strength, size=len(ACTIONS)))
    for name, g in zip(ACTIONS, gains):
        s[f"gain_{name}"] = g
    rest = np.zeros(len(ACTIONS))
    if rng.random() < 0.5:
        name = RESTING_ACTIONS[int(rng.integers(len(RESTING_ACTIONS)))]
        rest[A[name]] = style_strength * u(0.1, 0.35)
    for name, r in zip(ACTIONS, rest):
        s[f"rest_{name}"] = r
    s["talkativeness"] = rng.beta(2.0, 3.0)
    s["blink_rate"] = u(0.15, 0.6)
    # Habitual pose (per-clip jitter and drift are added in the table).
    pr = pose_range
    s.update(yaw=float(np.clip(rng.normal(0, 0.22 * pr), -0.7, 0.7)),
             roll=rng.normal(0, 0.07 * pr), scale=float(FACE_ZOOM * np.clip(1 + rng.normal(0, 0.07 * pr), 0.75, 1.25)),
             tx=rng.normal(0, 0.035 * pr), ty=rng.normal(0, 0.035 * pr))
    return {k: float(v) if isinstance(v, (np.floating, float)) else v for k, v in s.items()}


_T9 = np.linspace(0, 1, 9)[:, None]
_T13 = np.linspace(0, 1, 13)[:, None]
_XS = np.linspace(-1, 1, 9)


def _bezier(p0: tuple[float, float], yc: float, p2: tuple[float, float], n: int = 9) -> np.ndarray:
    """Quadratic curve (n, 2) from p0 to p2 that passes through (mid x, yc)."""
    t = _T9 if n == 9 else _T13
    c = np.array([0.5 * (p0[0] + p2[0]), 2 * yc - 0.5 * (p0[1] + p2[1])])
    return (1 - t) ** 2 * np.array(p0) + 2 * (1 - t) * t * c + t ** 2 * np.array(p2)


class _Canvas:
    """Queues face-frame primitives, then poses all their points at once and draws them.

    Batching the pose transform keeps numpy's per-call overhead to one call
    per frame instead of one per primitive.
    """

    def __init__(self, img: np.ndarray, face: Mapping[str, Any], pose: np.ndarray) -> None:
        self.img = img
        self.res = img.shape[0]
        self.pose = pose
        self.fw = face["face_w"]
        self.ops: list[tuple] = []
        self.pts: list[np.ndarray] = []
        self.depth: list[float] = []
        self.n = 0

    def _add(self, pts: np.ndarray, depth: float) -> tuple[int, int]:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        self.pts.append(pts)
        self.depth.extend([depth] * len(pts))
        start, self.n = self.n, self.n + len(pts)
        return start, self.n

    def poly(self, pts: np.ndarray, colour: tuple, *, fill: bool = False, thick: float = 0.0,
             depth: float = 0.0) -> None:
        self.ops.append(("fill" if fill else "line", *self._add(pts, depth), colour, thick))

    def ellipse(self, c: tuple[float, float], ax: tuple[float, float], colour: tuple,
                *, depth: float = 0.0) -> None:
        self.ops.append(("ellipse", *self._add(np.array(c), depth), colour, ax))

    def flush(self) -> np.ndarray:
        yaw, roll, scale, tx, ty = (float(v) for v in self.pose)
        sy, cy, sr, cr = np.sin(yaw), np.cos(yaw), np.sin(roll), np.cos(roll)
        pts = np.concatenate(self.pts)  # (N, 2) face frame
        z = self.fw * 0.8 * np.sqrt(np.clip(1 - (pts[:, 0] / self.fw) ** 2, 0, 1)) + self.depth
        x = pts[:, 0] * cy + z * sy
        k = scale * self.res * _ONE
        px = np.rint(np.stack([(x * cr - pts[:, 1] * sr) * k + (0.5 + tx) * self.res * _ONE,
                               (x * sr + pts[:, 1] * cr) * k + (0.5 + ty) * self.res * _ONE],
                              axis=1)).astype(np.int32)  # (N, 2) fixed point
        ang = float(np.degrees(roll))
        for kind, a, b, colour, extra in self.ops:
            if kind == "fill":
                cv2.fillPoly(self.img, [px[a:b]], colour, cv2.LINE_AA, _SHIFT)
            elif kind == "line":
                w = max(1, int(round(extra * scale * self.res)))
                cv2.polylines(self.img, [px[a:b]], False, colour, w, cv2.LINE_AA, _SHIFT)
            else:
                axes = (max(1, int(round(extra[0] * (0.75 + 0.25 * cy) * k))),
                        max(1, int(round(extra[1] * k))))
                cv2.ellipse(self.img, (int(px[a, 0]), int(px[a, 1])), axes, ang, 0, 360, colour,
                            -1, cv2.LINE_AA, _SHIFT)
        return self.img


def _mix(a: np.ndarray, b: np.ndarray, w: float) -> tuple:
    return tuple(float(v) for v in (1 - w) * a + w * b)


def draw_face(img: np.ndarray, f: Mapping[str, Any], act: np.ndarray, blink: float,
              pose: np.ndarray) -> np.ndarray:
    """Draw one face on `img` (r, r, 3) uint8 RGB, in place, and return it.

    act: action activations (len(ACTIONS),); blink: lid closure in [0, 1];
    pose: (yaw, roll, scale, tx, ty).
    """
    a = {name: float(max(v, 0.0)) for name, v in zip(ACTIONS, act)}
    cv = _Canvas(img, f, pose)
    skin = np.array([f["skin_r"], f["skin_g"], f["skin_b"]])
    dark = skin * 0.45
    hair = np.array([f["hair_r"], f["hair_g"], f["hair_b"]])
    fw, fh = f["face_w"], f["face_h"]
    jaw = min(a["jaw_drop"], 1.5)

    # Head: hair behind, face, hair on top.
    if f["hair_style"] == 2:
        cv.ellipse((0.0, -0.03), (fw * 1.18, fh * 1.12), tuple(hair), depth=-0.8 * fw)
    cv.ellipse((0.0, 0.012 * jaw), (fw, fh + 0.02 * jaw), tuple(skin), depth=-0.8 * fw)
    if f["hair_style"] in (1, 2):
        cv.poly(_bezier((-fw * 1.02, -fh * 0.6), -fh * 1.12, (fw * 1.02, -fh * 0.6), 13),
                tuple(hair), fill=True)
    else:
        cv.poly(_bezier((-fw * 0.9, -fh * 0.7), -fh * 1.06, (fw * 0.9, -fh * 0.7), 13),
                tuple(hair), fill=True)

    # Cheeks (raise: rounder, higher, rosier).
    ck = a["cheek_raise"]
    if ck > 0.02:
        col = _mix(skin, np.array([205.0, 95.0, 95.0]), min(0.35 * ck, 0.5))
        for sx in (-1, 1):
            cv.ellipse((sx * (f["eye_dx"] + 0.015), f["eye_y"] + 0.085 - 0.02 * ck),
                       (0.04, 0.025 + 0.008 * ck), col)

    # Eyes.
    ew, eh = f["eye_w"], f["eye_h"]
    open_up = (1 + 1.1 * a["lid_widen"] - 0.5 * a["lid_tighten"] - 0.2 * ck) * (1 - blink)
    open_lo = (1 - 0.5 * a["lid_tighten"] - 0.5 * ck + 0.4 * a["lid_widen"]) * (1 - blink)
    xs = _XS
    for sx in (-1, 1):
        cx, cy = sx * f["eye_dx"], f["eye_y"]
        upper = np.stack([cx + xs * ew, cy - eh * max(open_up, 0.04) * (1 - xs ** 2)], 1)
        lower = np.stack([cx + xs[::-1] * ew, cy + 0.6 * eh * max(open_lo, 0.04) * (1 - xs ** 2)], 1)
        if open_up > 0.12:
            cv.poly(np.concatenate([upper, lower]), (235, 235, 230), fill=True)
            r = min(ew * f["iris_size"] * 0.6, eh * (open_up + 0.6 * max(open_lo, 0)) * 0.55)
            cv.ellipse((cx, cy + 0.15 * eh * (open_lo - open_up)), (r, r), (f["iris_c"],) * 3)
        cv.poly(upper, tuple(dark * 0.6), thick=0.012)
        if a["lid_tighten"] + ck > 0.3:  # tension line under the eye
            cv.poly(lower, _mix(skin, dark, min(0.6, 0.5 * (a["lid_tighten"] + ck))), thick=0.008)

    # Brows.
    lift = -0.055 * a["brow_raise"] + 0.035 * a["brow_lower"]
    inner_lift = -0.055 * a["brow_inner_raise"] + 0.02 * a["brow_lower"] + 0.015 * a["brow_together"]
    pull = 0.03 * a["brow_together"]
    bl = ew * f["brow_len"]
    hair_brow = tuple(hair * 0.8)
    for sx in (-1, 1):
        by = f["eye_y"] - f["brow_gap"] + lift
        inner = (sx * (f["eye_dx"] - 0.9 * bl - pull), by + inner_lift)
        mid = (sx * (f["eye_dx"] + 0.1 * bl), by - 0.012 + 0.4 * inner_lift)
        outer = (sx * (f["eye_dx"] + 1.05 * bl), by + 0.008 - 0.2 * inner_lift)
        cv.poly(np.array([inner, mid, outer]), hair_brow, thick=f["brow_thick"])
    tog = a["brow_together"] + 0.5 * a["brow_lower"]
    if tog > 0.25:  # vertical furrows between the brows
        col = _mix(skin, dark, min(0.7, 0.6 * tog))
        by = f["eye_y"] - f["brow_gap"] + lift + inner_lift
        for sx in (-0.012, 0.012):
            cv.poly(np.array([(sx, by - 0.012), (sx * 0.8, by + 0.03)]), col, thick=0.011)

    # Nose: bridge, tip, nostrils; wrinkle lifts the nostrils and adds creases.
    nw = a["nose_wrinkle"]
    ny = f["eye_y"] + f["nose_len"] - 0.018 * nw
    cv.poly(np.array([(0.0, f["eye_y"] + 0.02), (0.008, ny - 0.01), (0.0, ny)]),
            _mix(skin, dark, 0.45), thick=0.01, depth=0.05)
    for sx in (-1, 1):
        cv.ellipse((sx * (0.02 + 0.006 * nw), ny), (0.011 + 0.004 * nw, 0.006), tuple(dark * 0.7),
                   depth=0.03)
    if nw > 0.2:
        col = _mix(skin, dark, min(0.75, 0.7 * nw))
        for k in range(3):
            y = f["eye_y"] + 0.025 + 0.014 * k
            cv.poly(np.array([(-0.026, y), (0.0, y - 0.008), (0.026, y)]), col, thick=0.01, depth=0.04)
    fold = max(a["upper_lip_raise"], 0.8 * a["lip_corner_up"], 0.6 * nw)

    # Mouth.
    my = ny + f["mouth_dy"]
    mw = f["mouth_w"] * (1 + 0.5 * a["lip_stretch"] + 0.2 * a["lip_corner_up"] - 0.2 * a["lip_press"])
    cy = my - 0.048 * a["lip_corner_up"] + 0.042 * a["lip_corner_down"] + 0.008 * a["lip_stretch"]
    left, right = (-mw, cy), (mw, cy)
    lt = f["lip_thick"] * (1 - 0.7 * min(a["lip_press"], 1.0))
    up_in = my - 0.004 - 0.032 * a["upper_lip_raise"]
    lo_in = my + 0.004 + 0.075 * jaw + 0.015 * a["lip_stretch"] * jaw
    if fold > 0.2:  # nasolabial folds
        col = _mix(skin, dark, min(0.6, 0.5 * fold))
        for sx in (-1, 1):
            cv.poly(np.array([(sx * 0.03, ny + 0.005), (sx * (mw + 0.012), cy + 0.012)]), col,
                    thick=0.009)
    lip = _mix(skin, np.array([170.0, 60.0, 70.0]), 0.45)
    outer = np.concatenate([_bezier(left, up_in - lt, right), _bezier(right, lo_in + 1.3 * lt, left)])
    cv.poly(outer, lip, fill=True)
    if lo_in - up_in > 0.012:  # open mouth: dark inside, teeth at the top
        inside = np.concatenate([_bezier(left, up_in, right), _bezier(right, lo_in, left)])
        cv.poly(inside, (45, 20, 25), fill=True)
        teeth_h = min(0.016, 0.5 * (lo_in - up_in))
        cv.poly(np.concatenate([_bezier((left[0] * 0.7, cy), up_in, (right[0] * 0.7, cy)),
                                _bezier((right[0] * 0.6, cy + 0.3 * teeth_h), up_in + teeth_h,
                                        (left[0] * 0.6, cy + 0.3 * teeth_h))]),
                (230, 228, 215), fill=True)
    else:
        cv.poly(_bezier(left, 0.5 * (up_in + lo_in), right), tuple(dark * 0.55), thick=0.009)
    return cv.flush()
