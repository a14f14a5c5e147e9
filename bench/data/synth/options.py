"""Generator options, size presets and the class prior.

Every knob that changes the data lives in `SynthOptions`, so `synth.json`
(which stores all of them) says exactly what a run trained on. The difficulty
knobs are grouped at the end for retuning. Their defaults (generator v3) are
calibrated so that tiny X3D-CE with the default training reaches a clearly
above-chance but unsaturated test WAR, with lower accuracy on the hard and on
unseen camera sources (numbers in the README).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from bench.data.labels import EMOTIONS
from bench.config import MAX_SEED
from bench.errors import ConfigError
from bench.registry import Registry, check_kwargs

__all__ = ["GENERATOR_VERSION", "SynthOptions", "PRESETS", "make_options", "non_default",
           "parse_class_prior", "check_seed", "DFEW_COUNTS", "MAX_SEED"]

# Bump whenever the same options + seed would give different bytes.
GENERATOR_VERSION = 3

# DFEW single-labelled clip counts, in EMOTIONS order.
DFEW_COUNTS: tuple[int, ...] = (2445, 1894, 2669, 2173, 1469, 145, 902)


@dataclass(frozen=True)
class SynthOptions:
    """All generator options; presets differ in size, the rest are difficulty knobs."""

    # Size
    num_clips: int = 1500
    num_subjects: int = 100
    num_sources: int = 6
    num_folds: int = 5
    size: int = 80                        # output frame side (px)
    duration_s: tuple[float, float] = (1.2, 1.7)
    min_frames: int = 16
    max_frames: int = 48
    # Labels
    class_prior: str | tuple[float, ...] = "dfew"
    # Subjects and sources
    primary_source_prob: float = 0.8      # rest of a subject's clips come from a second source
    # Difficulty knobs
    expression_gain: float = 2.0          # scales every action's amplitude (visibility at 64 px)
    intensity_range: tuple[float, float] = (0.4, 1.0)
    subtle_fraction: float = 0.2          # clips whose intensity is drawn from the low third
    confusability: float = 0.3            # 0: prototypes apart; 1: pairs mixed half-way
    action_jitter: float = 0.25           # per-clip relative noise on each action weight
    distractor_level: float = 0.12        # random unrelated actions per clip
    style_strength: float = 0.5           # spread of per-subject action gains / resting face
    talk_level: float = 0.5               # scales talking motion
    pose_range: float = 0.3               # scales yaw / roll / scale / translation / drift
    source_spread: float = 1.0            # 0: all sources look the same; 1: archetypes
    noise_scale: float = 0.5              # scales sensor noise and blur
    apex_range: tuple[float, float] = (0.05, 0.35)  # apex plateau, fraction of the clip
    head_motion: float = 2.0              # scales expression-linked head movement

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def check_seed(seed: Any, what: str = "seed") -> int:
    """`seed` as an int in 0..MAX_SEED, or one ConfigError line naming `what`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= int(seed) <= MAX_SEED:
        raise ConfigError(f"{what} must be an integer in 0..2**63-1, got {seed!r}")
    return int(seed)


PRESETS: Registry[Callable[[], SynthOptions]] = Registry("synthetic preset")


@PRESETS.register("ci")
def _ci() -> SynthOptions:
    return SynthOptions(num_clips=175, num_subjects=25)


@PRESETS.register("default")
def _default() -> SynthOptions:
    return SynthOptions(num_clips=1500, num_subjects=100)


@PRESETS.register("large")
def _large() -> SynthOptions:
    return SynthOptions(num_clips=6000, num_subjects=300)


def parse_class_prior(prior: str | Sequence[float]) -> np.ndarray:
    """Normalised class probabilities (7,) from "dfew", "uniform", "w1,...,w7" or a sequence."""
    if isinstance(prior, str):
        key = prior.strip().lower()
        if key == "dfew":
            weights = np.asarray(DFEW_COUNTS, dtype=np.float64)
        elif key == "uniform":
            weights = np.ones(len(EMOTIONS))
        else:
            try:
                weights = np.asarray([float(x) for x in key.split(",")], dtype=np.float64)
            except ValueError:
                weights = np.zeros(0)
                _bad_prior(prior)
    else:
        weights = np.asarray(list(prior), dtype=np.float64)
    if weights.shape != (len(EMOTIONS),) or not np.all(np.isfinite(weights)) \
            or np.any(weights < 0) or weights.sum() <= 0:
        _bad_prior(prior)
    return weights / weights.sum()


