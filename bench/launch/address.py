"""The address a Ray node binds to on a cluster node: `python -m bench.launch.address`.

    RAY_NODE_IFACE set ──> an address of that interface (IPv4 first)
    else: `hostname --ip-address` ──> first address that is not loopback, link-local
          or on a docker/bridge interface ──> else the first such address of `ip -o addr`
          (with a note on stderr saying why) ──> else one-line error

`choose_address` is the pure core (text in, address out); `main` is the shell
around it that runs `hostname` and `ip`, prints the address on stdout and the
note, if any, on stderr. slurm/sweep.sh runs it on every node.
"""
from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from dataclasses import dataclass

from bench.errors import ConfigError

__all__ = ["Iface", "parse_ip_addr", "choose_address", "skipped_iface", "main"]

# Interfaces that never carry traffic between cluster nodes.
SKIPPED_IFACES = re.compile(r"(docker|br-|veth|virbr)")


@dataclass(frozen=True)
class Iface:
    name: str
    address: str
    family: str   # "inet" or "inet6"


def parse_ip_addr(text: str) -> list[Iface]:
    """`ip -o addr` lines -> (interface, address, family), in the order listed.

    A line looks like `4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\ ...`;
    `eth0@if5` (a veth's peer index) becomes `eth0`.
    """
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] not in ("inet", "inet6"):
            continue
        out.append(Iface(parts[1].split("@")[0], parts[3].split("/")[0], parts[2]))
    return out


def skipped_iface(name: str) -> bool:
    return name == "lo" or SKIPPED_IFACES.match(name) is not None


def _unusable(address: str) -> str | None:
    """Why an address cannot reach other nodes, or None."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return "not an IP address"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    return None


def _by_family(ifaces: list[Iface]) -> list[Iface]:
    """IPv4 before IPv6 (Ray's HOST:PORT strings are simplest with IPv4), order kept."""
    return [i for i in ifaces if i.family == "inet"] + [i for i in ifaces if i.family != "inet"]


def choose_address(*, iface: str | None, hostname_ips: list[str], ip_addr: str,
                   host: str = "this node") -> tuple[str, str, str]:
    """(address, interface, note): the address a Ray node on `host` should bind to.

    `note` is "" when the choice needs no explanation, else one line for stderr.
    """
    ifaces = parse_ip_addr(ip_addr)
    if iface:
        mine = [i for i in ifaces if i.name == iface]
        if not mine:
            have = ", ".join(sorted({i.name for i in ifaces})) or "none"
            raise ConfigError(f"RAY_NODE_IFACE={iface}: {host} has no interface {iface} with an "
                              f"address (interfaces: {have})")
        good = [i for i in mine if _unusable(i.address) != "link-local"] or mine
        pick = _by_family(good)[0]
        return pick.address, iface, ""
    owner = {i.address: i.name for i in ifaces}
    rejected = []
    for ip in hostname_ips:
        why = _unusable(ip)
        if why is None and ip not in owner:
            why = "not an address of this node"
        elif why is None and skipped_iface(owner[ip]):
            why = f"on {owner[ip]}, a docker/bridge interface"
        if why is None:
            return ip, owner[ip], ""
        rejected.append(f"{ip} ({why})")
    for i in _by_family(ifaces):
        if not skipped_iface(i.name) and _unusable(i.address) is None:
            said = ", ".join(rejected) if rejected else "nothing"
            note = (f"note: {host}: hostname --ip-address gave {said}; using {i.address} of "
                    f"{i.name} (set RAY_NODE_IFACE to choose the interface)")
            return i.address, i.name, note
    have = ", ".join(sorted({i.name for i in ifaces})) or "none"
    raise ConfigError(f"{host}: no address other nodes can reach (hostname --ip-address gave "
                      f"{', '.join(rejected) or 'nothing'}; interfaces: {have}); "
                      f"set RAY_NODE_IFACE to the cluster network's interface")


def _output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def main(argv: list[str] | None = None) -> int:
    import socket

    host = socket.gethostname().split(".")[0]
    ip_addr = _output(["ip", "-o", "addr", "show"])
    if not ip_addr:
        raise ConfigError(f"{host}: 'ip -o addr' gave nothing (is iproute2 installed?)")
    address, _, note = choose_address(iface=os.environ.get("RAY_NODE_IFACE") or None,
                                      hostname_ips=_output(["hostname", "--ip-address"]).split(),
                                      ip_addr=ip_addr, host=host)
    if note:
        print(note, file=sys.stderr)
    print(address)
    return 0


if __name__ == "__main__":
    from bench.cli import run_main

    run_main(main)
