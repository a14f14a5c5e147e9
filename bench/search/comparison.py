"""Comparison files: methods x training seeds at one fixed setting, no search.

    description: ...
    base: {set: {data.size: 32, train.epochs: 8}}   # applied to every method's preset
    methods: [hdf, x3d_ce]                          # the first is the candidate
    seeds: [0, 1, 2]
    concurrency: 2
    resources: {cpu: 1, gpu: 0}

validated into a `Study` with no parameters (so the sweep's run machinery,
export, suite and report serve it unchanged) and the list of methods.
"""
from __future__ import annotations

import difflib
from typing import Any, Mapping

from bench.config import list_methods
from bench.errors import ConfigError, UnknownNameError
from bench.search.spaces import (Objective, Study, _number, _one_of, _section, config_for, nested,
                                 seed_list, validate)

__all__ = ["comparison_from_dict", "method_list", "KEYS"]

KEYS = ("description", "base", "methods", "seeds", "concurrency", "resources", "max_failures")


def method_list(value: Any, where: str) -> list[str]:
    """Known, distinct method names (a list or comma text); the first is the candidate."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where} must name methods, e.g. hdf,x3d_ce")
    known = list_methods()
    out: list[str] = []
    for m in value:
        if m not in known:
            close = difflib.get_close_matches(str(m), known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UnknownNameError(f"{where}: unknown method '{m}'.{hint} "
                                   f"Known: {', '.join(known)}")
        if m in out:
            raise ConfigError(f"{where}: '{m}' is listed twice; a method compared with itself "
                              "measures nothing")
        out.append(str(m))
    if len(out) < 2:
        raise ConfigError(f"{where}: give at least two methods (the candidate first), "
                          f"got only '{out[0]}'")
    return out


def comparison_from_dict(raw: Mapping[str, Any], *, name: str, source: str,
                         methods: Any = None, seeds: Any = None) -> tuple[Study, list[str]]:
    """(Study, methods) from a comparison mapping; `methods`/`seeds` (CLI) replace the file's."""
    src = source
    for k in raw:
        _one_of(k, KEYS, f"{src}: unknown key '{k}'")
    base = _section(raw, "base", ("set",), src)
    overrides = base.get("set") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{src}: base.set must be a mapping of dotted keys, got {overrides!r}")
    names = method_list(methods if methods is not None else raw.get("methods"),
                        "--methods" if methods is not None else f"{src}: methods")
    for m in names:  # every method's preset must take the base settings
        config_for(m, nested(dict(overrides)), f"{src}: base.set ({m})")
    seed_tuple = seed_list(seeds if seeds is not None else raw.get("seeds", [0, 1, 2]),
                           "--seeds" if seeds is not None else f"{src}: seeds")
    res = _section(raw, "resources", ("cpu", "gpu"), src)
    study = Study(
        name=name, method=names[0], base=nested(dict(overrides)), params=(),
        objective=Objective(split="test"),  # nothing is chosen: progress lines show test WAR
        concurrency=int(_number(raw.get("concurrency", 2), f"{src}: concurrency", integer=True)),
        cpus_per_trial=float(_number(res.get("cpu", 1), f"{src}: resources.cpu")),
        gpus_per_trial=float(_number(res.get("gpu", 0), f"{src}: resources.gpu")),
        max_failures=int(_number(raw.get("max_failures", 2), f"{src}: max_failures",
                                 integer=True)),
        val_fraction=0.0,  # no selection: every method trains on the whole training split
        baselines=tuple(names[1:]), seeds=seed_tuple,
        trials=len(names) * len(seed_tuple), description=str(raw.get("description", "")),
        source=src)
    return validate(study), names
