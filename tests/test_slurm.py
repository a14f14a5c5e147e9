"""The SLURM path for real: dev cluster (slurm/dev-cluster.sh up), submitit, sweep.sh.

Tests marked `slow` need a running SLURM with accounting (CI brings one up in
.ci/run); without `sinfo` they are skipped with the reason. The sweep.sh
end-to-end and requeue tests drive `python -m bench.tune` with the smoke space.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import ConfigError
from bench.launch import (LAUNCHERS, LaunchError, ResumableCommand, SlurmOptions, check_cluster,
                          check_ray_address, merge_tidy, parse_time, plan_tasks, run_array,
                          toy_shift_eval)
from bench.launch.array import TOY_KEYS

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "slurm" / "sweep.sh"
SMOKE = ROOT / "search_spaces" / "smoke.yaml"


def _slurm_ready() -> str | None:
    if shutil.which("sinfo") is None:
        return "no SLURM here ('sinfo' not on PATH): start one with 'bash slurm/dev-cluster.sh up'"
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0 or not out.stdout.strip():
        return f"SLURM does not answer (sinfo: {out.stderr.strip() or 'no nodes'})"
    return None


_why_not = _slurm_ready()
needs_slurm = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")


# ---------------------------------------------------------------- no cluster needed

@pytest.mark.parametrize("text,minutes", [("90", 90), ("1:30", 2), ("2:00:00", 120), ("1-0", 1440),
                                          ("1-2:30", 1590), ("0-0:0:30", 1), (45, 45)])
def test_parse_time_accepts_sbatch_forms(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("text", ["", "1h", "1:2:3:4", "-5", "0", "x-1:00"])
def test_parse_time_rejects_nonsense(text):
    with pytest.raises(ConfigError):
        parse_time(text)


def test_extra_sbatch_options_become_submitit_parameters():
    opts = SlurmOptions(extra=("--qos=high", "#SBATCH --constraint a100", "--exclusive"))
    assert opts.sbatch_extra() == {"qos": "high", "constraint": "a100", "exclusive": True}
    with pytest.raises(ConfigError, match="--name=value"):
        SlurmOptions(extra=("qos high",)).sbatch_extra()


def test_plan_tasks_is_models_times_groups_and_refuses_a_shift_twice():
    tasks = plan_tasks(["a", "b"], [["blur", "noise"], ["fog"]])
    assert [t.label for t in tasks] == ["a/blur+noise", "a/fog", "b/blur+noise", "b/fog"]
    with pytest.raises(ConfigError, match="'blur' is in group 1 and group 2"):
        plan_tasks(["a"], [["blur"], ["blur", "fog"]])


def test_merge_tidy_refuses_a_fact_twice_and_differing_columns():
    a = toy_shift_eval("m", ("blur",))
    with pytest.raises(ConfigError, match="share their keys"):
        merge_tidy([a, a], TOY_KEYS)
    with pytest.raises(ConfigError, match="columns"):
        merge_tidy([a, a.rename(columns={"value": "v"})], TOY_KEYS)


@pytest.mark.parametrize("launcher", LAUNCHERS.names())
def test_launchers_are_registered_by_name(launcher):
    assert callable(LAUNCHERS.get(launcher))


def test_local_array_equals_one_table():
    tasks = plan_tasks(["m1", "m2"], [["blur"], ["noise", "fog"]])
    merged = run_array(toy_shift_eval, [(t.model, t.shifts) for t in tasks], TOY_KEYS)
    whole = pd.concat([toy_shift_eval(m, ("blur", "noise", "fog")) for m in ("m1", "m2")])
    pd.testing.assert_frame_equal(merged, whole.sort_values(list(TOY_KEYS), ignore_index=True))


def test_unreachable_ray_address_is_one_line():
    import socket
    with socket.socket() as s:  # a port nobody listens on: bind, then close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match=f"cannot reach the Ray head at 127.0.0.1:{port}") as e:
        check_ray_address(f"127.0.0.1:{port}", timeout_s=2)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="not HOST:PORT"):
        check_ray_address("localhost")


def _server(reply: bytes | None):
    """A one-connection server on the address Ray dials for 127.0.0.1; `reply` after reading."""
    import contextlib
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))  # every interface, so also the one Ray dials
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):  # the client may hang up at any point
            conn.recv(1024)
            if reply is not None:
                conn.sendall(reply)
            conn.recv(1024)  # hold the connection until the client gives up

    threading.Thread(target=serve, daemon=True).start()
    return listener


SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("reply, ok", [
    (SETTINGS, True),                                   # what a gRPC server (Ray's GCS) sends
    (bytes([0, 0, 6, 4, 0, 0, 0, 0, 0]) + bytes(6), True),
    (None, False),                                      # a plain TCP listener: silence
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", False),      # a web server
    (bytes([0, 0, 0, 4, 1, 0, 0, 0, 0]), False),        # a SETTINGS acknowledgement is no opening
], ids=["settings", "settings-with-values", "silent", "http1", "settings-ack"])
def test_ray_address_must_answer_as_a_grpc_server(reply, ok):
    with _server(reply) as listener:
        port = listener.getsockname()[1]
        if ok:
            assert check_ray_address(f"127.0.0.1:{port}", reply_timeout_s=2)[1] == port
        else:
            with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.* is not a Ray head") as e:
                check_ray_address(f"127.0.0.1:{port}", reply_timeout_s=0.5)
            assert "\n" not in str(e.value)


def test_the_probe_dials_what_ray_dials(monkeypatch):
    """Ray swaps a loopback host for the machine's address; the check must go where Ray goes."""
    import bench.launch.command as command

    with _server(SETTINGS) as listener:
        port = listener.getsockname()[1]
        real = listener.getsockname()[0]
        monkeypatch.setattr(command, "ray_dial_address", lambda h, p: f"{real}:{p}")
        assert check_ray_address(f"localhost:{port}")[0] == real


