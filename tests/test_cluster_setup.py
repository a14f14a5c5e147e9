"""The pure parts of slurm/sweep.sh's node setup: address, port block, GPUs per trial, staging.

No cluster needed: fake `ip -o addr` text, fake ephemeral ranges; plus the real
`python -m bench.launch.address` / `ports` on this machine.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import load_config
from bench.errors import ConfigError
from bench.launch.address import choose_address, parse_ip_addr
from bench.launch.ports import BLOCK, port_base
from bench.launch.stage import parse_staged, plan, restage
from bench.search.gpus import AUTO, gpu_request, trial_gpus

IP_ADDR = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever
2: eth0    inet 169.254.3.4/16 scope link eth0\\       valid_lft forever preferred_lft forever
3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever
4: br-5e1f    inet 172.18.0.1/16 brd 172.18.255.255 scope global br-5e1f\\       valid_lft forever
5: veth12@if4    inet 10.99.0.1/30 scope global veth12\\       valid_lft forever
6: virbr0    inet 192.168.122.1/24 brd 192.168.122.255 scope global virbr0\\       valid_lft forever
7: ens3    inet6 fd00::5/64 scope global \\       valid_lft forever preferred_lft forever
7: ens3    inet 10.1.2.3/24 brd 10.1.2.255 scope global ens3\\       valid_lft forever
8: ib0    inet 10.50.0.3/16 brd 10.50.255.255 scope global ib0\\       valid_lft forever
"""


def test_parse_ip_addr_reads_name_family_and_address():
    rows = parse_ip_addr(IP_ADDR)
    assert (rows[0].name, rows[0].address, rows[0].family) == ("lo", "127.0.0.1", "inet")
    assert [r.name for r in rows if r.name.startswith("veth")] == ["veth12"]  # "@if4" dropped
    assert len(rows) == 11


@pytest.mark.parametrize("hostname_ips, expected, noted", [
    (["10.1.2.3"], "10.1.2.3", False),                       # the usual case: no note
    (["10.50.0.3", "10.1.2.3"], "10.50.0.3", False),         # first usable one wins
    (["127.0.1.1"], "10.1.2.3", True),                       # Debian's hosts line: loopback
    (["::1", "127.0.0.1"], "10.1.2.3", True),
    (["172.17.0.1"], "10.1.2.3", True),                      # docker0
    (["169.254.3.4"], "10.1.2.3", True),                     # link-local
    (["10.9.9.9"], "10.1.2.3", True),                        # not an address of this node
    ([], "10.1.2.3", True),                                  # hostname resolves to nothing
])
def test_default_address_skips_loopback_bridges_and_link_local(hostname_ips, expected, noted):
    address, iface, note = choose_address(iface=None, hostname_ips=hostname_ips, ip_addr=IP_ADDR,
                                          host="n1")
    assert address == expected
    assert bool(note) == noted
    if noted:
        assert note.startswith("note: n1: hostname --ip-address gave ") and "RAY_NODE_IFACE" in note
        assert "\n" not in note


@pytest.mark.parametrize("iface, expected", [("ib0", "10.50.0.3"), ("ens3", "10.1.2.3"),
                                             ("lo", "127.0.0.1"), ("docker0", "172.17.0.1"),
                                             ("eth0", "169.254.3.4")])  # only link-local: taken
def test_named_interface_is_taken_as_asked(iface, expected):
    assert choose_address(iface=iface, hostname_ips=["10.1.2.3"], ip_addr=IP_ADDR)[0] == expected


def test_unknown_interface_and_no_usable_address_are_one_line():
    with pytest.raises(ConfigError, match=r"RAY_NODE_IFACE=ib1: n1 has no interface ib1 .*"
                                          r"\(interfaces: br-5e1f, docker0, .*ib0.*\)$") as e:
        choose_address(iface="ib1", hostname_ips=[], ip_addr=IP_ADDR, host="n1")
    assert "\n" not in str(e.value)
    only_local = "\n".join(ln for ln in IP_ADDR.splitlines() if " ens3 " not in ln and " ib0 " not in ln)
    with pytest.raises(ConfigError, match=r"n1: no address other nodes can reach \(hostname "
                                          r"--ip-address gave 127.0.1.1 \(loopback\); .*set "
                                          r"RAY_NODE_IFACE"):
        choose_address(iface=None, hostname_ips=["127.0.1.1"], ip_addr=only_local, host="n1")


