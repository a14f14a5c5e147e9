"""bench.ablate: the factorial's cells, effects with intervals, bad input, and a real tiny run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import ablate
from bench.cli import run_main
from bench.config import Config, deep_merge, load_config
from bench.search.ablation import INTERVAL_NOTE, cell_overrides, cells, effects
from bench.search.spaces import nested

ROOT = Path(__file__).resolve().parents[1]
CORNERS = {"none": "x3d_ce", "dam": "x3d_dam", "sam": "x3d_sam", "dsm": "x3d_dsm",
           "dam+dsm+sam": "hdf"}


@pytest.mark.parametrize("cell", cells(["dam", "dsm", "sam"]), ids=lambda c: c.name)
def test_the_factorial_corners_are_the_shipped_presets(cell):
    cfg = Config.from_dict(deep_merge(load_config(method="x3d_ce").to_dict(),
                                      nested(cell_overrides(cell))))
    assert cfg.model.dam_stages == [("dam" in cell.on)] * 4
    assert (cfg.loss.name == "dsm") == ("dsm" in cell.on) and cfg.optim.sam == ("sam" in cell.on)
    if cell.name in CORNERS:
        preset = load_config(method=CORNERS[cell.name]).to_dict()
        mine = cfg.to_dict()
        for section in ("model", "optim"):
            assert mine[section] == preset[section], (cell.name, section)
        assert _loss(mine["loss"]) == _loss(preset["loss"]), cell.name


def _loss(section: dict) -> dict:
    """A loss section with its builder's defaults filled in (x3d_dsm relies on them)."""
    import inspect

    from bench.losses import LOSSES

    sig = inspect.signature(LOSSES.get(section["name"]))
    defaults = {k: p.default for k, p in sig.parameters.items()
                if p.default is not inspect.Parameter.empty and k != "class_counts"}
    return {"name": section["name"], **defaults, **section["options"]}


def _ok(spread: float, seeds: int = 3, n: int = 400) -> dict:
    """A 2-factor world: factor a adds 20 points of accuracy, b nothing; seeds move by `spread`."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.3, 0.6, n)
    out = {}
    for cell in ("none", "a", "b", "a+b"):
        shift = 0.2 * ("a" in cell.split("+"))
        seed_fx = rng.normal(0, spread, (seeds, 1))
        out[cell] = (rng.random((seeds, n)) < np.clip(p + shift + seed_fx, 0, 1)).astype(float)
    return {"clean": out, "corrupted": out}


ON = {"none": frozenset(), "a": frozenset({"a"}), "b": frozenset({"b"}),
      "a+b": frozenset({"a", "b"})}


def test_effects_recover_a_known_main_effect_with_intervals():
    y = np.arange(400) % 7
    t = effects(_ok(0.0), ON, ["a", "b"], y)
    assert list(t.effect.unique()) == ["a", "b", "a:b"]
    assert set(t.metric) == {"clean_war", "clean_uar", "corrupted_war"} and len(t) == 9
    a = t[(t.effect == "a") & (t.metric == "clean_war")].iloc[0]
    assert a.ci_low < 0.2 < a.ci_high and a.ci_low > 0.1 and a.training_seeds == 3
    b = t[(t.effect == "b") & (t.metric == "clean_war")].iloc[0]
    assert b.ci_low < 0 < b.ci_high


def test_intervals_widen_when_seeds_disagree_and_need_two_seeds():
    y = np.arange(400) % 7

    def width(spread: float) -> float:
        r = effects(_ok(spread), ON, ["a", "b"], y).query("effect == 'a' and metric == 'clean_war'")
        return float(r.ci_high.iloc[0] - r.ci_low.iloc[0])

    assert width(0.15) > 2 * width(0.0)
    one = effects(_ok(0.0, seeds=1), ON, ["a", "b"], y)
    assert one.ci_low.isna().all() and set(one.note) == {INTERVAL_NOTE}
    assert one.estimate.notna().all()


def _main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        run_main(ablate.main, args)
    return e.value.code


@pytest.mark.parametrize("args, needle", [
    (["--factors", "dam,dsx"], "unknown factor 'dsx'. Did you mean 'dsm'?"),
    (["--factors", "dam,dam"], "factor 'dam' is listed twice"),
    (["--seeds", "0,0"], "seed 0 is listed twice"),
    (["--study", "nope.yaml"], "ablation file not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, needle):
    assert _main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option, needle", [
    ("loss.scaling_grad: nope", "'scaling_grad' = 'nope' is unknown. Allowed: scaled, unscaled"),
    ("loss.features: nope", "'features' = 'nope' is unknown. Allowed: pooled, projection"),
    ("loss.tauu: 0.1", "Did you mean 'tau'"),
])
def test_a_factor_setting_out_of_its_list_is_one_line(tmp_path, capsys, option, needle):
    study = tmp_path / "ab.yaml"
    study.write_text("factors:\n  dam:\n  dsm:\n    set: {" + option + "}\n")
    out = tmp_path / "runs"
    assert _main(["--study", str(study), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.slow
def test_a_tiny_ablation_runs_end_to_end(tmp_path):
    """The README's command on CI-sized data: 8 cells x 2 seeds, suite, effects, report."""
    p = subprocess.run([sys.executable, "-m", "bench.ablate", "--factors", "dam,dsm,sam",
                        "--seeds", "0,1", "--set", "data.preset=ci", "--set", "data.num_frames=4",
                        "--set", "data.batch_size=8", "--set", "train.epochs=1",
                        "--set", "train.eval_every=1", "--out", str(tmp_path), "--name", "ab"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    run = tmp_path / "ab"
    eff = pd.read_csv(run / "effects.csv")
    assert len(eff) == 3 * 6 and set(eff.training_seeds) == {2}
    assert eff[["estimate", "ci_low", "ci_high"]].notna().all().all()
    assert (eff.ci_low <= eff.estimate).all() and (eff.estimate <= eff.ci_high).all()
    assert "effects (2 training seeds x" in p.stdout and "verdict:" in p.stdout
    html = (run / "report.html").read_text()
    assert 'data-figure="attribution.effects"' in html and 'data-figure="attribution.cells"' in html
