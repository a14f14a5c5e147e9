"""bench.train / bench.evaluate end to end on the CI-sized synthetic set."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import evaluate as evaluate_cli
from bench import train as train_cli
from bench.config import list_methods, load_config

# The real default config, shrunk: CI-sized data, short clips, one epoch.
SMALL = ["--set", "data.preset=ci", "--set", "data.num_frames=4", "--set", "data.size=32",
         "--set", "train.epochs=1", "--set", "data.batch_size=8", "--quiet"]


def _train(tmp: Path, name: str, *extra: str) -> Path:
    with pytest.raises(SystemExit) as e:
        train_cli.run_main(train_cli.main, [*SMALL, "--out", str(tmp), "--name", name, *extra])
    assert e.value.code == 0
    return tmp / name


@pytest.mark.parametrize("method", list_methods())
def test_every_method_trains_one_epoch(tmp_path, method):
    run = _train(tmp_path, method, "--method", method)
    m = pd.read_csv(run / "metrics.csv")
    loss = m[(m.split == "train") & (m.metric == "loss")].value
    assert len(loss) == 1 and loss.notna().all() and (loss.abs() < 1e6).all()
    test = m[m.split == "test"].set_index("metric").value
    assert 0.0 <= test["war"] <= 1.0 and 0.0 <= test["uar"] <= 1.0
    assert {f"recall_{c}" for c in ("happy", "disgust", "fear")} <= set(test.index)
    if load_config(method=method).loss.name == "dsm":  # what DSM did, every epoch
        train = m[m.split == "train"].set_index("metric").value
        dsm = ["ce", "dsc", "ib", "lambda_ce", "lambda_sc", "grad_share_ce", "grad_share_dsc",
               "grad_share_ib", "grad_cos_dsc", "grad_cos_ib"]
        assert set(dsm) <= set(train.index) and train[dsm].notna().all()
        assert 0 < train["grad_share_dsc"] and 0 < train["grad_share_ce"] <= 1.5


def test_run_folder_contents_determinism_and_evaluate(tmp_path, capsys):
    a = _train(tmp_path, "a", "--method", "x3d_ce", "--set", "train.epochs=2")
    b = _train(tmp_path, "b", "--method", "x3d_ce", "--set", "train.epochs=2")
    for f in ("config.yaml", "env.json", "metrics.csv", "confusion.csv",
              "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (a / f).is_file(), f
    assert not list(tmp_path.glob("*.partial"))
    ma, mb = pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv")
    timing = ma.metric.isin(["seconds", "clips_per_s"])
    assert ma[~timing].equals(mb[~timing])  # same seed, same numbers
    conf = pd.read_csv(a / "confusion.csv")
    assert set(conf.checkpoint) == {"best", "last"} and (conf["count"] >= 0).all()

    state = torch.load(a / "checkpoints/last.pt", weights_only=True)
    assert state["epoch"] == 2 and state["config"]["method"] == "x3d_ce"
    last_war = ma[(ma.split == "test") & (ma.epoch == 2) & (ma.metric == "war")].value.item()
    out = tmp_path / "eval.csv"
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        evaluate_cli.run_main(evaluate_cli.main, [str(a / "checkpoints/last.pt"), "--out", str(out)])
    assert e.value.code == 0
    ev = pd.read_csv(out).set_index("metric").value
    assert ev["war"] == pytest.approx(last_war)
    assert "war" in capsys.readouterr().out


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


USER_ERRORS = [
    (["bench.train", "--method", "hfd"], "Did you mean 'hdf'"),
    (["bench.train", "--set", "data.name=dfew"], "root"),
    (["bench.train", "--set", "data.name=dfew", "--set", "data.root=/nonexistent"], "/nonexistent"),
    (["bench.train", "--set", "loss.name=dsm", "--set", "loss.tua=1"], "Did you mean 'tau'"),
    (["bench.train", "--method", "hdf", "--set", "loss.scaling_grad=unscale"],
     "Did you mean 'unscaled'"),
    (["bench.train", "--method", "hdf", "--set", "loss.features=proj"], "Allowed: pooled, projection"),
    (["bench.train", "--method", "hdf", "--set", "loss.ib_cov=samples"], "Did you mean 'sample'"),
    (["bench.train", "--method", "hdf", "--set", "loss.scaling_grad=unscaled",
      "--set", "train.diag_every=0"], "train.diag_every >= 1"),
    (["bench.train", "--method", "hdf", "--set", "optim.decay_all=maybe"], "decay_all must be true or false"),
    (["bench.train", "--config", "missing.yaml"], "missing.yaml"),
    (["bench.evaluate", "nope.pt"], "checkpoint not found: nope.pt"),
]


def _argv(args: list[str], tmp: Path) -> list[str]:
    return [*args[1:], *(["--out", str(tmp / "runs")] if args[0] == "bench.train" else ["--quiet"])]


@pytest.mark.parametrize("args,needle", USER_ERRORS)
def test_user_errors_are_one_line_without_traceback(tmp_path, monkeypatch, capsys, args, needle):
    # In process (a subprocess per case costs seconds of imports); the real process path is below.
    monkeypatch.chdir(tmp_path)
    cli = train_cli if args[0] == "bench.train" else evaluate_cli
    with pytest.raises(SystemExit) as e:
        cli.run_main(cli.main, _argv(args, tmp_path))
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert err.startswith("error: ") and needle in err and "\n" not in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("args,needle", [USER_ERRORS[0], USER_ERRORS[-1]])
def test_user_errors_from_a_real_process(tmp_path, args, needle):
    r = _cli(args[0], *_argv(args, tmp_path), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err, err
    assert "Traceback" not in r.stderr
