"""bench.compare and the verdict's inputs: bad input is one line, the pure parts by hand."""
from __future__ import annotations

import pandas as pd
import pytest

from bench import compare, tune
from bench.cli import run_main
from bench.search.confirm import confirm_pick, pooled_std, top_trials
from bench.search.sensitivity import parameter_effects, sensitivity_sentence
from bench.search.spaces import load_study
from robustness.verdict import seed_spreads, verdicts


def _main(main, args: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        run_main(main, args)
    return e.value.code


@pytest.mark.parametrize("args, needle", [
    (["--methods", "hdf,x3d_cee"], "Did you mean 'x3d_ce'"),
    (["--methods", "hdf,hdf"], "'hdf' is listed twice"),
    (["--methods", "hdf"], "at least two methods"),
    (["--seeds", "0,1,1"], "seed 1 is listed twice"),
    (["--seeds", "0,x"], "'x' is not an integer"),
    (["--seeds", "0,1.5"], "'1.5' is not an integer"),
    (["--seeds", "-1"], "seeds must be >= 0"),
    (["--study", "nope.yaml"], "comparison file not found"),
    (["--set", "train.epochz=1"], "unknown key 'epochz'"),
])
def test_compare_refuses_bad_input_in_one_line(tmp_path, capsys, args, needle):
    assert _main(compare.main, [*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("args, needle", [
    (["--confirm", "0"], "--confirm 0"),
    (["--confirm", "-2"], "--confirm -2"),
    (["--confirm", "9"], "between 1 and the number of trials (4)"),
    (["--confirm", "2", "--no-confirm"], None),
])
def test_tune_refuses_a_bad_confirm_in_one_line(tmp_path, capsys, args, needle):
    argv = ["--space", "search_spaces/smoke.yaml", *args, "--out", str(tmp_path)]
    if needle is None:  # argparse: the two flags exclude each other
        with pytest.raises(SystemExit) as e:
            tune.main(argv)
        assert e.value.code == 2
    else:
        assert _main(tune.main, argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and needle in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())


def _trials(finals: dict[str, tuple[str, float, float]]) -> pd.DataFrame:
    """trial -> (status, val_war, param.x) as a trials table (one epoch each)."""
    return pd.DataFrame([{"trial": t, "number": int(t[1:]), "status": s, "epoch": 1,
                          "metric": "val_war", "value": v, "param.x": x, "param.kind": t[-1]}
                         for t, (s, v, x) in finals.items()])


def test_top_trials_and_the_confirm_pick_by_hand():
    study = load_study("search_spaces/smoke.yaml")
    table = _trials({"t001": ("completed", 0.5, 1.0), "t002": ("stopped", 0.9, 2.0),
                     "t003": ("completed", 0.6, 3.0), "t004": ("completed", 0.6, 4.0)})
    assert top_trials(study, table, 2) == ["t003", "t004"]  # stopped trials are no candidates
    conf = pd.DataFrame({"trial": ["t003", "t003", "t004", "t004"], "seed": [1, 2, 1, 2],
                         "metric": "val_war", "value": [0.50, 0.54, 0.60, 0.62]})
    pick = confirm_pick(study, conf)
    assert pick["winner"] == "t004" and pick["runner_up"] == "t003"
    assert pick["margin"] == pytest.approx(0.61 - 0.52)
    # pooled over configurations: sqrt((0.02^2*2 + 0.01^2*2) / 2)
    assert pick["seed_std"] == pytest.approx(((0.0008 + 0.0002) / 2) ** 0.5)
    assert pooled_std(conf.iloc[:1])[1] == 0


def test_parameter_effects_against_the_noise_floor():
    table = _trials({"t001": ("completed", 0.50, 1.0), "t002": ("completed", 0.52, 2.0),
                     "t003": ("completed", 0.70, 3.0), "t004": ("completed", 0.72, 4.0)})
    eff = parameter_effects(table, "val_war", 0.01).set_index("param")
    assert eff.loc["x", "effect"] == pytest.approx(0.20)
    assert eff.loc["x", "threshold"] == pytest.approx(2 * 0.01 * (1 / 2 + 1 / 2) ** 0.5)
    assert bool(eff.loc["x", "exceeds"])
    loud = parameter_effects(table, "val_war", 0.5)
    noise = {"std": 0.5, "metric": "val_war", "source": "--confirm"}
    assert "did not change val_war by more than seed noise" in sensitivity_sentence(
        loud, noise, "searched")
    assert "Beyond seed noise" in sensitivity_sentence(parameter_effects(table, "val_war", 0.01),
                                                       {**noise, "std": 0.01}, "searched")
    assert "No seed-noise floor" in sensitivity_sentence(
        parameter_effects(table, "val_war", float("nan")), None, "searched")


def _gain(rows: list[tuple]) -> pd.DataFrame:
    cols = ["model", "baseline", "condition", "metric", "estimate", "ci_low", "ci_high",
            "training_seeds", "covers", "n_boot", "level"]
    return pd.DataFrame([(*r[:7], r[7], "seeds x clips" if r[7] > 1 else "clips", 0, 0.95)
                         for r in rows], columns=cols)


@pytest.mark.parametrize("low, high, word", [(0.01, 0.09, "HDF better"),
                                             (-0.09, -0.01, "baseline better"),
                                             (-0.02, 0.09, "inconclusive")])
def test_verdict_words_over_seeds(low, high, word):
    gain = _gain([("h", "b", "clean", m, (low + high) / 2, low, high, 3) for m in ("war", "uar")]
                 + [("h", "b", "clean", m, 0.0, -0.1, 0.1, 1) for m in ("war", "uar")])
    groups = {"h": ("h", 0), "h-s1": ("h", 1), "h-s2": ("h", 2),
              "b": ("b", 0), "b-s1": ("b", 1), "b-s2": ("b", 2)}
    war = {"h": 0.6, "h-s1": 0.7, "h-s2": 0.8, "b": 0.7, "b-s1": 0.7, "b-s2": 0.7}
    (v,) = verdicts(gain, war, groups, clips=300)
    assert v.word == word and v.training_seeds == 3
    assert v.spread == {"h": pytest.approx(0.1), "b": pytest.approx(0.0)}
    assert v.sentence.startswith(f"h vs b: {word}.") and "3 training seeds x 300 test clips" \
        in v.sentence


def test_one_seed_is_never_better_and_quotes_an_earlier_spread():
    gain = _gain([("h", "b", "clean", m, 0.2, 0.15, 0.25, 1) for m in ("war", "uar")])
    (v,) = verdicts(gain, {"h": 0.9, "b": 0.7}, {}, clips=50,
                    prior={"run": "earlier", "seeds": 3, "spread": {"h": 0.11, "b": 0.012}})
    assert v.word == "inconclusive"
    assert "50 test clips only: one training seed" in v.sentence
    assert "in earlier (3 seeds): h 0.110, b 0.012" in v.sentence
    assert seed_spreads({"h": 0.5}, {})["h"] != seed_spreads({"h": 0.5}, {})["h"]  # nan: 1 seed


def test_gain_against_budget_table_and_figure():
    from bench.report.budget import budget_figure, budget_table

    def v(war: float) -> dict:
        return {"candidate": "hdf", "baseline": "x3d_ce", "war": war, "war_low": war - 0.05,
                "war_high": war + 0.05, "uar": war / 2, "uar_low": war / 2 - 0.05,
                "uar_high": war / 2 + 0.05, "training_seeds": 3}

    table = budget_table([("c16", 16, [v(-0.02)]), ("c8", 8, [v(-0.10)]), ("c32", 32, [v(0.01)])])
    war = table[table.metric == "war"]
    assert war.epochs.tolist() == [8, 16, 32] and war.estimate.tolist() == [-0.10, -0.02, 0.01]
    fig = budget_figure(table)
    war_trace = next(t for t in fig.data if t.name.endswith("(WAR)"))
    assert len(fig.data) == 2 and list(war_trace.y) == pytest.approx([-10, -2, 1])
    assert list(war_trace.error_y.array) == pytest.approx([5, 5, 5])