def test_resumable_command_switches_to_resume_after_a_restart(tmp_path, monkeypatch):
    cmd = ResumableCommand("builtins:list", ["--space", "s.yaml"], ["--resume", "r"], tmp_path / "r")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert cmd() == ["--space", "s.yaml"]          # restarted, but nothing saved yet: start over
    (tmp_path / "r").mkdir()
    assert cmd() == ["--resume", "r"]
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert cmd() == ["--space", "s.yaml"]
    assert cmd.checkpoint().function.argv == ["--resume", "r"]


def test_no_slurm_on_path_is_one_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="SLURM not found: 'sbatch' is not on PATH"):
        check_cluster(SlurmOptions())


def test_sweep_script_outside_slurm_says_so():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    out = subprocess.run(["bash", str(SWEEP), "--space", str(SMOKE)], capture_output=True, text=True,
                         env=env, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: run this with sbatch (slurm/sweep.sh needs a SLURM allocation)"]


# ---------------------------------------------------------------- on a real cluster

def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)


def _sacct_states(job: str) -> list[str]:
    """Every record of the job (-D: also runs before a requeue), oldest first."""
    out = subprocess.run(["sacct", "-n", "-X", "-D", "-P", "-o", "State", "-j", job],
                         capture_output=True, text=True, timeout=30)
    return [s.split()[0] for s in out.stdout.split("\n") if s.strip()]


def _wait_job(job: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        squeue = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True)
        if not squeue.stdout.strip():
            states = _sacct_states(job)
            if states and states[-1] not in ("PENDING", "RUNNING", "REQUEUED"):
                return states[-1]
        time.sleep(2)
    subprocess.run(["scancel", job])
    raise AssertionError(f"job {job} did not finish within {timeout:.0f}s")


def _sbatch(tmp_path: Path, *args: str, cpus: int = 2) -> str:
    env = {**os.environ, "BENCH_PYTHON": sys.executable, "RAY_NODE_IP": "127.0.0.1"}
    out = subprocess.run(["sbatch", "--parsable", f"--cpus-per-task={cpus}", "--time=20",
                          f"--output={tmp_path}/slurm-%j.out", str(SWEEP), *args],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


def _log(tmp_path: Path, job: str) -> str:
    return (tmp_path / f"slurm-{job}.out").read_text()


@pytest.mark.slow
@needs_slurm
def test_submitit_array_round_trip_equals_local(tmp_path):
    tasks = plan_tasks(["model_a", "model_b"], [["blur", "noise"], ["occlusion"]])
    args = [(t.model, t.shifts) for t in tasks]
    opts = SlurmOptions(log_dir=tmp_path / "logs", time_min=5, poll_s=0.5, job_name="test-array")
    remote = run_array(toy_shift_eval, args, TOY_KEYS, launcher="slurm", options=opts)
    pd.testing.assert_frame_equal(remote, run_array(toy_shift_eval, args, TOY_KEYS))
    # It really was one array of len(tasks) tasks, recorded by accounting.
    # submitit gives each task a folder "<array>_<index>" (beside a hidden ".submission_file_*").
    ids = {m.group(1) for p in (tmp_path / "logs").iterdir() if (m := re.fullmatch(r"(\d+)_\d+", p.name))}
    assert len(ids) == 1, ids
    array_id = ids.pop()
    # A task writes its result just before it exits, so accounting may still say RUNNING,
    # or not list the task yet (slurmdbd lags): poll until every task is recorded finished.
    deadline = time.time() + 60
    while True:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", array_id],
                             capture_output=True, text=True)
        rows = [ln.split("|") for ln in out.stdout.split()]
        finished = all(r[1] not in ("RUNNING", "PENDING", "COMPLETING") for r in rows)
        if (finished and len(rows) == len(tasks)) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert sorted(r[0] for r in rows) == [f"{array_id}_{i}" for i in range(len(tasks))]
    assert {r[1] for r in rows} == {"COMPLETED"}


