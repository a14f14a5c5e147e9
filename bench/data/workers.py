"""How many DataLoader worker processes a trial runs: `data.workers` as an int, or "auto".

    "auto" -> CPUs the trial owns (Ray's CPU resources for the trial, else the
              process's CPU affinity) -> 0 on a CPU device, CPUs - 1 on a GPU

On a CPU device the loader workers and torch's threads share the same cores:
with the clip store an item costs well under a millisecond, so a worker
process only takes cores from the model (results/perf-data.md measures it);
on a GPU the cores are otherwise idle while the device computes, and one is
left to the training process itself.
"""
from __future__ import annotations

import os
import sys

import torch

from bench.errors import ConfigError

__all__ = ["owned_cpus", "resolve_workers"]

MAX_AUTO_WORKERS = 8  # past this, start-up and memory grow with no throughput left to gain


def owned_cpus() -> int:
    """CPUs this process may use: its Ray trial's CPU resources, capped by its CPU affinity."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    ray = sys.modules.get("ray")  # only look inside a process that already uses Ray
    if ray is not None:
        try:
            if ray.is_initialized():
                cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
                if cpus:
                    n = min(n, max(1, int(cpus)))
        except Exception:  # noqa: BLE001 - the driver, or an older Ray: the affinity stands
            pass
    return max(1, n)


def resolve_workers(value: int | str, *, device: torch.device) -> int:
    """`data.workers` as a number of loader processes for a model on `device`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if value != "auto":
        raise ConfigError(f"data.workers must be >= 0 or 'auto', got {value!r}")
    if device.type == "cpu":
        return 0
    return min(MAX_AUTO_WORKERS, owned_cpus() - 1)
