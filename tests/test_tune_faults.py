"""Real sweeps with real faults: a dying worker, a diverging trial, a killed driver.

Each runs `python -m bench.tune` on the smoke space (CI-sized synthetic data at
4x32x32) in a subprocess with a local Ray bound to 127.0.0.1, and injects the
fault from outside with real signals.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _space(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _start(args: list[str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "bench.tune", *args, "--no-robustness",
                             "--no-report"], cwd=cwd, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _reports(run_dir: Path, phase: str = "sweep") -> list[dict]:
    """Every result a trial has reported so far (Tune's result.json lines)."""
    out = []
    for f in (run_dir / "tune" / phase).glob("*/result.json"):
        for line in f.read_text().splitlines():
            try:
                out.append({**json.loads(line), "_dir": f.parent.name})
            except json.JSONDecodeError:
                pass  # a line being written
    return out


def _wait(pred, proc: subprocess.Popen, log: Path, timeout: float = 400.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        got = pred()
        if got:
            return got
        if proc.poll() is not None:
            pytest.fail(f"sweep ended early ({proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"timed out:\n{log.read_text()[-3000:]}")


def test_worker_death_resumes_and_nan_trial_is_diverged(tmp_path: Path) -> None:
    """Trial lr is categorical [1e-3, 1e12]: the huge one diverges; a worker is SIGKILLed."""
    space = _space(tmp_path, trials=3,
                   params={"optim.lr": {"type": "categorical", "choices": [0.001, 1.0e12]},
                           "loss.tau": {"type": "loguniform", "low": 0.05, "high": 0.5}},
                   search={"sampler": "random", "seed": 3})
    log = tmp_path / "log.txt"
    run_dir = tmp_path / "runs" / "faults"
    proc = _start(["--space", str(space), "--out", str(tmp_path / "runs"), "--name", "faults"], log)

    def first_epoch_of_healthy_trial():
        for r in _reports(run_dir):
            if r.get("epoch") == 1 and not r.get("diverged"):
                return r
        return None

    victim = _wait(first_epoch_of_healthy_trial, proc, log)
    os.kill(victim["pid"], signal.SIGKILL)  # the Ray worker running that trial
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]

    table = pd.read_parquet(run_dir / "trials.parquet")
    status = table.groupby("trial").status.first()
    assert len(status) == 3, status  # every trial accounted for
    assert "diverged" in set(status) and "completed" in set(status), status
    diverged = table[table.status == "diverged"]
    assert (diverged["param.optim.lr"] == 1e12).all()
    assert "loss became" in diverged.reason.iloc[0]
    assert not (table[table.status != "diverged"]["param.optim.lr"] == 1e12).any()
    # the killed trial restarted once, from its epoch-1 checkpoint: epochs 1 and 2 once each
    killed = table[(table.restarts == 1)]
    assert killed.trial.nunique() == 1, table.groupby("trial").restarts.first()
    war = killed[killed.metric == "val_war"]
    assert list(war.epoch) == [1, 2] and killed.status.iloc[0] == "completed"
    # the local Ray stayed on loopback: every trial ran on node 127.0.0.1
    assert {r["node_ip"] for r in _reports(run_dir)} == {"127.0.0.1"}
    pids = [r["pid"] for r in _reports(run_dir) if r["_dir"] == victim["_dir"]]
    assert pids[0] == victim["pid"] and pids[-1] != victim["pid"]
    models = yaml.safe_load((run_dir / "models.yaml").read_text())
    assert {m["name"] for m in models} == {"hdf-best", "x3d_ce"}
    for m in models:
        assert (run_dir / m["path"] / "checkpoint.pt").is_file()


def test_killed_driver_resumes_without_rerunning_or_losing_trials(tmp_path: Path) -> None:
    space = _space(tmp_path, trials=4, baselines=[])
    log = tmp_path / "log.txt"
    run_dir = tmp_path / "runs" / "killed"
    # relative --out and --resume, as a user types them (the README's `runs/` default)
    proc = _start(["--space", str(space), "--out", "runs", "--name", "killed"], log, cwd=tmp_path)

    def one_trial_finished():
        done = [r for r in _reports(run_dir) if r.get("epoch") == 2]
        return done or None

    finished = _wait(one_trial_finished, proc, log)
    time.sleep(1.0)  # let the controller save the experiment state after the completion
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, no clean-up
    proc.wait(timeout=30)
    before = {(r["_dir"], r["epoch"]): r["pid"] for r in _reports(run_dir)}

    log2 = tmp_path / "log2.txt"
    proc2 = _start(["--resume", "runs/killed"], log2, cwd=tmp_path)
    assert proc2.wait(timeout=600) == 0, log2.read_text()[-3000:]
    table = pd.read_parquet(run_dir / "trials.parquet")
    assert table.trial.nunique() == 4  # exactly the requested number
    per_trial = table[table.metric == "val_war"].groupby("trial").epoch.apply(list)
    for epochs in per_trial:
        assert epochs == sorted(set(epochs))  # no epoch twice
    after = _reports(run_dir)
    for r in finished:  # the finished trial was not rerun: same pid, no new reports
        rows = [a for a in after if a["_dir"] == r["_dir"]]
        assert len(rows) == 2 and all(a["pid"] == before[(r["_dir"], a["epoch"])] for a in rows)
    assert "resuming sweep" in log2.read_text()
    assert (run_dir / "models" / "hdf-best" / "checkpoint.pt").is_file()
