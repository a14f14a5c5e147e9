"""The same sweep twice, two trials at a time: the same trials, stops and pick, to the digit.

Real `python -m bench.tune` runs (local Ray on 127.0.0.1) of a CI-sized study whose
learning rate range reaches rates that wreck training, so successive halving has
something to stop. Then Optuna's own tools read the journal: stopped trials are
PRUNED with their per-epoch values, and the report's Optuna figures still draw.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TIMING = {"epoch_s", "clips_per_s", "wall_s", "setup_s"}


def _space(tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    raw["base"]["method"] = "x3d_ce"
    raw["base"]["set"]["data.num_frames"] = 8
    # 3 epochs: at 2, most trials' val WAR ties at chance and halving (which stops only
    # trials strictly below its cut) may have nothing to stop
    raw["base"]["set"]["train.epochs"] = 3
    raw.update(params={"optim.lr": {"type": "loguniform", "low": 1.0e-3, "high": 3.0}},
               val_fraction=0.5, trials=6, baselines=[],
               search={"sampler": "tpe", "seed": 0, "startup_trials": 3})
    path = tmp_path / "repro.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _sweep(space: Path, out: Path, name: str, *extra: str) -> Path:
    p = subprocess.run([sys.executable, "-m", "bench.tune", "--space", str(space), "--out",
                        str(out), "--name", name, "--no-robustness", "--no-report", *extra],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    return out / name


def _values(run: Path) -> pd.DataFrame:
    t = pd.read_parquet(run / "trials.parquet")
    t = t[~t.metric.isin(TIMING | {"lr", "node_id", "pid"})]
    keep = ["trial", "status", "epoch", "metric", "value", *[c for c in t if c.startswith("param.")]]
    return t[keep].sort_values(["trial", "epoch", "metric"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repro")
    space = _space(tmp)
    return _sweep(space, tmp, "a"), _sweep(space, tmp, "b")


def test_the_same_sweep_twice_gives_the_same_trials_and_pick(two_runs):
    a, b = two_runs
    pd.testing.assert_frame_equal(_values(a), _values(b))
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    assert sa["best_trial"] == sb["best_trial"] and sa["best_scores"] == sb["best_scores"]
    assert _values(a).drop_duplicates("trial").status.tolist().count("stopped") >= 1


def test_optuna_records_stopped_trials_as_pruned_and_its_figures_draw(two_runs):
    import optuna.visualization as ov
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from bench.report import write_report

    run = two_runs[0]
    study = optuna.load_study(study_name="a", storage=JournalStorage(
        JournalFileBackend(str(run / "optuna.journal"))))
    table = _values(run)
    status = table.drop_duplicates("trial").set_index("trial").status
    states = {f"t{t.number + 1:03d}": t.state for t in study.trials}
    expect = {"completed": optuna.trial.TrialState.COMPLETE,
              "stopped": optuna.trial.TrialState.PRUNED,
              "diverged": optuna.trial.TrialState.FAIL}
    assert states == {t: expect[s] for t, s in status.items()}
    for t in study.trials:  # intermediate values: the trial's val WAR per epoch, stop epoch included
        rows = table[(table.trial == f"t{t.number + 1:03d}") & (table.metric == "val_war")]
        assert t.intermediate_values == pytest.approx(dict(zip(rows.epoch, rows.value)))
    assert study.best_trial.state == optuna.trial.TrialState.COMPLETE
    for plot in (ov.plot_optimization_history, ov.plot_intermediate_values, ov.plot_slice,
                 ov.plot_parallel_coordinate):
        plot(study)
    _, page = write_report(run)
    assert not page.errors
    assert {"sweep.history", "sweep.slice", "sweep.curves"} <= set(page.drawn)


def test_confirm_retrains_the_top_configurations_at_fresh_seeds_and_crowns_the_best_mean(
        tmp_path):
    run = _sweep(_space(tmp_path), tmp_path, "c", "--confirm", "2", "--trials", "4")
    summary = json.loads((run / "summary.json").read_text())
    table = _values(run)
    final = table[table.metric == "val_war"].sort_values("epoch").groupby("trial").last()
    completed = final[final.status == "completed"].value
    top2 = sorted(completed.index, key=lambda t: (-completed[t], t))[:2]
    conf = pd.read_csv(run / "confirm.csv")
    val = conf[conf.metric == "val_war"]
    assert sorted(val.trial.unique()) == sorted(top2)
    assert sorted(val.seed.unique()) == [1, 2]  # fresh: the study's own seed is 0
    means = val.groupby("trial").value.mean()
    c = summary["confirm"]
    assert summary["picked_by"] == "confirm" and summary["best_trial"] == c["winner"]
    assert c["winner"] == sorted(means.index, key=lambda t: (-means[t], t))[0]
    assert c["margin"] == pytest.approx(means.max() - means.min())
    assert summary["noise_floor"]["source"].startswith("--confirm (2 configurations x 2")
    assert len(list((run / "tune" / "confirm").glob("*/result.json"))) == 4  # every run kept
    models = yaml.safe_load((run / "models.yaml").read_text())
    assert models[0]["name"] == "hdf-best" and models[0]["trial"] == c["winner"]
