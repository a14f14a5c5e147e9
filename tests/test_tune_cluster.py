"""A sweep on a real two-node Ray cluster on this machine: two raylets on loopback, or the
second in a network namespace behind a veth pair (a second host as far as Ray can tell)."""
from __future__ import annotations

import contextlib
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


def _netns_ready() -> str | None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and iproute2 to create a network namespace"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"ip netns does not work here: {probe.stderr.strip()}"


def _address(iface: str, prefix: list[str]) -> str:
    """The address bench.launch.address (slurm/sweep.sh's choice) gives for `iface`."""
    out = subprocess.run([*prefix, "env", f"RAY_NODE_IFACE={iface}", sys.executable, "-m",
                          "bench.launch.address"], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@contextlib.contextmanager
def _veth_namespace():
    """A network namespace joined to this one by a veth pair: 10.213.N.1 here, .2 there.

    Only addresses on these two ends are used; everything is removed afterwards.
    """
    tag = os.getpid() % 10000
    ns, here, there = f"hdfns{tag}", f"hdfh{tag}", f"hdfn{tag}"
    net = f"10.213.{tag % 250}"
    steps = [["ip", "netns", "add", ns],
             ["ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", ns],
             ["ip", "addr", "add", f"{net}.1/30", "dev", here], ["ip", "link", "set", here, "up"],
             ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{net}.2/30", "dev", there],
             ["ip", "netns", "exec", ns, "ip", "link", "set", there, "up"],
             ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]]
    try:
        for cmd in steps:
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        yield ns, here, there
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.fixture(params=["loopback", "netns"])
def two_node_cluster(request, tmp_path):
    """Two Ray nodes: both on 127.0.0.1, or the second in a network namespace joined by a
    veth pair, each bound to the address bench.launch.address picks for its interface."""
    if request.param == "netns" and (why := _netns_ready()):
        pytest.skip(why)
    port = _free_port()
    temp = Path(f"/tmp/rt{os.getpid()}")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    common = ["--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
    sessions = []

    def start(args: list[str], prefix: list[str] = []) -> None:
        # A session of its own: every daemon `ray start` leaves behind stays in it, so the
        # teardown stops this cluster only (`ray stop` would stop every Ray on the machine).
        p = subprocess.Popen([*prefix, RAY, "start", *args, *common], env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sessions.append(p.pid)
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out.decode()[-2000:]

    with contextlib.ExitStack() as stack:
        if request.param == "netns":
            ns, here, there = stack.enter_context(_veth_namespace())
            inside = ["ip", "netns", "exec", ns]
            head_ip, worker_ip = _address(here, []), _address(there, inside)
            assert head_ip.startswith("10.213.") and worker_ip.startswith("10.213.")
        else:
            inside, head_ip, worker_ip = [], "127.0.0.1", "127.0.0.1"
        try:
            start(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
                   f"--node-ip-address={head_ip}"])
            start([f"--address={head_ip}:{port}", f"--node-ip-address={worker_ip}"], inside)
            yield f"{head_ip}:{port}"
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
