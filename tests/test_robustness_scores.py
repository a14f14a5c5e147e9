"""mPC, rPC, mCE, relative mCE, the paired bootstrap and long-tail re-scoring, on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustness.imbalance import (head_to_tail, long_tail_subset, profile_fractions,
                                  resample_long_tail, rescore_long_tail, shot_groups)
from robustness.scores import corruption_scores, gains, mce, paired_bootstrap, per_shift


def _results(table: dict[str, dict[tuple[str, int], float]], seeds=(0,)) -> pd.DataFrame:
    """model -> {(shift, severity): WAR} as a tidy results table (UAR = WAR)."""
    rows = []
    for model, cells in table.items():
        role = "baseline" if model == "base" else "hdf"
        for (shift, sev), v in cells.items():
            for seed in (seeds if shift != "clean" else (0,)):
                for metric in ("war", "uar"):
                    rows.append(dict(model=model, role=role, shift=shift, severity=sev, seed=seed,
                                     metric=metric, value=v))
    return pd.DataFrame(rows)


# clean 0.9 / 0.8; shift a: severities 1, 2; shift b: severity 1 only.
TABLE = {
    "base": {("clean", 0): 0.8, ("a", 1): 0.6, ("a", 2): 0.4, ("b", 1): 0.7},
    "hdf": {("clean", 0): 0.9, ("a", 1): 0.8, ("a", 2): 0.6, ("b", 1): 0.7},
}


def test_mpc_rpc_mce_by_hand():
    res = _results(TABLE)
    s = corruption_scores(res, ["a", "b"], "base")
    s = s[s.metric == "war"].set_index(["model", "score"]).value
    # mPC = mean over shifts of the mean over severities
    assert s["hdf", "mPC"] == pytest.approx(((0.8 + 0.6) / 2 + 0.7) / 2)
    assert s["base", "mPC"] == pytest.approx(((0.6 + 0.4) / 2 + 0.7) / 2)
    assert s["hdf", "rPC"] == pytest.approx(0.7 / 0.9)
    # CE_a = (0.2 + 0.4) / (0.4 + 0.6) = 0.6, CE_b = 0.3 / 0.3 = 1 -> mCE 0.8
    assert s["hdf", "mCE"] == pytest.approx(0.8) and s["base", "mCE"] == pytest.approx(1.0)
    # relative: a: ((0.2-0.1) + (0.4-0.1)) / ((0.4-0.2) + (0.6-0.2)) = 0.4/0.6; b: (0.3-0.1)/(0.3-0.2) = 2
    assert s["hdf", "rmCE"] == pytest.approx((0.4 / 0.6 + 2.0) / 2)
    assert s["hdf", "clean"] == pytest.approx(0.9)


def test_baseline_is_an_argument_and_seeds_are_averaged():
    two = _results(TABLE, seeds=(0, 1))
    assert mce(two, "base", ["a", "b"])["hdf"] == pytest.approx(0.8)
    assert mce(two, "hdf", ["a", "b"])["base"] == pytest.approx((1 / 0.6 + 1.0) / 2)
    ps = per_shift(two, ["a", "b"]).query("metric == 'war'").set_index(["model", "shift"]).value
    assert ps["hdf", "a"] == pytest.approx(0.7) and ps["base", "clean"] == pytest.approx(0.8)
    no_base = corruption_scores(two, ["a", "b"], None)
    assert set(no_base.score) == {"clean", "mPC", "rPC"}


def test_bootstrap_ci_covers_a_known_difference():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 7, n)
    a = (rng.random(n) < 0.7).astype(float)
    b = (rng.random(n) < 0.5).astype(float)
    r = paired_bootstrap((a - b)[None], y, n_boot=500, rng=np.random.default_rng(1))
    assert r["war"]["estimate"] == pytest.approx((a - b).mean())
    assert r["war"]["ci_low"] < 0.2 < r["war"]["ci_high"]
    assert r["war"]["ci_low"] > 0.15 and r["uar"]["ci_low"] < 0.2 < r["uar"]["ci_high"]
    same = paired_bootstrap(np.zeros((1, n)), y, n_boot=100, rng=np.random.default_rng(1))
    assert same["war"] == {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}


def test_bootstrap_uar_weights_classes_equally():
    y = np.array([0] * 90 + [1] * 10)
    d = np.r_[np.zeros(90), np.ones(10)][None]  # the model wins only on the rare class
    r = paired_bootstrap(d, y, n_boot=200, rng=np.random.default_rng(0))
    assert r["war"]["estimate"] == pytest.approx(0.1) and r["uar"]["estimate"] == pytest.approx(0.5)


def test_gains_from_predictions_paired_over_seeds():
    clips = [f"{i:05d}" for i in range(200)]
    y = np.arange(200) % 7
    rows = []
    for model, ok in (("hdf", 0.9), ("base", 0.6)):
        for shift, sev, seeds in (("clean", 0, [0]), ("a", 1, [0, 1])):
            for seed in seeds:
                right = np.random.default_rng([seed, len(model)]).random(200) < ok
                rows.append(pd.DataFrame(dict(model=model, shift=shift, severity=sev, seed=seed,
                                              clip=clips, y_true=y, y_pred=np.where(right, y, (y + 1) % 7))))
    pred = pd.concat(rows)
    g = gains(pred, {"hdf": "hdf", "base": "baseline"}, ["a"], n_boot=300)
    assert set(g.condition) == {"clean", "corrupted", "a"} and set(g.metric) == {"war", "uar"}
    war = g[(g.metric == "war") & (g.condition == "corrupted")].iloc[0]
    acc = pred.assign(ok=pred.y_true == pred.y_pred).query("shift == 'a'").groupby("model").ok.mean()
    assert war.estimate == pytest.approx(acc["hdf"] - acc["base"])
    assert war.ci_low < war.estimate < war.ci_high and war.ci_low > 0


def test_long_tail_profiles_and_resampling():
    assert profile_fractions(7, "exp", 100)[[0, -1]] == pytest.approx([1.0, 0.01])
    assert list(profile_fractions(7, "step", 10)) == pytest.approx([1] * 4 + [0.1] * 3)
    y = np.repeat(np.arange(7), [50, 40, 60, 30, 20, 5, 10])
    order = head_to_tail(y, 7)
    assert list(order) == [2, 0, 1, 3, 4, 6, 5]
    assert shot_groups(order) == {"many": [2, 0], "medium": [1, 3, 4], "few": [6, 5]}
    idx = resample_long_tail(y, "exp", 10, np.random.default_rng(0))
    counts = np.bincount(y[idx], minlength=7)[order]
    assert counts[0] == pytest.approx(10 * counts[-1], rel=0.15) and np.all(np.diff(counts) <= 0)
    sub = long_tail_subset(y, "step", 10, np.random.default_rng(0))
    assert len(set(sub)) == len(sub)
    assert list(np.bincount(y[sub], minlength=7)[order]) == [60, 50, 40, 30, 6, 6, 5]


def test_rescore_long_tail():
    y = np.repeat(np.arange(7), 20)
    perfect, head_only = y.copy(), np.zeros_like(y)
    r = rescore_long_tail(y, {"perfect": perfect, "head": head_only}, 7, ratios=[10], seeds=[0, 1])
    assert set(r["shift"]) == {"longtail_exp", "longtail_step"} and set(r.severity) == {10}
    v = r.groupby(["model", "metric"]).value.mean()
    assert v["perfect", "war"] == 1.0 and v["perfect", "recall_few"] == 1.0
    assert v["head", "recall_few"] == 0.0 and v["head", "uar"] == pytest.approx(1 / 7)


@pytest.mark.slow
def test_leave_sources_out_and_imbalanced_training_on_ci_data():
    from bench.config import load_config
    from robustness.sources import leave_sources_out, train_imbalanced

    cfg = load_config(method="x3d_ce", overrides=["data.preset=ci", "data.num_frames=4", "data.size=32",
                                                  "train.epochs=1", "data.batch_size=8"])
    loso = leave_sources_out(cfg, [0])
    assert set(loso.subset) == {"seen", "held_out"} and set(loso.held_out) == {"0"}
    assert loso.groupby("subset").n_clips.first().sum() > 0 and loso.value.dropna().between(0, 1).all()
    imb = train_imbalanced(cfg, "exp", 10)
    assert set(imb.ratio) == {10} and {"war", "uar"} <= set(imb.metric)
