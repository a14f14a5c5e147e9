"""bench.train / bench.evaluate end to end on the CI-sized synthetic set."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
import torch

from bench import evaluate as evaluate_cli
from bench import train as train_cli
from bench.config import list_methods, load_config

ROOT = Path(__file__).resolve().parents[1]

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
        # the released `code` DSC can be ~0 (1e-10) on one CI-sized epoch: its share with it
        assert 0 <= train["grad_share_dsc"] and 0 < train["grad_share_ce"] <= 1.5


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


@pytest.mark.parametrize("signame, code, line", [("SIGTERM", 143, "terminated (SIGTERM)"),
                                                 ("SIGINT", 130, "interrupted")])
def test_a_stop_signal_mid_epoch_leaves_no_run_folder(tmp_path, signame, code, line):
    """SIGTERM (kill, SLURM, systemd) ends a run as Ctrl-C does: the .partial folder goes."""
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "bench.train", *SMALL, "--set", "train.epochs=50",
                             "--out", str(tmp_path / "runs"), "--name", "r"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "runs" / "r.partial" / "env.json").exists():  # training has begun
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.5)  # mid-epoch
        os.kill(proc.pid, getattr(signal, signame))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert err.strip() == line, err
    assert not any((tmp_path / "runs").iterdir())


STOPPED = """
import os, signal, sys, time
from bench.cli import run_main
if sys.argv[2] == "ignored":
    signal.signal(getattr(signal, sys.argv[1]), signal.SIG_IGN)  # as nohup leaves SIGHUP

def main(argv):
    try:
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        time.sleep(0.2)
    finally:
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))  # a repeat must not cut the clean-up
        print("cleaned up", flush=True)
    return 0

