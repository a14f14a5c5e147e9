"""What a replayed trial reports: one of its cell's stored runs, or a fresh draw around them.

A trial's curve is fixed by its config and the searcher seed (a hash of both),
as a real trial's training seed would be, so a replayed sweep is a function of
its searcher seed.
"""
from __future__ import annotations

import hashlib
import json
import math
from statistics import NormalDist
from typing import Any

from bench.hpo.grid import Grid, config_cell
from bench.search.spaces import Study

__all__ = ["fresh_draw", "pick_curve"]


def fresh_draw(runs: list[list[float]], h: int) -> list[float]:
    """A new run of a cell, not one of its stored ones: mean + z * sqrt(n/(n-1)) * (run_j -
    mean), z ~ N(0, 1) and j from the 160-bit hash h, clipped to [0, 1]. The scale makes the
    draws' variance the cell's seed variance; the deviation keeps a real run's shape over
    the epochs (how much of its luck shows early), and the cell's own size of noise (a cell
    at chance barely moves). With one run it is that run."""
    n = len(runs)
    if n == 1:
        return list(runs[0])
    u = ((h >> 32) % 2 ** 53 + 0.5) / 2 ** 53  # in (0, 1), independent of j's low bits
    z = NormalDist().inv_cdf(u) * math.sqrt(n / (n - 1))
    mean = [sum(vals) / n for vals in zip(*runs)]  # (epochs,)
    return [min(1.0, max(0.0, m + z * (v - m))) for m, v in zip(mean, runs[h % n])]


def pick_curve(tune_config: dict[str, Any], *, study: Study, grid: Grid,
               curves: dict[str, list[list[float]]], salt: int,
               fresh: bool = False) -> tuple[str, list[float]]:
    """The trial's cell and the curve it replays: one of the cell's stored runs (or, fresh,
    a new draw around them), fixed by the config and the searcher seed, as a real trial's
    seed would be."""
    cell = config_cell(study, grid, tune_config)
    runs = curves[cell]
    h = int(hashlib.sha1(f"{salt}:{json.dumps(tune_config, sort_keys=True)}".encode())
            .hexdigest(), 16)
    return cell, fresh_draw(runs, h) if fresh else runs[h % len(runs)]
