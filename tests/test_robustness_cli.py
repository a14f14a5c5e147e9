"""`python -m robustness --run RUN_DIR` on a real tiny sweep folder, and its user errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from bench.config import load_config
from bench.engine import Trainer
from bench.errors import DataError
from bench.runs import load_checkpoint, save_checkpoint
from robustness import __main__ as cli
from robustness import runs

SMALL = ["data.preset=ci", "data.num_frames=8", "data.size=32", "train.epochs=1",
         "data.batch_size=16", "train.device=cpu"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A sweep run folder per the contract: models.yaml + models/<name>/{config.yaml, checkpoint.pt}."""
    run = tmp_path_factory.mktemp("sweep")
    manifest = []
    for name, method, role in (("hdf-best", "hdf", "hdf"), ("x3d_ce", "x3d_ce", "baseline")):
        cfg = load_config(method=method, overrides=SMALL)
        trainer = Trainer(cfg)
        trainer.train_epoch()
        folder = run / "models" / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        save_checkpoint(folder / "checkpoint.pt", trainer.state_dict())
        manifest.append({"name": name, "role": role, "method": method, "seed": 0,
                         "path": f"models/{name}"})
    (run / "models.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return run


def _main(*args: str) -> int:
    with pytest.raises(SystemExit) as e:
        cli.run_main(cli.main, list(args))
    return e.value.code


@pytest.mark.slow
def test_cli_writes_the_contract_tables(run_dir, capsys):
    args = ["--run", str(run_dir), "--shifts", "gaussian_noise,reverse", "--severities", "1,5",
            "--seeds", "0,1", "--bootstrap", "200", "--limit", "16", "--threads", "1", "--quiet"]
    assert _main(*args) == 0
    out = capsys.readouterr().out
    assert "mCE" in out and "hdf-best - x3d_ce" in out and str(run_dir / "robustness") in out
    folder = run_dir / "robustness"
    res = pd.read_parquet(folder / "results.parquet")
    assert list(res.columns) == ["model", "role", "shift", "severity", "seed", "metric", "value"]
    assert res.equals(pd.read_csv(folder / "results.csv").astype(res.dtypes.to_dict()))
    assert set(res["shift"]) == {"clean", "gaussian_noise", "reverse", "longtail_exp", "longtail_step"}
    corr = res[res["shift"] == "reverse"]
    assert set(corr.severity) == {1, 5} and set(corr.seed) == {0, 1}
    assert dict(zip(res.model, res.role)) == {"hdf-best": "hdf", "x3d_ce": "baseline"}
    assert res.value.between(0, 1).all()
    pred = pd.read_parquet(folder / "predictions.parquet")
    assert list(pred.columns) == ["model", "shift", "severity", "seed", "clip", "y_true", "y_pred"]
    assert pred["clip"].nunique() == 16 and len(pred) == 2 * 16 * (1 + 2 * 2 * 2)
    # results agree with predictions
    clean = pred[(pred["shift"] == "clean") & (pred.model == "x3d_ce")]
    war = res.query("model == 'x3d_ce' and shift == 'clean' and metric == 'war'").value.item()
    assert war == pytest.approx((clean.y_true == clean.y_pred).mean())
    scores = pd.read_csv(folder / "scores.csv")
    assert {"mPC", "rPC", "mCE", "rmCE"} <= set(scores.score) and set(scores.baseline) == {"x3d_ce"}
    gain = pd.read_csv(folder / "gain.csv")
    assert set(gain.model) == {"hdf-best"} and set(gain.baseline) == {"x3d_ce"}
    assert (gain.ci_low <= gain.estimate + 1e-12).all() and (gain.estimate <= gain.ci_high + 1e-12).all()
    assert not list(run_dir.glob(".robustness*"))
    suite = json.loads((folder / "suite.json").read_text())  # scored where they were trained
    assert (suite["device"], suite["device_note"]) == ("cpu", None)
    assert suite["trained_devices"] == {"hdf-best": "cpu", "x3d_ce": "cpu"}

    # Same seeds, same corrupted clips: a rerun reproduces every prediction, and replaces the folder.
    assert _main(*args, "--baseline", "hdf-best") == 0
    again = pd.read_parquet(folder / "predictions.parquet")
    assert again.equals(pred)
    assert set(pd.read_csv(folder / "scores.csv").baseline) == {"hdf-best"}


@pytest.mark.slow
def test_library_evaluate_is_paired_across_models(run_dir):
    import robustness

    entries = runs.read_manifest(run_dir)
    loaded = runs.load_models(entries, torch.device("cpu"))
    data = runs.test_set({k: c for k, (c, _) in loaded.items()})
    data.records = data.records[:6]
    model = loaded["x3d_ce"][1]
    df = robustness.evaluate({"a": model, "b": model}, data, shifts=["jpeg"], severities=[3],
                             imbalance_ratios=())
    a, b = (df[df.model == m].drop(columns=["model", "role"]).reset_index(drop=True) for m in "ab")
    assert a.equals(b)  # the same corrupted tensors reach both models
    assert set(df["shift"]) == {"clean", "jpeg"}


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_models_trained_on_cuda_are_scored_on_cpu_with_a_warning(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("robustness"))
    path = run / "models" / "x3d_ce" / "checkpoint.pt"
    state = load_checkpoint(path)
    state["config"]["train"]["device"] = "cuda"
    save_checkpoint(path, state)
    args = ["--run", str(run), "--shifts", "reverse", "--severities", "1", "--bootstrap", "20",
            "--limit", "4", "--imbalance", "off", "--quiet"]
    assert _main(*args) == 0
    err = capsys.readouterr().err
    assert err == "warning: models trained on cuda; this machine has no CUDA: scoring on cpu\n"
    suite = json.loads((run / "robustness" / "suite.json").read_text())
    assert suite["device"] == "cpu" and suite["trained_devices"]["x3d_ce"] == "cuda"
    assert _main(*args, "--device", "cpu") == 0  # an explicit --device wins, silently
    assert capsys.readouterr().err == ""
    assert json.loads((run / "robustness" / "suite.json").read_text())["device_note"] is None


@pytest.mark.parametrize("args,needle", [
    (["--shifts", "jpg"], "unknown shift 'jpg'. Did you mean 'jpeg'?"),
    (["--severities", "7"], "severity '7' is invalid; valid: 1, 2, 3, 4, 5"),
    (["--seeds", "a"], "--seeds"),
    (["--imbalance", "1"], "imbalance ratio"),
    (["--device", "gpu"], "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    pytest.param(["--device", "cuda"], "device cuda: CUDA is not available on this machine",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_bad_options_fail_in_one_line(tmp_path, capsys, args, needle):
    assert _main("--run", str(tmp_path), *args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_run_folder_and_manifest(tmp_path, capsys):
    assert _main("--run", str(tmp_path / "nope")) == 2
    assert "run folder" in capsys.readouterr().err
    assert _main("--run", str(tmp_path)) == 2
    assert "models.yaml does not exist" in capsys.readouterr().err
    (tmp_path / "models.yaml").write_text("- {name: a, role: champion, path: models/a}\n")
    assert _main("--run", str(tmp_path)) == 2
    assert "role must be one of hdf, baseline" in capsys.readouterr().err
    (tmp_path / "models.yaml").write_text("- {name: a, role: hdf, path: models/a}\n")
    assert _main("--run", str(tmp_path), "--baseline", "b") == 2
    assert "unknown baseline 'b'. Models in this run: a" in capsys.readouterr().err
    assert _main("--run", str(tmp_path)) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "robustness").exists()


def test_write_outputs_is_all_or_nothing(tmp_path):
    good = pd.DataFrame({"a": [1]})
    first = runs.write_outputs(tmp_path, {"x.csv": good}, {})
    assert (first / "x.csv").is_file()
    bad = pd.DataFrame({"a": [object()]})  # parquet cannot store it
    with pytest.raises(Exception):
        runs.write_outputs(tmp_path, {"y.csv": good, "z.parquet": bad}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["robustness"]
    assert sorted(p.name for p in first.iterdir()) == ["suite.json", "x.csv"]
    with pytest.raises(DataError):
        runs.read_manifest(tmp_path / "missing")


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("sinfo") is None, reason="no SLURM here (CI brings one up)")
def test_slurm_job_array_gives_the_same_tables_as_in_process(run_dir, tmp_path, capsys):
    """One array task per model x shift (plus clean), merged: identical results and predictions."""
    common = ["--run", str(run_dir), "--shifts", "gaussian_noise,reverse", "--severities", "1,5",
              "--bootstrap", "50", "--limit", "12", "--threads", "1", "--quiet"]
    assert _main(*common) == 0
    local = pd.read_parquet(run_dir / "robustness" / "results.parquet")
    local_pred = pd.read_parquet(run_dir / "robustness" / "predictions.parquet")
    assert _main(*common, "--launcher", "slurm", "--slurm-logs", str(tmp_path / "logs"),
                 "--time", "10") == 0
    capsys.readouterr()
    array = pd.read_parquet(run_dir / "robustness" / "results.parquet")
    array_pred = pd.read_parquet(run_dir / "robustness" / "predictions.parquet")
    key = ["model", "shift", "severity", "seed", "metric"]
    pd.testing.assert_frame_equal(local.sort_values(key, ignore_index=True),
                                  array.sort_values(key, ignore_index=True), check_like=True)
    pkey = ["model", "shift", "severity", "seed", "clip"]
    pd.testing.assert_frame_equal(local_pred.sort_values(pkey, ignore_index=True),
                                  array_pred.sort_values(pkey, ignore_index=True), check_like=True)
    assert len(list((tmp_path / "logs").rglob("*_log.out"))) == 2 * 3  # 2 models x (clean + 2)
    suite = json.loads((run_dir / "robustness" / "suite.json").read_text())
    assert (suite["device"], suite["gpus_per_task"]) == ("cpu", 0)  # trained on cpu: no GPU asked