run_main(main)
"""


@pytest.mark.parametrize("signame, how, code, err", [
    ("SIGTERM", "handled", 143, "terminated (SIGTERM)"),
    ("SIGHUP", "handled", 129, "terminated (SIGHUP)"),
    ("SIGHUP", "ignored", 0, ""),
])
def test_run_main_turns_stop_signals_into_one_line_and_128_plus_n(signame, how, code, err):
    r = subprocess.run([sys.executable, "-c", STOPPED, signame, how], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert (r.returncode, r.stderr.strip(), r.stdout.strip()) == (code, err, "cleaned up")


# -- the bad-input battery: every entry point, one line, exit 2, nothing left behind ------------

SMOKE = str(ROOT / "search_spaces" / "smoke.yaml")


def _checkpoint(preset: str | None = None, drop: str | None = None):
    """A real (untrained) checkpoint; `preset`: weights of another backbone than its config."""
    def write(path: Path) -> None:
        from bench.config import load_config
        from bench.engine import model_from_config

        cfg = load_config(method="x3d_ce", overrides=["data.num_frames=4", "data.size=32"])
        weights_cfg = load_config(method="x3d_ce", overrides=[
            "data.num_frames=4", "data.size=32", f"model.preset={preset or cfg.model.preset}"])
        state = {"model": model_from_config(weights_cfg).state_dict(), "config": cfg.to_dict()}
        state.pop(drop, None)
        torch.save(state, path)
    return write


def _run_folder(manifest: str):
    def write(path: Path) -> None:
        path.mkdir()
        (path / "models.yaml").write_text(manifest)
    return write


def _synth_folder(marker: bytes | None):
    """A data.root folder that holds frames but no readable synth.json."""
    def write(path: Path) -> None:
        (path / "Clip").mkdir(parents=True)
        if marker is not None:
            (path / "synth.json").write_bytes(marker)
    return write


def _video_list(rows: str, files: dict[str, bytes] | None = None):
    def write(path: Path) -> None:
        path.write_text("path,label\n" + rows)
        for name, data in (files or {}).items():
            (path.parent / name).write_bytes(data)
    return write


class _Evil:  # a class torch's weights_only unpickler refuses
    pass


# Files a case needs, by the name its arguments use; written into the test's folder first.
FIXTURES: dict[str, Callable[[Path], None]] = {
    "latin1.yaml": lambda p: p.write_bytes("train:\n  epochs: 1  # caf\xe9\n".encode("latin-1")),
    "empty.yaml": lambda p: p.write_text("# nothing here\n"),
    "empty.pt": lambda p: p.write_bytes(b""),
    "random.pt": lambda p: p.write_bytes(bytes(range(256)) * 8),
    "tensor.pt": lambda p: torch.save(torch.zeros(3), p),
    "noconfig.pt": _checkpoint(drop="config"),
    "xs-weights.pt": _checkpoint(preset="xs"),
    "evil.pt": lambda p: torch.save({"model": {}, "config": {}, "x": _Evil()}, p),
    "afile": lambda p: p.write_text(""),
    "corrupt-synth": _synth_folder(b"{not json"),
    "incomplete-synth": _synth_folder(None),
    "missing.csv": _video_list("gone1.mp4,angry\ngone2.mp4,happy\n"),
    "notvideo.csv": _video_list("notes.txt,angry\n", {"notes.txt": b"hello, not a video\n"}),
    "escape.csv": _video_list("../../../../etc/passwd,angry\n"),
    "notarun": lambda p: (p.mkdir(), (p / "holiday.jpg").write_bytes(b"jpeg")),
    "arun": _run_folder("- {name: a, role: hdf, path: models/a}\n"),
    "badseed": _run_folder("- {name: a, role: hdf, path: models/a, seed: abc}\n"),
    "escaperun": _run_folder("- {name: a, role: hdf, path: ../../../../etc}\n"),
}

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

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
    # A device the machine lacks, or no device at all.
    pytest.param(["bench.train", "--set", "train.device=cuda"], "CUDA is not available",
                 marks=NO_CUDA, id="train-cuda"),
    pytest.param(["bench.evaluate", "nope.pt", "--device", "cuda"], "available devices: cpu",
                 marks=NO_CUDA, id="evaluate-cuda"),
    (["bench.evaluate", "nope.pt", "--device", "tpu"], "auto, cpu, cuda or cuda:N"),
    (["bench.train", "--set", "train.device=cuda:x"], "train.device must be"),
    (["bench.train", "--set", "train.device=cuda:99"], "available devices: cpu"),
    # Ranges.
    (["bench.train", "--set", "train.threads=-2"], "train.threads must be >= 1"),
    (["bench.train", "--set", "train.precision=fp8"], "train.precision must be one of auto"),
    pytest.param(["bench.train", "--set", "train.precision=fp16"], "fp16 needs a CUDA device",
                 marks=NO_CUDA, id="train-fp16-cpu"),
    (["bench.train", "--set", "train.precision=bf16", "--set", "train.channels_last=true"],
     "channels_last with bf16 on CPU is refused"),
    (["bench.train", "--set", "train.eval_every=-1"], "train.eval_every must be >= 0"),
    (["bench.train", "--set", "train.compile=maybe"], "compile must be true or false"),
    (["bench.train", "--set", "train.seed=-1"], "train.seed must be in 0..2**63-1"),
    (["bench.train", "--set", "data.data_seed=-1"], "synthetic data seed must be"),
    (["bench.train", "--set", "optim.grad_clip=-1"], "optim.grad_clip must be > 0"),
    (["bench.data.synth", "--out", "o", "--seed", "-1"], "synthetic data seed must be"),
    (["bench.data.synth", "--out", "o", "--set", "num_clips=abc"], "must be an integer"),
    (["bench.data.synth", "--out", "o", "--set", "class_prior=5"], "class_prior 5 is invalid"),
    (["bench.data.synth", "--out", "afile/o"], "afile is a file"),
    (["robustness", "--run", "arun", "--threads", "-2"], "--threads must be >= 1"),
    (["bench.tune", "--space", SMOKE, "--cpus", "-1"], "expected an integer >= 1"),
    # Files that are not UTF-8, empty, or not YAML.
    (["bench.train", "--config", "latin1.yaml"], "latin1.yaml is not a UTF-8 text file"),
    (["bench.tune", "--space", "latin1.yaml"], "latin1.yaml is not a UTF-8 text file"),
    (["bench.train", "--config", "empty.yaml"], "empty.yaml is empty"),
    (["bench.data.synth", "--out", "o", "--set", "noise_scale=[1"], "is not valid YAML"),
    (["bench.tune", "--space", SMOKE, "--set", "train.epochs=[1"], "is not valid YAML"),
    # Checkpoints that are not a hdf-bench training state, or hold what may not be loaded.
    (["bench.evaluate", "empty.pt"], "empty.pt is empty"),
    (["bench.evaluate", "random.pt"], "random.pt is not a hdf-bench checkpoint"),
    (["bench.evaluate", "tensor.pt"], "holds a Tensor"),
    (["bench.evaluate", "noconfig.pt"], "lacks 'config'"),
    (["bench.evaluate", "xs-weights.pt"], "do not match its config: preset tiny (config) vs xs/s/m"),
    (["bench.evaluate", "evil.pt"], "holds objects a checkpoint may not hold (first: test_train._Evil"),
    # Outputs checked before the work.
    (["bench.evaluate", "nope.pt", "--out", "afile/s.csv"], "afile is a file, not a folder"),
    (["bench.report", "arun", "--out", "nodir/r.html"], "folder nodir does not exist"),
    (["bench.report", "arun", "--out", "arun"], "it is a folder"),
    (["bench.report", "notarun"], "notarun is not a run folder"),
    # Data: damaged cache entries, lists without a usable clip, paths leaving their folder.
    (["bench.train", "--set", "data.root=corrupt-synth"], "its synth.json is unreadable"),
    (["bench.train", "--set", "data.root=incomplete-synth"], "it has no synth.json"),
    (["bench.train", "--set", "data.name=video", "--set", "data.list=missing.csv",
      "--set", "data.on_error=skip"], "no usable clips in missing.csv (2 skipped"),
    (["bench.train", "--set", "data.name=video", "--set", "data.list=notvideo.csv",
      "--set", "data.on_error=skip"], "no usable clips in notvideo.csv (1 skipped"),
    (["bench.train", "--set", "data.name=video", "--set", "data.list=escape.csv"],
     "points outside"),
    (["robustness", "--run", "badseed"], "seed must be an integer, got 'abc'"),
    (["robustness", "--run", "escaperun"], "points outside escaperun"),
]
# The same refusals from a real process (imports, run_main, exit status): one per CLI kind.
REAL_PROCESS = [USER_ERRORS[0], USER_ERRORS[5]]

CLIS = {"bench.train": "bench.train", "bench.evaluate": "bench.evaluate",
        "bench.report": "bench.report.__main__", "bench.data.synth": "bench.data.synth.__main__",
        "bench.tune": "bench.tune", "robustness": "robustness.__main__"}


def _argv(args: list[str], tmp: Path) -> list[str]:
    extra = {"bench.train": ["--out", str(tmp / "runs")], "bench.evaluate": ["--quiet"],
             "robustness": ["--quiet"]}
    return [*args[1:], *extra.get(args[0], [])]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("args,needle", USER_ERRORS)
def test_user_errors_are_one_line_without_traceback(tmp_path, monkeypatch, capsys, args, needle):
    # In process (a subprocess per case costs seconds of imports); the real process path is below.
    import importlib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HDF_BENCH_CACHE", str(tmp_path / "cache"))  # nothing may appear here either
    for name, write in FIXTURES.items():
        if any(a == name or a.startswith(f"{name}/") or a.endswith(f"={name}") for a in args):
            write(tmp_path / name)
    before = _tree(tmp_path)
    cli = importlib.import_module(CLIS[args[0]])
    with pytest.raises(SystemExit) as e:
        cli.run_main(cli.main, _argv(args, tmp_path))
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert needle in err and "Traceback" not in err, err
    lines = err.splitlines()  # one line; argparse's own refusals lead with the usage
    assert len(lines) == 1 or lines[0].startswith("usage:") and ": error: " in lines[-1], err
    assert "weights_only" not in err  # never the advice to turn the unsafe load on
    assert _tree(tmp_path) == before  # no run folder, cache entry, lock or hidden temp file


@pytest.mark.parametrize("args,needle", REAL_PROCESS)
def test_user_errors_from_a_real_process(tmp_path, args, needle):
    r = _cli(args[0], *_argv(args, tmp_path), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err, err
    assert "Traceback" not in r.stderr
