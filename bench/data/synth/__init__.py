"""A synthetic, deliberately heterogeneous DFER data set in DFEW's on-disk layout.

Faces drawn from facial-action prototypes with onset-apex-offset time
courses, subjects that differ in geometry, skin tone, pose and expression
style, and camera sources that differ in colour, exposure, blur, noise, JPEG
quality, resolution, frame rate and background: the heterogeneity HDF claims
to handle, with ground truth for every factor in metadata.csv.

    from bench.data.synth import ensure_synthetic
    root = ensure_synthetic(preset="ci", seed=0)   # cached; generated once
"""
from __future__ import annotations

from bench.data.synth.dataset import clip_rng, sample_table
from bench.data.synth.expressions import ACTIONS, PROTOTYPES
from bench.data.synth.options import (
    DFEW_COUNTS, GENERATOR_VERSION, PRESETS, SynthOptions, make_options, parse_class_prior,
)
from bench.data.synth.render import render_clip
from bench.data.synth.sources import ARCHETYPES, apply_style
from bench.data.synth.writer import MARKER, cache_root, ensure_synthetic, generate

__all__ = [
    "ensure_synthetic", "generate", "PRESETS", "GENERATOR_VERSION", "SynthOptions", "make_options",
    "parse_class_prior", "sample_table", "render_clip", "apply_style", "clip_rng", "cache_root",
    "ACTIONS", "PROTOTYPES", "ARCHETYPES", "DFEW_COUNTS", "MARKER",
]