def _real(module: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_address_cli_on_this_machine():
    ours = {r.address: r.name for r in parse_ip_addr(
        subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout)}
    out = _real("bench.launch.address")
    assert out.returncode == 0, out.stderr
    address = out.stdout.strip()
    if address not in ours:
        pytest.fail(f"{address} is not an address of this machine ({ours})")
    assert not ipaddress.ip_address(address).is_loopback
    bad = _real("bench.launch.address", RAY_NODE_IFACE="nosuch0")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert bad.stderr.startswith("error: RAY_NODE_IFACE=nosuch0: ")
    assert _real("bench.launch.address", RAY_NODE_IFACE="lo").stdout.strip() == "127.0.0.1"


@pytest.mark.parametrize("ephemeral", [(32768, 60999), (20000, 40000), (49152, 65535)])
def test_default_blocks_stay_out_of_the_ephemeral_range(ephemeral):
    lo, hi = ephemeral
    bases = {port_base(job_id=j, ephemeral=ephemeral) for j in range(5000)}
    assert all(b + BLOCK - 1 < lo or b > hi for b in bases)
    assert all(b >= 10000 for b in bases)
    assert len(bases) == (lo - 10000) // BLOCK  # every block is used: few collisions


def test_ephemeral_range_without_room_below_uses_the_room_above():
    bases = {port_base(job_id=j, ephemeral=(1024, 60999)) for j in range(500)}
    assert min(bases) == 61000 and max(bases) + BLOCK - 1 <= 65535
    with pytest.raises(ConfigError, match="leaves no block"):
        port_base(job_id=1, ephemeral=(1024, 65535))


@pytest.mark.parametrize("base, ok", [(10000, True), (32568, True), (32569, False),
                                      (40000, False), (60999, False), (61000, True),
                                      (65400, False), (80, False)])
def test_user_port_base_is_refused_inside_the_ephemeral_range(base, ok):
    if ok:
        assert port_base(job_id=7, ephemeral=(32768, 60999), user_base=base) == base
    else:
        with pytest.raises(ConfigError, match=f"RAY_PORT_BASE={base}: the block") as e:
            port_base(job_id=7, ephemeral=(32768, 60999), user_base=base)
        assert "\n" not in str(e.value)


def test_ports_cli_reads_the_kernels_range():
    lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    base = int(_real("bench.launch.ports", "12345").stdout)
    assert base + BLOCK - 1 < lo or base > hi
    inside = _real("bench.launch.ports", "1", RAY_PORT_BASE=str(lo))
    assert inside.returncode == 2
    assert inside.stderr.startswith(f"error: RAY_PORT_BASE={lo}: the block {lo}-{lo + BLOCK - 1} "
                                    f"overlaps the ephemeral port range {lo}-{hi}")


@pytest.mark.parametrize("request_, cluster, gpus, warns", [
    (AUTO, 8, 1.0, False), (AUTO, 0, 0.0, False), (AUTO, 0.5, 0.5, False),
    (0.0, 4, 0.0, True), (0.0, 0, 0.0, False), (0.25, 4, 0.25, False), (2.0, 0, 2.0, False),
])
def test_gpus_per_trial(request_, cluster, gpus, warns):
    got, warning = trial_gpus(request_, cluster)
    assert got == gpus
    assert bool(warning) == warns
    if warns:
        assert warning.startswith(f"warning: the Ray cluster has {cluster:g} GPU(s)")
        assert "gpu: auto" in warning and "\n" not in warning


@pytest.mark.parametrize("value, expected", [("auto", AUTO), ("AUTO", AUTO), (0, 0.0), ("0.5", 0.5)])
def test_gpu_request_reads_auto_or_a_number(value, expected):
    assert gpu_request(value, "s.yaml: resources.gpu") == expected


@pytest.mark.parametrize("value", ["some", -1, True, None, float("nan")])
def test_gpu_request_refuses_the_rest(value):
    with pytest.raises(ConfigError, match=r"s.yaml: resources.gpu must be auto or a number >= 0"):
        gpu_request(value, "s.yaml: resources.gpu")


def test_shipped_spaces_ask_for_gpus_where_there_are_some():
    """No shipped study leaves a GPU cluster's GPUs idle (`auto` is 0 on CPU clusters)."""
    import yaml

    from bench.search.spaces import load_study

    asks = {p.name: gpu_request(yaml.safe_load(p.read_text())["resources"]["gpu"], p.name)
            for p in Path("search_spaces").glob("*.yaml")}
    assert len(asks) >= 5 and all(v != 0 for v in asks.values()), asks
    assert load_study("search_spaces/smoke.yaml").gpus_per_trial == AUTO


def _cfg(**options):
    from bench.config import Config, deep_merge

    cfg = load_config(method="x3d_ce")
    return Config.from_dict(deep_merge(cfg.to_dict(), {"data": {"options": options}}))


def test_restage_rewrites_only_a_staged_root(tmp_path):
    staged = parse_staged(f"{tmp_path}/DFEW=/tmp/st/data/0-DFEW:/x=/y")
    assert staged == {f"{tmp_path}/DFEW": "/tmp/st/data/0-DFEW", "/x": "/y"}
    cfg = _cfg(root=str(tmp_path / "DFEW"))
    assert restage(cfg, staged).data.options["root"] == "/tmp/st/data/0-DFEW"
    assert restage(cfg, {}) is cfg
    other = _cfg(root="/elsewhere")
    assert restage(other, staged) is other
    with pytest.raises(ConfigError, match="HDF_BENCH_STAGED: 'nonsense' is not SRC=DST"):
        parse_staged("nonsense")


def test_stage_plan_copies_roots_once_and_the_cache_folder(tmp_path, monkeypatch):
    root = tmp_path / "DFEW"
    root.mkdir()
    to = tmp_path / "stage"
    rows = plan([_cfg(root=str(root)), _cfg(root=str(root))], to, tmp_path / "cache")
    assert rows == [("copy", str(root), f"{to}/data/0-DFEW"),
                    ("env", "HDF_BENCH_STAGED", f"{root}={to}/data/0-DFEW")]
    with pytest.raises(ConfigError, match="--stage-data: data root .*missing is not a folder"):
        plan([_cfg(root=str(tmp_path / "missing"))], to, tmp_path / "cache")
