"""Expressions as facial-action prototypes with an onset-apex-offset time course.

Each emotion is a weight vector over a small set of facial actions (loosely
FACS action units). The confusable pairs DFEW is known for are built in:
fear and surprise share raised brows and widened lids (fear adds lip stretch
and brows drawn together), disgust and anger share lowered brows (disgust adds
the nose wrinkle and upper-lip raise), and a low-intensity sad face is close
to neutral. `confusability` mixes each prototype toward its partner.
"""
from __future__ import annotations

import numpy as np

from bench.data.labels import EMOTIONS

__all__ = [
    "ACTIONS", "PROTOTYPES", "PARTNERS", "HEAD_MOTION", "POSE_KEYS", "prototype", "envelope",
    "blink_track", "talk_track",
]

# Facial actions, in the order of every action vector in this package.
ACTIONS: tuple[str, ...] = (
    "brow_raise",        # AU1+2: whole brow up
    "brow_inner_raise",  # AU1: inner ends up (sad, fear)
    "brow_lower",        # AU4: brows down
    "brow_together",     # AU4 corrugator: inner ends toward the midline
    "lid_widen",         # AU5: upper lid up
    "lid_tighten",       # AU7: narrower eye
    "cheek_raise",       # AU6: cheeks up, lower lid up
    "lip_corner_up",     # AU12: smile
    "lip_corner_down",   # AU15
    "lip_stretch",       # AU20: mouth wider, corners pulled sideways
    "lip_press",         # AU24: thin, pressed lips
    "jaw_drop",          # AU26/27: mouth opens
    "nose_wrinkle",      # AU9
    "upper_lip_raise",   # AU10
)
A = {name: i for i, name in enumerate(ACTIONS)}

PROTOTYPES: dict[str, dict[str, float]] = {
    "happy": {"cheek_raise": 0.8, "lip_corner_up": 1.0, "lid_tighten": 0.25, "jaw_drop": 0.25},
    "sad": {"brow_inner_raise": 0.9, "brow_together": 0.4, "lip_corner_down": 0.8,
            "lid_tighten": 0.3},
    "neutral": {},
    "angry": {"brow_lower": 1.0, "brow_together": 0.7, "lid_tighten": 0.5, "lip_press": 0.8,
              "lid_widen": 0.2},
    "surprise": {"brow_raise": 1.0, "brow_inner_raise": 0.5, "lid_widen": 0.9, "jaw_drop": 0.9},
    "disgust": {"brow_lower": 0.6, "brow_together": 0.3, "nose_wrinkle": 1.0,
                "upper_lip_raise": 0.9, "lid_tighten": 0.4, "lip_corner_down": 0.3,
                "cheek_raise": 0.3},
    "fear": {"brow_raise": 0.8, "brow_inner_raise": 0.8, "brow_together": 0.6, "lid_widen": 1.0,
             "lip_stretch": 0.9, "jaw_drop": 0.35},
}
# Head movement that goes with each expression at intensity 1, following the same
# onset-apex-offset envelope: (yaw, roll, scale, tx, ty) in radians / face units.
# Yaw and roll get a random sign per clip. Whole-face motion is a large-area cue a
# small video model picks up early; the confusable pairs share theirs (fear and
# surprise pull back, sad and a low-intensity neutral-ish face look down).
POSE_KEYS: tuple[str, ...] = ("yaw", "roll", "scale", "tx", "ty")
HEAD_MOTION: dict[str, tuple[float, float, float, float, float]] = {
    "happy": (0.0, 0.07, 0.02, 0.0, -0.02),
    "sad": (0.0, 0.04, -0.02, 0.0, 0.045),
    "neutral": (0.0, 0.0, 0.0, 0.0, 0.0),
    "angry": (0.0, 0.0, 0.09, 0.0, 0.015),
    "surprise": (0.0, 0.0, -0.08, 0.0, -0.035),
    "disgust": (0.22, 0.03, -0.04, 0.0, 0.0),
    "fear": (0.07, 0.0, -0.09, 0.0, 0.01),
}
# Which prototype each class drifts toward as confusability grows.
PARTNERS: dict[str, str] = {
    "fear": "surprise", "surprise": "fear", "disgust": "angry", "angry": "disgust",
    "sad": "neutral",
}


def _vector(weights: dict[str, float]) -> np.ndarray:
    v = np.zeros(len(ACTIONS), dtype=np.float64)
    for name, w in weights.items():
        v[A[name]] = w
    return v


def prototype(emotion: str, *, confusability: float = 0.0) -> np.ndarray:
    """Action weights (len(ACTIONS),) of an emotion, mixed toward its partner.

    confusability 0 keeps the prototypes apart; 1 mixes half-way, which makes
    the pair differ only in strength of the shared actions.
    """
    if emotion not in EMOTIONS:
        raise KeyError(emotion)
    v = _vector(PROTOTYPES[emotion])
    partner = PARTNERS.get(emotion)
    if partner is None:
        return v
    m = 0.5 * float(np.clip(confusability, 0.0, 1.0))
    return (1.0 - m) * v + m * _vector(PROTOTYPES[partner])


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def envelope(num_frames: int, onset: int, apex: int, apex_end: int, offset: int,
             *, residual: float = 0.0) -> np.ndarray:
    """Activation (T,) in [0, 1]: 0 before onset, smooth rise to apex, plateau, fall.

    After `offset` the activation stays at `residual` (expressions rarely
    vanish completely within a clip).
    """
    t = np.arange(num_frames, dtype=np.float64)
    rise = _smoothstep((t - onset) / max(apex - onset, 1))
    fall = 1.0 - (1.0 - residual) * _smoothstep((t - apex_end) / max(offset - apex_end, 1))
    return np.where(t <= apex_end, rise, fall)


def blink_track(num_frames: int, fps: float, rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Lid closure (T,) in [0, 1]: Poisson blinks of about 0.15-0.25 s each."""
    closure = np.zeros(num_frames)
    duration_s = num_frames / fps
    n = rng.poisson(rate_hz * duration_s)
    t = np.arange(num_frames) / fps
    for _ in range(n):
        centre = rng.uniform(-0.1, duration_s + 0.1)
        half = rng.uniform(0.07, 0.12)
        closure = np.maximum(closure, np.clip(1.0 - np.abs(t - centre) / half, 0.0, 1.0))
    return closure


def talk_track(num_frames: int, fps: float, amplitude: float,
               rng: np.random.Generator) -> np.ndarray:
    """Jaw opening (T,) >= 0 from syllable-rate (3-6 Hz) motion with pauses."""
    if amplitude <= 0.0:
        return np.zeros(num_frames)
    t = np.arange(num_frames) / fps
    f1, f2 = rng.uniform(3.0, 6.0), rng.uniform(1.0, 2.5)
    p1, p2 = rng.uniform(0, 2 * np.pi, size=2)
    wave = np.maximum(0.0, np.sin(2 * np.pi * f1 * t + p1)) * (0.6 + 0.4 * np.sin(2 * np.pi * f2 * t + p2))
    return amplitude * np.clip(wave, 0.0, None)
