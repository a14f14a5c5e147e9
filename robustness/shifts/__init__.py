"""Distribution shifts by name: `SHIFTS.get("jpeg")(clip, severity, rng) -> clip`.

Every shift is a pure function of a uint8 clip (T, H, W, 3) as `ClipDataset.get_frames`
returns it (before `to_tensor`), a severity 1-5 and a numpy Generator; it returns a
new uint8 clip of the same shape. Three families (`KINDS[name]`):

    style     camera and encoding: colour, exposure, blur, noise, JPEG, fog ...   (style.py)
    temporal  frames lost, held, repeated, reordered, resampled; T is kept       (temporal.py)
    camera    a whole unseen camera drawn from the synthetic generator's looks   (camera.py)

`DEFAULT_SHIFTS` is the fast representative subset the CLI runs unless told
`--shifts all`; each module's docstring holds its severity level table.
"""
from __future__ import annotations

import difflib
import zlib
from typing import Callable

import numpy as np

from bench.errors import ConfigError
from bench.registry import Registry

__all__ = ["SHIFTS", "KINDS", "SEVERITIES", "DEFAULT_SHIFTS", "ShiftFn", "register_shift",
           "check_severity", "parse_shifts", "parse_severities", "shift_rng", "apply_shift"]

ShiftFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
SHIFTS: Registry[ShiftFn] = Registry("shift")
KINDS: dict[str, str] = {}
SEVERITIES = (1, 2, 3, 4, 5)


def register_shift(name: str, kind: str) -> Callable[[ShiftFn], ShiftFn]:
    """Register a shift under `name` in family `kind` (style, temporal or camera)."""
    def deco(fn: ShiftFn) -> ShiftFn:
        SHIFTS.register(name)(fn)
        KINDS[name] = kind
        return fn
    return deco


def check_severity(severity: int) -> int:
    if isinstance(severity, bool) or int(severity) != severity or severity not in SEVERITIES:
        raise ConfigError(f"severity {severity!r} is out of range; valid: "
                          f"{', '.join(map(str, SEVERITIES))}")
    return int(severity)


def shift_rng(shift: str, severity: int, seed: int, clip: int) -> np.random.Generator:
    """The generator of one corrupted clip: the same for every model (paired comparisons).

    crc32 rather than hash(): Python salts str hashes per process.
    """
    key = zlib.crc32(shift.encode())
    return np.random.default_rng(np.random.SeedSequence([int(seed), key, int(severity), int(clip)]))


def apply_shift(name: str, clip: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Check inputs and run one shift (the registry's functions assume valid inputs)."""
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"expected a uint8 clip (T, H, W, 3), got {clip.dtype} {clip.shape}")
    out = SHIFTS.get(name)(clip, check_severity(severity), rng)
    assert out.shape == clip.shape and out.dtype == np.uint8, name
    return out


def parse_shifts(text: str | None) -> list[str]:
    """"a,b" -> names; "all" -> every shift; "style"/"temporal"/"camera" -> that family."""
    if text is None or text.strip() in ("", "default"):
        return list(DEFAULT_SHIFTS)
    out: list[str] = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        if item == "all":
            names = SHIFTS.names()
        elif item in set(KINDS.values()):
            names = [n for n in SHIFTS.names() if KINDS[n] == item]
        else:
            if item not in SHIFTS:
                close = difflib.get_close_matches(item, SHIFTS.names(), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"unknown shift '{item}'.{hint} Valid: all, default, "
                                  f"{', '.join(sorted(set(KINDS.values())))}, "
                                  f"{', '.join(SHIFTS.names())}")
            names = [item]
        out += [n for n in names if n not in out]
    return out


def parse_severities(text: str | None) -> list[int]:
    """"1,3,5" or "all" -> sorted unique severities, each checked against 1-5."""
    if text is None or text.strip() in ("", "default"):
        return list(DEFAULT_SEVERITIES)
    if text.strip() == "all":
        return list(SEVERITIES)
    out = set()
    for item in (s.strip() for s in text.split(",") if s.strip()):
        try:
            value = int(item)
        except ValueError:
            value = None
        if value not in SEVERITIES:
            raise ConfigError(f"severity '{item}' is invalid; valid: "
                              f"{', '.join(map(str, SEVERITIES))} (or all)")
        out.add(value)
    return sorted(out)


# Importing the families fills the registry.
from robustness.shifts import camera, style, temporal  # noqa: E402,F401

# Fast and representative: sensor noise, illumination, a lossy and a reordered
# stream, and a whole other camera (blur + cast + noise + JPEG + frame rate).
# 5 shifts x 3 severities + clean = 16 passes over the test set: the default
# suite fits 3 minutes for 3-4 tiny models on 2 cores (bench.perf robustness).
DEFAULT_SHIFTS = ("gaussian_noise", "exposure", "frame_drop_hold", "local_shuffle", "new_camera")
DEFAULT_SEVERITIES = (1, 3, 5)
