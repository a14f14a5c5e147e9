"""GPUs per trial: a number from the study, or `auto`, resolved against the Ray cluster.

    resources.gpu (study file / --gpus-per-trial) ──> gpu_request ──> float or "auto"
    (request, GPUs in the Ray cluster) ──> trial_gpus ──> (GPUs per trial, warning or "")

`auto` is one GPU per trial when the cluster has GPUs, else none (CPU training),
so one study file serves a laptop, a CPU cluster and a GPU cluster. A study that
asks for 0 GPUs on a cluster that has some trains on CPU next to idle GPUs:
`trial_gpus` says so in one warning line.
"""
from __future__ import annotations

import math
from typing import Any

from bench.errors import ConfigError

__all__ = ["AUTO", "gpu_request", "trial_gpus"]

AUTO = "auto"


def gpu_request(value: Any, where: str) -> float | str:
    """A study's `resources.gpu`: "auto" or a number >= 0."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        n = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        n = math.nan
    if not math.isfinite(n) or n < 0:
        raise ConfigError(f"{where} must be auto or a number >= 0, got {value!r}")
    return n


def trial_gpus(request: float | str, cluster_gpus: float) -> tuple[float, str]:
    """(GPUs each trial asks Ray for, a warning line or "")."""
    if request == AUTO:
        return (1.0 if cluster_gpus >= 1 else float(cluster_gpus)), ""
    request = float(request)
    if request == 0 and cluster_gpus > 0:
        return 0.0, (f"warning: the Ray cluster has {cluster_gpus:g} GPU(s) but the study asks for "
                     f"resources.gpu: 0, so trials train on CPU on GPU nodes; set resources: "
                     f"{{gpu: auto}} (or a number) in the space, or pass --gpus-per-trial 1")
    return request, ""
