"""The interval over training seeds and test clips: coverage on simulated studies, and its use in gains."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustness.replication import metric_weights, seed_clip_interval
from robustness.scores import COVERS_CLIPS, COVERS_SEEDS, gains, paired_bootstrap

SEEDS, CLIPS, SIGMA, STUDIES = 3, 300, 0.05, 1000


def _study(rng: np.random.Generator, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """One simulated comparison: (S, N) candidate minus baseline correctness, and labels.

    A fresh test set of clips of varying difficulty (probability right p_j), and per
    training seed a candidate and a baseline whose accuracy moves by a seed effect of
    std SIGMA; the candidate is `gain` better in expectation, so the true gain is exact.
    """
    p = rng.uniform(0.2, 0.8, CLIPS)  # (N,)
    seed_h = rng.normal(0.0, SIGMA, (SEEDS, 1))
    seed_b = rng.normal(0.0, SIGMA, (SEEDS, 1))
    right_h = rng.random((SEEDS, CLIPS)) < np.clip(p + gain + seed_h, 0, 1)
    right_b = rng.random((SEEDS, CLIPS)) < np.clip(p + seed_b, 0, 1)
    return right_h.astype(float) - right_b, rng.integers(0, 7, CLIPS)


def _coverage(gain: float) -> tuple[float, float, float]:
    """(seeds x clips coverage, clip-only coverage of seed 0's interval, mean estimate)."""
    rng = np.random.default_rng(2026)
    boot = np.random.default_rng(7)
    hits = clip_hits = 0
    estimates = []
    for _ in range(STUDIES):
        d, y = _study(rng, gain)
        r = seed_clip_interval(d, metric_weights(y, "war"))
        hits += r["ci_low"] <= gain <= r["ci_high"]
        estimates.append(r["estimate"])
        one = paired_bootstrap(d[:1], y, n_boot=200, rng=boot)["war"]  # today's: one seed, clips only
        clip_hits += one["ci_low"] <= gain <= one["ci_high"]
    return hits / STUDIES, clip_hits / STUDIES, float(np.mean(estimates))


def test_seed_interval_covers_a_zero_gain_and_the_clip_only_one_does_not():
    cover, clip_only, centre = _coverage(0.0)
    assert 0.93 <= cover <= 0.97, cover
    assert clip_only == pytest.approx(0.611, abs=0.0005), clip_only  # measured: far below 0.95
    assert abs(centre) < 0.003


def test_seed_interval_is_centred_on_a_five_point_gain():
    cover, _, centre = _coverage(0.05)
    assert 0.93 <= cover <= 0.97, cover
    # unbiased: the mean estimate is within 3 Monte-Carlo standard errors of the truth
    se = SIGMA * np.sqrt(2 / SEEDS) / np.sqrt(STUDIES)
    assert abs(centre - 0.05) < 3 * se + 0.002


def test_interval_parts_by_hand():
    d = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])  # 2 seeds x 4 clips
    w = np.full(4, 0.25)
    r = seed_clip_interval(d, w)
    # per-seed gains 0.5 and 0.25; the clip term is 0 here (var_j of the clip means, 0.0625,
    # is below what per-seed noise alone gives, MS_res / S = 0.229), so it is the seed t interval
    assert r["estimate"] == pytest.approx(0.375)
    half = 12.706204736 * np.std([0.5, 0.25], ddof=1) / np.sqrt(2)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((0.375 - half, 0.375 + half))
    same = seed_clip_interval(np.zeros((3, 5)), np.full(5, 0.2))
    assert same["ci_low"] == same["ci_high"] == 0.0
    assert metric_weights(np.array([0, 0, 0, 1]), "uar") == pytest.approx([1 / 6] * 3 + [0.5])
    with pytest.raises(ValueError):
        seed_clip_interval(d[:1], w)


def _predictions(spread: float) -> tuple[pd.DataFrame, dict, dict]:
    """Three training seeds of a candidate and a baseline on 200 clips (clean + one shift)."""
    clips = [f"{i:05d}" for i in range(200)]
    y = np.arange(200) % 7
    rows, roles, groups = [], {}, {}
    for group, role, ok in (("hdf-best", "hdf", 0.8), ("x3d_ce", "baseline", 0.7)):
        for s in (0, 1, 2):
            name = group if s == 0 else f"{group}-s{s}"
            roles[name], groups[name] = role, (group, s)
            acc = ok + (spread * (s - 1) if role == "hdf" else 0.0)
            for shift, sev in (("clean", 0), ("a", 1)):
                right = np.random.default_rng([s, len(group), sev]).random(200) < acc
                rows.append(pd.DataFrame(dict(model=name, shift=shift, severity=sev, seed=0,
                                              clip=clips, y_true=y,
                                              y_pred=np.where(right, y, (y + 1) % 7))))
    return pd.concat(rows), roles, groups


def test_gains_pair_models_by_training_seed_and_add_a_seed_row():
    pred, roles, groups = _predictions(0.0)
    g = gains(pred, roles, ["a"], groups=groups, n_boot=200)
    per_seed = g[g.training_seeds == 1]
    assert set(zip(per_seed.model, per_seed.baseline)) == {
        ("hdf-best", "x3d_ce"), ("hdf-best-s1", "x3d_ce-s1"), ("hdf-best-s2", "x3d_ce-s2")}
    assert set(per_seed.covers) == {COVERS_CLIPS}
    agg = g[(g.training_seeds == 3) & (g.condition == "clean") & (g.metric == "war")].iloc[0]
    assert agg.model == "hdf-best" and agg.baseline == "x3d_ce" and agg.covers == COVERS_SEEDS
    clean = per_seed[(per_seed.condition == "clean") & (per_seed.metric == "war")]
    assert agg.estimate == pytest.approx(clean.estimate.mean())


def test_seed_row_widens_when_seeds_disagree():
    def width(spread: float) -> float:
        pred, roles, groups = _predictions(spread)
        g = gains(pred, roles, ["a"], groups=groups, n_boot=100)
        r = g[(g.training_seeds == 3) & (g.condition == "clean") & (g.metric == "war")].iloc[0]
        return r.ci_high - r.ci_low

    assert width(0.15) > 2 * width(0.0)
