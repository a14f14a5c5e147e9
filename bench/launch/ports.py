"""The block of ports a SLURM sweep's Ray nodes use: `python -m bench.launch.ports JOBID`.

    RAY_PORT_BASE set ──> checked: its block must lie below the ephemeral range
    else: job id ──> one of the blocks between FIRST_PORT and the ephemeral range's start

Linux hands out ports of /proc/sys/net/ipv4/ip_local_port_range (32768-60999 by
default) to every outgoing connection; a Ray port there may already be taken by
someone's client socket when Ray starts. So blocks sit below it. The block's
layout (offsets from its base, as slurm/sweep.sh passes them to `ray start`):

    +0 GCS   +1 client server   +2 node manager   +3 object manager
    +4 dashboard agent (HTTP)   +5 dashboard agent (gRPC)   +6 metrics   +7 runtime env agent
    +10 .. +BLOCK-1   worker processes (one port each while the worker lives)

`port_base` is the pure core; `main` reads the kernel's range and prints the base.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.errors import ConfigError

__all__ = ["BLOCK", "FIRST_PORT", "WORKER_OFFSET", "port_base", "ephemeral_range", "main"]

BLOCK = 200          # ports per job and node: 8 fixed + 190 worker ports (+2 spare)
WORKER_OFFSET = 10   # first worker port = base + 10
FIRST_PORT = 10000   # below: well-known and commonly used service ports
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def port_base(*, job_id: int, ephemeral: tuple[int, int], user_base: int | None = None) -> int:
    """First port of this job's block of BLOCK ports, outside `ephemeral` (lo, hi inclusive)."""
    lo, hi = ephemeral
    if user_base is not None:
        last = user_base + BLOCK - 1
        if user_base < 1024 or last > 65535:
            raise ConfigError(f"RAY_PORT_BASE={user_base}: the block {user_base}-{last} must lie "
                              f"within 1024-65535")
        if user_base <= hi and last >= lo:
            raise ConfigError(f"RAY_PORT_BASE={user_base}: the block {user_base}-{last} overlaps the "
                              f"ephemeral port range {lo}-{hi} (ip_local_port_range); choose a base "
                              f"below {lo - BLOCK + 1} or above {hi}")
        return user_base
    blocks = (lo - FIRST_PORT) // BLOCK
    if blocks < 1:
        blocks = (65536 - (hi + 1)) // BLOCK
        if blocks < 1:
            raise ConfigError(f"the ephemeral port range {lo}-{hi} leaves no block of {BLOCK} ports "
                              f"for Ray; set RAY_PORT_BASE")
        return hi + 1 + BLOCK * (job_id % blocks)
    return FIRST_PORT + BLOCK * (job_id % blocks)


def ephemeral_range(path: Path = RANGE_FILE) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return lo, hi


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        raise ConfigError("usage: python -m bench.launch.ports JOBID (RAY_PORT_BASE optional)")
    user = os.environ.get("RAY_PORT_BASE") or None
    if user is not None and not user.isdigit():
        raise ConfigError(f"RAY_PORT_BASE={user} is not a port number")
    print(port_base(job_id=int(args[0]), ephemeral=ephemeral_range(),
                    user_base=None if user is None else int(user)))
    return 0


if __name__ == "__main__":
    from bench.cli import run_main

    run_main(main)
