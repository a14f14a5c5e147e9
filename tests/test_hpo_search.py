"""bench.hpo search: trial-epochs to the target, bounded medians and ratios, the best known
configuration, and a real run of both methods' sweeps."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bench.hpo.__main__ import main as hpo_main
from bench.perf.__main__ import main as perf_main


def _search(*args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "bench.hpo", "search", *args], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_search_benchmark_counts_trial_epochs_until_the_target():
    import pandas as pd

    from bench.hpo.search import epochs_to_reach

    reports = pd.DataFrame({"value": [0.2, 0.5, 0.55, 0.61, 0.7]})
    assert epochs_to_reach(reports, 0.62, 0.01) == 4
    assert epochs_to_reach(reports, 0.70, 0.0) == 5
    assert epochs_to_reach(reports, 0.9, 0.01) is None


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,x"], "--seeds '0,x': give comma-separated integers"),
    (["--keep", "{tmp}/a-file"], "not a folder"),
    (["--confirm-seeds", "1;2"], "--confirm-seeds '1;2': give comma-separated integers"),
    (["--confirm", "-1"], "--confirm -1: give 0 or more"),
])
@pytest.mark.parametrize("main", [hpo_main, perf_main], ids=["bench.hpo", "bench.perf"])
def test_search_user_errors_are_one_line(args, message, main, tmp_path, capsys):
    """`bench.perf search` is an alias of `bench.hpo search`: the same checks answer both."""
    from bench.cli import run_main

    (tmp_path / "a-file").write_text("")
    argv = ["search", *[a.format(tmp=tmp_path) for a in args]]
    with pytest.raises(SystemExit) as e:
        run_main(main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err


def test_median_bounds_and_verdict_with_runs_that_never_reached_the_target():
    import math

    from bench.hpo.stats import median_bounds, ratio_verdict

    assert median_bounds([10, 12, 20], [60, 60, 60]) == (12, 12)  # all reached: exact
    assert median_bounds([10, 50, None], [60, 60, 25]) == (26, 50)  # the third needed > 25
    assert median_bounds([None, None, 36], [60, 60, 60]) == (61, math.inf)
    assert ratio_verdict((10, 10), (40, 40)) == (0.25, 0.25, "met")
    assert ratio_verdict((20, 20), (40, 40))[2] == "MISSED"
    # TPE never got there in its median run, random did: TPE needs more than 26 vs 36
    assert ratio_verdict((26, math.inf), (36, 36))[2] == "MISSED"
    # neither median run got there: no verdict, not a ratio of two budgets
    assert ratio_verdict((27, math.inf), (61, math.inf))[2].startswith("undetermined")
    # TPE's median known and small, random's only bounded below: still met
    assert ratio_verdict((15, 15), (61, math.inf))[2] == "met"


def test_ratio_interval_resamples_seed_pairs_and_counts_unreached_runs_as_endless():
    import math

    from bench.hpo.stats import ratio_ci

    assert ratio_ci([10] * 5, [40] * 5) == (0.25, 0.25)  # no spread: a point
    # every seed's pair has ratio 1/4, however far apart the seeds are: resampled in
    # pairs, every resample's ratio is 1/4 (apart, it would spread)
    assert ratio_ci([10, 20, 40, 80, 160], [40, 80, 160, 320, 640]) == (0.25, 0.25)
    lo, hi = ratio_ci([10, 20, 40, 80, 160], [640, 40, 320, 80, 160])  # same runs, unpaired
    assert 10 / 640 <= lo < 0.25 < hi <= 1.0
    # TPE never reached the target: its median is endless, the ratio too
    assert ratio_ci([None] * 4, [40, 50, 60, 70]) == (math.inf, math.inf)
    assert ratio_ci([10, 12, 14, 16], [None] * 4) == (0.0, 0.0)
    assert all(math.isnan(x) for x in ratio_ci([None, None], [None, None]))
    # one endless run of ten per method: rarely a resample's median, so a finite interval
    tpe = [30, 40, 50, None, 35, 45, 60, 25, 55, 20]
    rand = [90, 160, 100, 120, 200, None, 80, 140, 110, 130]
    lo, hi = ratio_ci(tpe, rand)
    assert 0 < lo < 0.33 < hi < math.inf and ratio_ci(tpe, rand) == (lo, hi)  # seeded


def test_best_known_configuration_is_the_best_mean_of_fresh_runs():
    import math

    import pandas as pd

    from bench.hpo.best_known import (best_mean, config_key, confirm_runs, final_values,
                                       seed_noise, top_configs)

    a, b, c = (config_key({"optim.lr": lr, "data.augment": False}) for lr in (1e-3, 3e-3, 1e-2))
    assert config_key({"data.augment": False, "optim.lr": 1e-3, "__seed": 4}) == a
    sweep1 = pd.DataFrame({"config": [a, a, b, b, c], "epoch": [1, 2, 1, 2, 1],
                           "value": [0.3, 0.70, 0.4, 0.60, 0.9]})  # c stopped after epoch 1
    sweep2 = pd.DataFrame({"config": [b, b], "epoch": [1, 2], "value": [0.5, 0.65]})
    finals = final_values([sweep1, sweep2], epochs=2)
    assert sorted(finals["value"]) == [0.60, 0.65, 0.70]
    assert top_configs(finals, 5) == [a, b] and top_configs(finals, 1) == [a]
    runs = confirm_runs([a, b], [1, 2])
    assert [r["__seed"] for r in runs] == [1, 2, 1, 2] and runs[0]["optim.lr"] == 1e-3
    # a's lucky 0.70 does not carry over: b has the better mean of fresh runs
    again = pd.DataFrame({"config": [a, a, b, b], "seed": [1, 2, 1, 2],
                          "value": [0.58, 0.60, 0.64, 0.62]})
    best, mean, values = best_mean(again)
    assert best == b and math.isclose(mean, 0.63) and values == [0.64, 0.62]
    # noise floor: median of the per-configuration std of fresh runs (0.02 / sqrt 2 each)
    assert math.isclose(seed_noise(again), 0.02 / math.sqrt(2))
    wide = pd.concat([again, pd.DataFrame({"config": [c, c], "seed": [1, 2],
                                           "value": [0.5, 0.7]})], ignore_index=True)
    assert math.isclose(seed_noise(wide), 0.02 / math.sqrt(2))  # a median, not a mean
    assert seed_noise(again[again["seed"] == 1]) is None  # one run each: no spread to measure
    # a configuration with a diverged rerun cannot be the best
    again.loc[3, "value"] = math.nan
    assert best_mean(again)[0] == a
    with pytest.raises(ValueError, match="no configuration"):
        best_mean(again.assign(value=math.nan))


def test_rank_agreement_of_early_epochs_with_the_last():
    import pandas as pd

    from bench.hpo.stats import rank_agreement

    # three trials: epoch 1 ranks them backwards, epoch 2 as the end does
    rows = [(t, e, v) for t, vals in {"a": [0.3, 0.1, 0.2], "b": [0.2, 0.2, 0.5],
                                     "c": [0.1, 0.3, 0.9]}.items() for e, v in enumerate(vals, 1)]
    agree = rank_agreement(pd.DataFrame(rows, columns=["trial", "epoch", "value"]))
    assert agree.to_dict() == {1: -1.0, 2: 1.0}


@pytest.mark.slow
def test_search_runs_both_methods_and_prints_the_ratio(tmp_path):
    import pandas as pd

    confirm = ["--confirm", "1", "--confirm-seeds", "1"]
    out = _search("--space", "search_spaces/smoke.yaml", "--trials", "1", "--seeds", "0",
                "--set", "train.epochs=1", "--keep", str(tmp_path / "keep"), *confirm)
    kept = sorted(p.name for p in (tmp_path / "keep").iterdir())
    assert kept[1:] == ["perf-random-fifo-0", "perf-tpe-asha-g1-0"], kept
    assert kept[0].startswith("perf-confirm-"), kept
    # the best final configuration trained again at seed 1: one row, its value is the target
    again = pd.read_csv(tmp_path / "keep" / kept[0] / "confirm.csv")
    assert len(again) == 1 and again["seed"].tolist() == [1], again
    assert f"target: {again['value'].iloc[0]:.3f}" in out, out
    assert "best known configuration: the top 1 configurations" in out, out
    # a second call with another grace period reruns only the ASHA sweep
    fifo = tmp_path / "keep" / "perf-random-fifo-0" / "reports.csv"
    before = fifo.stat().st_mtime_ns
    _search("--space", "search_spaces/smoke.yaml", "--trials", "1", "--seeds", "0",
          "--set", "train.epochs=1", "--keep", str(tmp_path / "keep"), "--grace-period", "2",
          "--confirm", "0")
    kept = sorted(p.name for p in (tmp_path / "keep").iterdir())
    assert kept[1:] == ["perf-random-fifo-0", "perf-tpe-asha-g1-0", "perf-tpe-asha-g2-0"], kept
    assert fifo.stat().st_mtime_ns == before  # read back, not rerun
    # the same folder with another study is refused
    p = subprocess.run([sys.executable, "-m", "bench.hpo", "search", "--space",
                        "search_spaces/smoke.yaml", "--trials", "2", "--seeds", "0",
                        "--keep", str(tmp_path / "keep")], capture_output=True, text=True)
    assert p.returncode == 2 and "holds another study" in p.stderr, p.stderr
    for needle in ("tpe+asha seed 0: 1 trial-epochs", "random+fifo seed 0: 1 trial-epochs",
                   "target:", "ratio tpe+asha / random+fifo:"):
        assert needle in out, out