def _bad_prior(prior: object) -> None:
    raise ConfigError(
        f"class_prior {prior!r} is invalid: use 'dfew', 'uniform' or {len(EMOTIONS)} "
        f"non-negative comma-separated weights in the order {','.join(EMOTIONS)}")


def _check(opts: SynthOptions) -> None:
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ConfigError(f"synthetic option {msg}")

    need(opts.num_folds >= 2, f"num_folds={opts.num_folds} must be >= 2")
    need(opts.num_subjects >= opts.num_folds,
         f"num_subjects={opts.num_subjects} must be >= num_folds={opts.num_folds}")
    need(opts.num_clips >= opts.num_subjects,
         f"num_clips={opts.num_clips} must be >= num_subjects={opts.num_subjects}")
    need(opts.num_sources >= 1, f"num_sources={opts.num_sources} must be >= 1")
    need(16 <= opts.size <= 512, f"size={opts.size} must be in 16..512")
    need(2 <= opts.min_frames <= opts.max_frames,
         f"min_frames/max_frames={opts.min_frames}/{opts.max_frames} need 2 <= min <= max")
    lo, hi = opts.intensity_range
    need(0.0 <= lo <= hi <= 2.0, f"intensity_range={opts.intensity_range} needs 0 <= lo <= hi <= 2")
    a0, a1 = opts.apex_range
    need(0.0 <= a0 <= a1 <= 0.8, f"apex_range={opts.apex_range} needs 0 <= lo <= hi <= 0.8")
    d0, d1 = opts.duration_s
    need(0.0 < d0 <= d1, f"duration_s={opts.duration_s} needs 0 < lo <= hi")
    for name in ("primary_source_prob", "subtle_fraction", "confusability"):
        v = getattr(opts, name)
        need(0.0 <= v <= 1.0, f"{name}={v} must be in [0, 1]")
    for name in ("action_jitter", "distractor_level", "style_strength", "talk_level",
                 "pose_range", "source_spread", "noise_scale", "expression_gain", "head_motion"):
        v = getattr(opts, name)
        need(v >= 0.0, f"{name}={v} must be >= 0")
    parse_class_prior(opts.class_prior)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and bool(np.isfinite(v))


def _checked_type(name: str, value: Any, default: Any) -> Any:
    """`value` in the shape of the option's default (int, number, pair), else one line.

    Ranges are `_check`'s job; this only keeps a string or a list where a
    number belongs from reaching the comparisons as a TypeError.
    """
    shown = value
    if isinstance(value, list):
        value = tuple(value)
    if name == "class_prior":
        if not (isinstance(value, str) or (isinstance(value, tuple) and all(map(_is_number, value)))):
            _bad_prior(value)
        return value
    if isinstance(default, tuple):
        if not (isinstance(value, tuple) and len(value) == len(default) and all(map(_is_number, value))):
            raise ConfigError(f"synthetic option {name}={shown!r} must be {len(default)} numbers")
        return value
    if isinstance(default, int) and not (isinstance(value, (int, np.integer))
                                         and not isinstance(value, bool)):
        raise ConfigError(f"synthetic option {name}={shown!r} must be an integer")
    if isinstance(default, float) and not _is_number(value):
        raise ConfigError(f"synthetic option {name}={shown!r} must be a finite number")
    return value


def make_options(preset: str = "default", **overrides: Any) -> SynthOptions:
    """Preset options with keyword overrides, validated (ConfigError on a bad key or value)."""
    base = PRESETS.get(preset)()
    check_kwargs(SynthOptions, overrides, "synthetic data set")
    fixed = {k: _checked_type(k, v, getattr(base, k)) for k, v in overrides.items()}
    opts = dataclasses.replace(base, **fixed)
    _check(opts)
    return opts


def non_default(opts: SynthOptions, preset: str) -> dict[str, Any]:
    """Options that differ from the preset (these name the cache folder)."""
    base = PRESETS.get(preset)().to_dict()
    return {k: v for k, v in opts.to_dict().items() if base[k] != v}