@pytest.mark.slow
@needs_slurm
def test_a_failing_array_task_is_one_line_naming_its_log(tmp_path):
    opts = SlurmOptions(log_dir=tmp_path / "logs", time_min=5, poll_s=0.5)
    with pytest.raises(LaunchError) as e:
        run_array(toy_shift_eval, [("m", ("blur",), 3), ("m", ("fog",), 0)], TOY_KEYS,
                  launcher="slurm", options=opts)
    msg = str(e.value)
    assert "\n" not in msg
    assert "ConfigError: severities must be at least 1, got 0" in msg and "log: " in msg


@pytest.mark.slow
@needs_slurm
@pytest.mark.parametrize("args,expected", [
    (["--partition", "no-such-partition"], "error: unknown SLURM partition 'no-such-partition'."),
    (["--mem", "100000"], "error: sbatch refused the job array of 4 tasks: "),
    (["--time", "1h"], "error: time '1h' is not "),
])
def test_bad_submission_is_one_line(tmp_path, args, expected):
    out = _cli("-m", "bench.launch", "check", "--slurm-logs", str(tmp_path), *args, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), out.stderr


@pytest.mark.slow
@needs_slurm
def test_sweep_folder_not_writable_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    job = _sbatch(tmp_path, "--space", str(SMOKE), "--out", str(blocker / "runs"), "--name", "x", cpus=1)
    assert _wait_job(job, 120) == "FAILED"
    errors = [ln for ln in _log(tmp_path, job).splitlines() if ln.startswith("error:")]
    assert errors == [f"error: sweep folder {blocker}/runs is not writable (from {os.uname().nodename.split('.')[0]})"]


def _check_finished_sweep(run: Path) -> pd.DataFrame:
    import yaml

    trials = pd.read_parquet(run / "trials.parquet")
    study = yaml.safe_load((run / "study.yaml").read_text())
    n = int(study["trials"])
    per_trial = trials.groupby("number")["status"].agg(lambda s: set(s))
    first = int(per_trial.index.min())
    assert sorted(per_trial.index) == list(range(first, first + n)), "every trial has rows"
    assert all(len(s) == 1 and s <= {"completed", "stopped", "diverged", "failed"} for s in per_trial)
    assert (per_trial.map(lambda s: next(iter(s))) == "completed").any()
    models = yaml.safe_load((run / "models.yaml").read_text())
    best = next(m for m in models if m["name"] == "hdf-best")
    assert (run / best["path"] / "checkpoint.pt").is_file()
    assert (run / "summary.json").is_file()
    return trials


@pytest.mark.slow
@needs_slurm
def test_scontrol_requeue_resumes_the_same_study(tmp_path):
    """sbatch sweep.sh end to end, requeued while it runs: it resumes and every trial is accounted for."""
    run = tmp_path / "runs" / "rq"
    job = _sbatch(tmp_path, "--space", str(SMOKE), "--out", str(tmp_path / "runs"), "--name", "rq",
                  "--no-robustness", "--no-report")
    end = time.monotonic() + 300
    # Requeue once the study has started writing (trials under way).
    while not ((run / "optuna.journal").is_file() and (run / "optuna.journal").stat().st_size > 0):
        assert time.monotonic() < end, "the sweep did not start within 300s"
        assert _sacct_states(job)[-1:] in (["PENDING"], ["RUNNING"], []), _log(tmp_path, job)[-3000:]
        time.sleep(1)
    time.sleep(5)
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
    state = _wait_job(job, 900)
    log = _log(tmp_path, job)
    assert state == "COMPLETED", log[-3000:]
    assert _sacct_states(job)[0] == "REQUEUED"
    assert "(restart 1): resuming" in log and f"--resume {run}" in log
    assert "Ray cluster ready: 1 node(s), 2 CPUs" in log
    _check_finished_sweep(run)


def _ephemeral() -> tuple[int, int]:
    lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(lo), int(hi)


