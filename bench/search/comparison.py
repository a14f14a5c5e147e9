"""Comparison files: methods x training seeds at one fixed setting, no search.

    description: ...
    base: {set: {data.size: 32, train.epochs: 8}}   # applied to every method's preset
    methods: [hdf, x3d_ce]                          # the first is the candidate
    seeds: [0, 1, 2]
    concurrency: 2
    resources: {cpu: 1, gpu: auto}

validated into a `Study` with no parameters (so the sweep's run machinery,
export, suite and report serve it unchanged) and the list of methods.
"""
from __future__ import annotations

import difflib
from typing import Any, Mapping

from bench.config import list_methods
from bench.errors import ConfigError, UnknownNameError
from bench.config import deep_merge
from bench.search.gpus import gpu_request
from bench.search.spaces import (Objective, Study, config_for, nested, number, one_of, section,
                                 seed_list, validate)

__all__ = ["comparison_from_dict", "ablation_from_dict", "method_list", "KEYS", "ABLATION_KEYS"]

KEYS = ("description", "base", "methods", "seeds", "concurrency", "resources", "max_failures")
ABLATION_KEYS = ("description", "base", "factors", "seeds", "concurrency", "resources",
                 "max_failures")


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


def _fixed_study(raw: Mapping[str, Any], keys: tuple[str, ...], *, name: str, source: str,
                 methods: list[str], seeds: Any, check: list[tuple[str, dict[str, Any]]]
                 ) -> Study:
    """A Study with no parameters for runs of a fixed list (comparison or ablation)."""
    src = source
    for k in raw:
        one_of(k, keys, f"{src}: unknown key '{k}'")
    base = section(raw, "base", ("set",), src)
    overrides = base.get("set") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{src}: base.set must be a mapping of dotted keys, got {overrides!r}")
    from bench.engine import check_components

    for label, extra in check:  # every run's config must take the base settings
        where = f"{src}: base.set ({label})"
        cfg = config_for(label.split(" ")[0], deep_merge(nested(dict(overrides)), nested(extra)),
                         where)
        try:
            check_components(cfg)  # loss options too, before any data or Ray
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    seed_tuple = seed_list(seeds if seeds is not None else raw.get("seeds", [0, 1, 2]),
                           "--seeds" if seeds is not None else f"{src}: seeds")
    res = section(raw, "resources", ("cpu", "gpu"), src)
    study = Study(
        name=name, method=methods[0], base=nested(dict(overrides)), params=(),
        objective=Objective(split="test"),  # nothing is chosen: progress lines show test WAR
        concurrency=int(number(raw.get("concurrency", 2), f"{src}: concurrency", integer=True)),
        cpus_per_trial=float(number(res.get("cpu", 1), f"{src}: resources.cpu")),
        gpus_per_trial=gpu_request(res.get("gpu", 0), f"{src}: resources.gpu"),
        max_failures=int(number(raw.get("max_failures", 2), f"{src}: max_failures",
                                 integer=True)),
        val_fraction=0.0,  # no selection: every run trains on the whole training split
        baselines=tuple(methods[1:]), seeds=seed_tuple,
        trials=len(check) * len(seed_tuple), description=str(raw.get("description", "")),
        source=src)
    return validate(study)


def comparison_from_dict(raw: Mapping[str, Any], *, name: str, source: str,
                         methods: Any = None, seeds: Any = None) -> tuple[Study, list[str]]:
    """(Study, methods) from a comparison mapping; `methods`/`seeds` (CLI) replace the file's."""
    names = method_list(methods if methods is not None else raw.get("methods"),
                        "--methods" if methods is not None else f"{source}: methods")
    study = _fixed_study(raw, KEYS, name=name, source=source, methods=names, seeds=seeds,
                         check=[(m, {}) for m in names])
    return study, names


def ablation_from_dict(raw: Mapping[str, Any], *, name: str, source: str, factors: Any = None,
                       seeds: Any = None) -> tuple[Study, list[str], dict[str, dict[str, Any]]]:
    """(Study, factors, factor -> extra dotted settings when on) from an ablation mapping.

    The file's `factors` maps each factor to {set: {...}} (or nothing); `--factors`
    picks which of them (or of all known factors) to vary.
    """
    from bench.search.ablation import BASE_METHOD, cell_overrides, cells, factor_list

    declared = raw.get("factors") or {}
    if not isinstance(declared, Mapping):
        raise ConfigError(f"{source}: factors must map factor names to {{set: {{...}}}}")
    sets: dict[str, dict[str, Any]] = {}
    for f, spec in declared.items():
        factor_list([f], f"{source}: factors")
        spec = spec or {}
        if not isinstance(spec, Mapping) or set(spec) - {"set"}:
            raise ConfigError(f"{source}: factors.{f} may only hold set: {{dotted key: value}}")
        sets[str(f)] = dict(spec.get("set") or {})
    chosen = factor_list(factors if factors is not None else list(declared),
                         "--factors" if factors is not None else f"{source}: factors")
    grid = cells(chosen)
    study = _fixed_study(raw, ABLATION_KEYS, name=name, source=source,
                         methods=[BASE_METHOD], seeds=seeds,
                         check=[(f"{BASE_METHOD} ({c.name})", cell_overrides(c, sets))
                                for c in grid])
    return study, chosen, {f: sets.get(f, {}) for f in chosen}
