"""Sampling the data set table: sources, subjects, folds, labels and every clip's parameters.

Pure: (options, seed) -> one row per clip with everything `render_clip`
needs, so the table alone (saved as metadata.csv) describes the data.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.data.labels import EMOTIONS
from bench.data.synth.expressions import ACTIONS, HEAD_MOTION, POSE_KEYS, prototype
from bench.data.synth.faces import sample_subject
from bench.data.synth.options import SynthOptions, parse_class_prior
from bench.data.synth.sources import sample_sources

__all__ = ["sample_table", "clip_rng", "largest_remainder"]

_TABLE_STREAM = 0
_CLIP_STREAM = 1
_DECIMALS = 5  # floats are rounded so metadata.csv round-trips exactly


def clip_rng(seed: int, video_name: int) -> np.random.Generator:
    """The render generator of one clip: independent of worker count and order."""
    return np.random.default_rng(np.random.SeedSequence([seed, _CLIP_STREAM, int(video_name)]))


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `weights`."""
    w = np.asarray(weights, dtype=np.float64)
    raw = total * w / w.sum()
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _stratified_folds(labels: np.ndarray, fold_sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fold of each label so that every fold gets each class in proportion (systematic sampling)."""
    slot_fold = np.concatenate([np.full(n, f) for f, n in enumerate(fold_sizes)])
    slot_pos = np.concatenate([(np.arange(n) + rng.random(n)) / n for n in fold_sizes])
    by_class = np.lexsort((rng.random(len(labels)), labels))
    folds = np.empty(len(labels), dtype=int)
    folds[by_class] = slot_fold[np.argsort(slot_pos, kind="stable")]
    return folds


def _timing(n: int, opts: SynthOptions, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Onset, first apex frame, last apex frame, offset (frame indices)."""
    rise, fall = rng.uniform(0.12, 0.3, size=2) * n
    hold = rng.uniform(*opts.apex_range) * n
    onset = rng.uniform(0.0, 0.3) * n
    apex_end = onset + rise + hold
    if apex_end > n - 2:  # keep the apex inside the clip
        onset = max(0.0, onset - (apex_end - (n - 2)))
        apex_end = min(onset + rise + hold, n - 2)
    o = int(round(onset))
    a = int(np.clip(round(onset + rise), o + 1, n - 2))
    ae = int(np.clip(round(apex_end), a, n - 2))
    off = int(max(round(apex_end + fall), ae + 1))
    return o, a, ae, off


def _clip(emotion: str, subj: dict[str, Any], src: dict[str, Any], opts: SynthOptions,
          rng: np.random.Generator) -> dict[str, Any]:
    lo, hi = opts.intensity_range
    if emotion == "neutral":
        intensity = 0.0
    elif rng.random() < opts.subtle_fraction:
        intensity = rng.uniform(lo, lo + (hi - lo) / 3)
    else:
        intensity = rng.uniform(lo, hi)
    n = int(np.clip(round(rng.uniform(*opts.duration_s) * src["fps"]), opts.min_frames, opts.max_frames))
    onset, apex, apex_end, offset = _timing(n, opts, rng)
    gains = np.array([subj[f"gain_{a}"] for a in ACTIONS])
    act = prototype(emotion, confusability=opts.confusability) * intensity * gains * opts.expression_gain
    act *= np.clip(1 + opts.action_jitter * rng.standard_normal(len(ACTIONS)), 0.0, None)
    for k in rng.choice(len(ACTIONS), size=rng.poisson(1.0), replace=True):
        act[k] += rng.uniform(0, opts.distractor_level)
    talks = rng.random() < 0.2 + 0.6 * subj["talkativeness"]
    talk = talks * opts.talk_level * rng.uniform(0.15, 0.45) * (1.0 if emotion == "neutral" else 0.6)
    pr = opts.pose_range
    row: dict[str, Any] = dict(
        emotion=emotion, intensity=intensity, onset=onset, apex=apex, apex_end=apex_end,
        offset=offset, residual=rng.uniform(0.0, 0.3), num_frames=n, fps=src["fps"], talk=talk,
        yaw=subj["yaw"] + rng.normal(0, 0.08 * pr), roll=subj["roll"] + rng.normal(0, 0.04 * pr),
        scale=subj["scale"] * (1 + rng.normal(0, 0.03 * pr)),
        tx=subj["tx"] + rng.normal(0, 0.02 * pr), ty=subj["ty"] + rng.normal(0, 0.02 * pr),
        drift_yaw=rng.normal(0, 0.08 * pr), drift_roll=rng.normal(0, 0.04 * pr),
        drift_scale=rng.normal(0, 0.03 * pr), drift_tx=rng.normal(0, 0.015 * pr),
        drift_ty=rng.normal(0, 0.015 * pr),
    )
    row.update({f"act_{a}": v for a, v in zip(ACTIONS, act)})
    # Expression-linked head motion (follows the envelope); yaw and roll turn either way.
    head = np.asarray(HEAD_MOTION[emotion]) * intensity * opts.head_motion
    head = head * np.clip(1 + opts.action_jitter * rng.standard_normal(5), 0.0, None)
    head[:2] *= rng.choice((-1.0, 1.0), size=2)
    row.update({f"head_{k}": float(v) for k, v in zip(POSE_KEYS, head)})
    return row


def sample_table(opts: SynthOptions, seed: int) -> pd.DataFrame:
    """One row per clip (sorted by video_name 1..N) with all parameters needed to render it."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _TABLE_STREAM]))
    sources = sample_sources(opts.num_sources, rng, spread=opts.source_spread,
                             noise_scale=opts.noise_scale, size=opts.size)
    n_subj, n_src = opts.num_subjects, opts.num_sources
    subjects = [sample_subject(rng, style_strength=opts.style_strength, pose_range=opts.pose_range)
                for _ in range(n_subj)]
    primary = rng.permutation(np.arange(n_subj) % n_src)
    secondary = (primary + rng.integers(1, max(n_src, 2), size=n_subj)) % n_src
    subj_fold = rng.permutation(np.arange(n_subj) % opts.num_folds)
    # Clips per subject: at least one each, the rest uneven (some subjects are prolific).
    per_subj = 1 + rng.multinomial(opts.num_clips - n_subj, rng.dirichlet(np.full(n_subj, 3.0)))
    clip_subj = np.repeat(np.arange(n_subj), per_subj)
    clip_fold = subj_fold[clip_subj]
    # Labels: exact global counts, spread over folds in proportion, random within a fold.
    counts = largest_remainder(opts.num_clips, parse_class_prior(opts.class_prior))
    labels = np.repeat(np.arange(len(EMOTIONS)), counts)
    fold_sizes = np.bincount(clip_fold, minlength=opts.num_folds)
    label_fold = _stratified_folds(labels, fold_sizes, rng)
    clip_label = np.empty(opts.num_clips, dtype=int)
    for f in range(opts.num_folds):
        idx = np.flatnonzero(clip_fold == f)
        clip_label[idx] = rng.permutation(labels[label_fold == f])
    video_name = 1 + rng.permutation(opts.num_clips)

    rows = []
    for i in range(opts.num_clips):
        s = int(clip_subj[i])
        src = sources[int(primary[s] if rng.random() < opts.primary_source_prob else secondary[s])]
        row = {"video_name": int(video_name[i]), "label": int(clip_label[i]) + 1,
               "subject": s, "fold": int(clip_fold[i]) + 1, "size": opts.size}
        row.update(_clip(EMOTIONS[clip_label[i]], subjects[s], src, opts, rng))
        row.update(src)
        row.update({k: v for k, v in subjects[s].items() if k not in row})
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("video_name", kind="stable").reset_index(drop=True)
    floats = table.select_dtypes(include="float").columns
    table[floats] = table[floats].round(_DECIMALS)
    return table