def _trial_envs(name: str, job: str) -> set[str]:
    """Values of env var `name` in the Ray worker processes (ray::...) of SLURM job `job`."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                continue
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"SLURM_JOB_ID={job}".encode() in env:
            found |= {e.decode().split("=", 1)[1] for e in env if e.startswith(f"{name}=".encode())}
    return found


@pytest.mark.slow
@needs_slurm
@pytest.mark.parametrize("env, expected", [
    ({"RAY_PORT_BASE": "EPHEMERAL"}, "error: RAY_PORT_BASE={lo}: the block {lo}-{lo199} overlaps "
                                     "the ephemeral port range {lo}-{hi} (ip_local_port_range)"),
    ({"RAY_NODE_IFACE": "nosuch0"}, "error: RAY_NODE_IFACE=nosuch0: {host} has no interface nosuch0"),
], ids=["port-base-in-ephemeral-range", "unknown-interface"])
def test_sweep_setup_mistakes_are_one_line(tmp_path, env, expected):
    lo, hi = _ephemeral()
    env = {k: v.replace("EPHEMERAL", str(lo)) for k, v in env.items()}
    expected = expected.format(lo=lo, lo199=lo + 199, hi=hi, host=os.uname().nodename.split(".")[0])
    full = {**os.environ, "BENCH_PYTHON": sys.executable, **env}
    full.pop("RAY_NODE_IP", None)
    out = subprocess.run(["sbatch", "--parsable", "--cpus-per-task=1", "--time=5",
                          f"--output={tmp_path}/slurm-%j.out", str(SWEEP), "--space", str(SMOKE),
                          "--out", str(tmp_path / "runs")],
                         capture_output=True, text=True, env=full, cwd=tmp_path, timeout=60)
    job = out.stdout.strip().split(";")[0]
    assert _wait_job(job, 120) == "FAILED"
    errors = [ln for ln in _log(tmp_path, job).splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith(expected), errors


@pytest.mark.slow
@needs_slurm
def test_usr1_checkpoints_mid_epoch_and_the_requeued_job_goes_on_staged_and_on_its_interface(tmp_path):
    """The time-limit notice (USR1 to the batch script): the running trial saves at its next
    step, the job requeues, and the trial's next epoch starts at the saved batch. The same job
    stages its data (--stage-data: trials read the node-local copy), binds Ray to
    RAY_NODE_IFACE's address and takes a port block below the ephemeral range."""
    import json

    import yaml

    raw = yaml.safe_load(SMOKE.read_text())
    raw.update(trials=1, concurrency=1, baselines=[], scheduler={"name": "fifo"})
    raw["base"]["set"]["train.epochs"] = 3
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "BENCH_PYTHON": sys.executable, "RAY_NODE_IFACE": "lo"}
    env.pop("RAY_NODE_IP", None)
    out = subprocess.run(["sbatch", "--parsable", "--cpus-per-task=1", "--time=20",
                          f"--output={tmp_path}/slurm-%j.out", str(SWEEP), "--space", str(space),
                          "--out", str(tmp_path / "runs"), "--name", "mid", "--stage-data",
                          "--no-robustness", "--no-report"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    job = out.stdout.strip().split(";")[0]
    stage = Path(f"/tmp/hdf-stage-{job}")
    seen: set[str] = set()
    end = time.monotonic() + 300
    while not any(f.read_text().strip() for f in (tmp_path / "runs").glob("mid*/tune/sweep/*/result.json")):
        assert time.monotonic() < end, _log(tmp_path, job)[-3000:]
        seen |= _trial_envs("HDF_BENCH_CACHE", job)
        time.sleep(0.2)
    # epoch 1 reported: the trial is in epoch 2's first steps
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True, timeout=30)
    seen |= _trial_envs("HDF_BENCH_CACHE", job)
    state = _wait_job(job, 600)
    log = _log(tmp_path, job)
    assert state == "COMPLETED", log[-3000:]
    assert "1 trial(s) checkpointed mid-epoch" in log and "requeueing job" in log, log[-3000:]
    rows = [json.loads(ln) for f in (tmp_path / "runs" / "mid").glob("tune/sweep/*/result.json")
            for ln in f.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    resumed = [r for r in rows if r.get("resumed_batch")]
    assert len(resumed) == 1 and resumed[0]["epoch"] == 2 and resumed[0]["resumed_batch"] >= 1
    assert not (tmp_path / "runs" / ".mid.preempt").exists()  # removed once the study finished
    _check_finished_sweep(tmp_path / "runs" / "mid")
    # staged: the trial processes read the node-local copy, removed when the job ended
    assert seen == {f"{stage}/cache"}, log[-3000:]
    assert log.count("staging 1 folder(s)") == 2  # and again after the requeue
    assert "trials read it through: HDF_BENCH_CACHE" in log and not stage.exists()
    # the interface's address, and a port block below the ephemeral range
    m = re.search(r"Ray head \S+ at 127\.0\.0\.1:(\d+),", log)
    assert m, log[-3000:]
    lo, hi = _ephemeral()
    assert 10000 <= int(m.group(1)) and (int(m.group(1)) + 199 < lo or int(m.group(1)) > hi)
