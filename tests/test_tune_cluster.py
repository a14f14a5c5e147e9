"""A sweep on a real two-node Ray cluster on this machine (two raylets on loopback)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_node_cluster(tmp_path):
    port = _free_port()
    temp = Path(f"/tmp/rt{os.getpid()}")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0",
              "--disable-usage-stats"]
    sessions = []

    def start(args: list[str]) -> None:
        # A session of its own: every daemon `ray start` leaves behind stays in it, so the
        # teardown stops this cluster only (`ray stop` would stop every Ray on the machine).
        p = subprocess.Popen([RAY, "start", *args, *common], env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sessions.append(p.pid)
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out.decode()[-2000:]

    try:
        start(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"])
        start([f"--address=127.0.0.1:{port}"])
        yield f"127.0.0.1:{port}"
    finally:
        for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
            try:
                if os.getsid(pid) in sessions:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(temp, ignore_errors=True)


def test_sweep_places_trials_on_both_nodes(two_node_cluster, tmp_path) -> None:
    raw = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    raw.update(trials=2, concurrency=2, baselines=[], scheduler={"name": "fifo"})
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(raw))
    p = subprocess.run([sys.executable, "-m", "bench.tune", "--space", str(space), "--out",
                        str(tmp_path), "--name", "two", "--address", two_node_cluster,
                        "--no-robustness", "--no-report"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "RAY_AUTH_MODE": "token"})
    assert p.returncode == 0, p.stderr[-3000:]
    run = tmp_path / "two"
    nodes = set()
    for f in (run / "tune" / "sweep").glob("*/result.json"):
        nodes |= {json.loads(line)["node_id"] for line in f.read_text().splitlines()}
    assert len(nodes) == 2, nodes  # one trial on each raylet (each has 1 CPU)
    table = pd.read_parquet(run / "trials.parquet")
    assert table.trial.nunique() == 2 and set(table.status) == {"completed"}


def test_local_ray_listens_on_loopback_only() -> None:
    """The sweep's own Ray (no --address) must not be reachable from the machine's network."""
    import ray
    from ray._private.services import node_ip_address_from_perspective

    from bench.search.run import init_ray

    routable = node_ip_address_from_perspective()
    if routable.startswith("127."):
        pytest.skip("this machine has no routable address to test against")
    init_ray(address=None, num_cpus=1, num_gpus=None)
    try:
        node = ray.nodes()[0]
        assert node["NodeManagerAddress"] == "127.0.0.1"
        gcs_port = int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1])
        for port in (gcs_port, node["NodeManagerPort"], node["ObjectManagerPort"]):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            with pytest.raises(OSError):  # refused: nothing listens there on other interfaces
                socket.create_connection((routable, port), timeout=5).close()
    finally:
        ray.shutdown()
