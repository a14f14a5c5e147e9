"""The two methods the study compares, and a study searched by one of them."""
from __future__ import annotations

__all__ = ["METHODS", "with_method"]

# name -> (sampler, scheduler): the sweeps' own searcher and early stopping, and the baseline
METHODS = {"tpe+asha": ("tpe", "asha"), "random+fifo": ("random", "fifo")}


def with_method(raw: dict, sampler: str, scheduler: str, seed: int, *,
                startup_trials: int | None, grace_period: int | None) -> dict:
    """A copy of a raw study searched by one method (of METHODS) at one searcher seed."""
    raw = dict(raw, search={**(raw.get("search") or {}), "sampler": sampler, "seed": seed})
    if startup_trials is not None:
        raw["search"]["startup_trials"] = startup_trials
    raw["scheduler"] = {**(raw.get("scheduler") or {}), "name": scheduler}
    if scheduler == "fifo":  # FIFO has no grace period: equal studies whatever ASHA's is
        raw["scheduler"] = {"name": "fifo"}
    elif grace_period is not None:
        raw["scheduler"]["grace_period"] = grace_period
    return raw
