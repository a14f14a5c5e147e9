"""Study files: YAML -> validated `Study` -> an Optuna define-by-run space.

A study names a fixed base (a method preset plus `--set`-style overrides), the
parameters to search (dotted config keys, each with a distribution, optionally
only `when` another parameter has a given value), objective(s), searcher,
scheduler, budget, resources, baselines and seeds. Everything is checked before
Ray starts: every searched key is tried against the real config with its bounds,
so `loss.tauu` fails with the nearest valid key.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bench.config import MAX_SEED, Config, deep_merge, list_methods, load_config, read_yaml
from bench.errors import BenchError, ConfigError
from bench.search.gpus import gpu_request

__all__ = ["Param", "Objective", "Searcher", "Scheduler", "Confirm", "Study", "seed_list",
           "load_study", "study_from_dict", "with_base_sets", "DefineByRun", "trial_config",
           "nested", "one_of", "section", "number", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("uniform", "loguniform", "int", "categorical")
SPLITS = ("val", "test")


def one_of(value: Any, allowed: tuple[str, ...] | list[str], where: str) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), list(allowed), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: {value!r} is not allowed.{hint} Allowed: {', '.join(allowed)}.")
    return value


@dataclass(frozen=True)
class Param:
    """One searched config key; `name` is unique (a key may have one Param per `when`)."""

    key: str                      # dotted config key, e.g. "loss.tau"
    type: str                     # uniform | loguniform | int | categorical
    low: float | None = None
    high: float | None = None
    step: float | None = None     # int (and optional uniform) step
    choices: tuple[Any, ...] = ()
    when: tuple[tuple[str, Any], ...] = ()  # ((param key, value), ...): sampled only if all hold
    name: str = ""                # Optuna parameter name

    def encode(self, choice: Any) -> Any:
        """Optuna takes only scalars as categorical choices; lists go as JSON text."""
        return json.dumps(choice) if isinstance(choice, (list, dict)) else choice


@dataclass(frozen=True)
class Objective:
    metrics: tuple[str, ...] = ("war",)
    modes: tuple[str, ...] = ("max",)
    split: str = "val"            # score trials on a held-out part of train (honest) or on test

    @property
    def reported(self) -> list[str]:
        """Names the trainable reports the objective metrics under."""
        return [f"{self.split}_{m}" for m in self.metrics]


@dataclass(frozen=True)
class Searcher:
    sampler: str = "tpe"          # tpe | random
    seed: int = 0
    startup_trials: int = 4       # TPE's random start


@dataclass(frozen=True)
class Scheduler:
    name: str = "asha"            # asha | fifo
    grace_period: int = 1
    reduction_factor: float = 2.0


@dataclass(frozen=True)
class Confirm:
    """Retrain the top `top` configurations at `seeds` fresh seeds; crown the best mean."""

    top: int = 0                  # 0: off
    seeds: int = 2                # fresh seeds after the study's own: max(seeds)+1, ...


@dataclass(frozen=True)
class Study:
    name: str
    method: str
    base: dict[str, Any]          # nested overrides of the method preset
    params: tuple[Param, ...]
    objective: Objective = Objective()
    searcher: Searcher = Searcher()
    scheduler: Scheduler = Scheduler()
    trials: int = 8
    concurrency: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | str = 0.0   # or "auto": 1 per trial where the cluster has GPUs
    max_failures: int = 2         # restarts of a trial whose worker died
    val_fraction: float = 0.15
    baselines: tuple[str, ...] = ("x3d_ce",)
    seeds: tuple[int, ...] = (0,)
    confirm: Confirm = Confirm()
    description: str = ""
    source: str = "study"

    @property
    def confirm_seeds(self) -> tuple[int, ...]:
        """Seeds no run of the study's own uses, so a confirmation is a fresh draw."""
        start = max(self.seeds) + 1
        return tuple(range(start, start + self.confirm.seeds)) if self.confirm.top else ()

    def base_config(self, method: str | None = None) -> Config:
        """The fixed part of every trial (or of a baseline when `method` is given)."""
        over = deep_merge(self.base, {"train": {"val_fraction": self.val_fraction}})
        return config_for(method or self.method, over, self.source)

    @property
    def epochs(self) -> int:
        return self.base_config().train.epochs

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["params"] = [{k: v for k, v in dataclasses.asdict(p).items() if v not in (None, (), "")}
                       for p in self.params]
        return json.loads(json.dumps(d))  # tuples -> lists: YAML-safe


def config_for(method: str, over: Mapping[str, Any], source: str) -> Config:
    cfg = load_config(method=method)
    try:
        return Config.from_dict(deep_merge(cfg.to_dict(), over), source=source)
    except BenchError as e:
        raise ConfigError(str(e)) from None


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"loss.tau": 0.1} -> {"loss": {"tau": 0.1}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def trial_config(study: Study, values: Mapping[str, Any], *, method: str | None = None,
                 seed: int | None = None) -> Config:
    """The full Config of one trial: base <- searched values (dotted keys) <- seed."""
    over = deep_merge(study.base, {"train": {"val_fraction": study.val_fraction}})
    over = deep_merge(over, nested(values))
    if seed is not None:
        over = deep_merge(over, {"train": {"seed": seed}})
    return config_for(method or study.method, over, study.source)


# -- define-by-run space for OptunaSearch --------------------------------------------------

class DefineByRun:
    """Picklable Optuna define-by-run function (Tune saves the searcher with it)."""

    def __init__(self, params: tuple[Param, ...]) -> None:
        self.params = params

    def __call__(self, trial: Any) -> None:
        chosen: dict[str, Any] = {}
        for p in self.params:
            if any(chosen.get(k, _MISSING) != v for k, v in p.when):
                continue
            if p.type == "categorical":
                enc = trial.suggest_categorical(p.name, [p.encode(c) for c in p.choices])
                chosen[p.key] = p.choices[[p.encode(c) for c in p.choices].index(enc)]
            elif p.type == "int":
                chosen[p.key] = trial.suggest_int(p.name, int(p.low), int(p.high),
                                                  step=int(p.step or 1))
            else:
                chosen[p.key] = trial.suggest_float(p.name, p.low, p.high,
                                                    log=p.type == "loguniform", step=p.step)


_MISSING = object()


def decode_params(study: Study, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's {name: encoded} -> {config key: value}."""
    by_name = {p.name: p for p in study.params}
    out: dict[str, Any] = {}
    for name, value in optuna_params.items():
        p = by_name.get(name)
        if p is None:
            continue
        if p.type == "categorical":
            value = p.choices[[p.encode(c) for c in p.choices].index(value)]
        out[p.key] = value
    return out


# -- YAML -> Study ---------------------------------------------------------------------------

_TOP_KEYS = ("description", "base", "params", "objective", "search", "scheduler", "trials",
             "concurrency", "resources", "max_failures", "val_fraction", "baselines", "seeds",
             "confirm")


def load_study(path: str | Path) -> Study:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"search space file not found: {p}")
    return study_from_dict(read_yaml(p), name=p.stem, source=str(p))


def section(raw: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    sec = raw.get(key) or {}
    if not isinstance(sec, Mapping):
        raise ConfigError(f"{where}: {key} must be a mapping, got {sec!r}")
    for k in sec:
        one_of(k, allowed, f"{where}: {key}: unknown key '{k}'")
    return dict(sec)


def number(value: Any, where: str, *, integer: bool = False) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    return value


def seed_list(value: Any, where: str) -> tuple[int, ...]:
    """Training seeds: a non-empty list (or comma text "0,1,2") of distinct integers >= 0."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where} must be a non-empty list of integers, e.g. 0,1,2")
    seeds = []
    for v in value:
        try:
            n = int(v) if isinstance(v, str) or (not isinstance(v, bool) and int(v) == v) \
                else None
        except (TypeError, ValueError):
            n = None
        if n is None or isinstance(v, bool):
            raise ConfigError(f"{where}: {v!r} is not an integer (give e.g. 0,1,2)")
        if n < 0:
            raise ConfigError(f"{where}: seeds must be >= 0, got {n}")
        if n in seeds:
            raise ConfigError(f"{where}: seed {n} is listed twice")
        seeds.append(n)
    return tuple(seeds)


def with_base_sets(raw: Mapping[str, Any], items: list[str]) -> dict[str, Any]:
    """A copy of a raw study with `--set KEY=VALUE` items added to `base.set` (values as YAML)."""
    import yaml

    raw = dict(raw)
    base = dict(raw.get("base") or {})
    sets = dict(base.get("set") or {})
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            sets[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"--set {key.strip()}: value {value!r} is not valid YAML "
                              f"({problem})") from None
    base["set"] = sets
    raw["base"] = base
    return raw


def study_from_dict(raw: Mapping[str, Any], *, name: str = "study", source: str = "study") -> Study:
    """Validate a study mapping; every mistake is one ConfigError naming source and key."""
    src = source
    for k in raw:
        one_of(k, _TOP_KEYS, f"{src}: unknown key '{k}'")
    base = section(raw, "base", ("method", "set"), src)
    method = one_of(base.get("method", "hdf"), list_methods(), f"{src}: base.method")
    overrides = base.get("set") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{src}: base.set must be a mapping of dotted keys, got {overrides!r}")
    base_over = nested(dict(overrides))
    config_for(method, base_over, f"{src}: base.set")  # fail on a bad base key now

    raw_params = raw.get("params") or {}
    if not isinstance(raw_params, Mapping) or not raw_params:
        raise ConfigError(f"{src}: params must be a non-empty mapping of config key -> distribution")
    params: list[Param] = []
    for key, spec in raw_params.items():
        variants = spec if isinstance(spec, list) else [spec]
        for i, v in enumerate(variants):
            params.append(_param(str(key), v, i, len(variants), src))
    _check_when(params, src)

    obj = section(raw, "objective", ("metric", "mode", "split"), src)
    metrics = obj.get("metric", "war")
    modes = obj.get("mode", "max")
    metrics = tuple(metrics if isinstance(metrics, list) else [metrics])
    modes = tuple(modes if isinstance(modes, list) else [modes] * len(metrics))
    from bench.metrics import objective_names
    for m in metrics:
        one_of(m, objective_names(), f"{src}: objective.metric")
    for m in modes:
        one_of(m, ("max", "min"), f"{src}: objective.mode")
    if len(modes) != len(metrics):
        raise ConfigError(f"{src}: objective: {len(metrics)} metric(s) but {len(modes)} mode(s)")
    objective = Objective(metrics, modes, one_of(obj.get("split", "val"), SPLITS,
                                                  f"{src}: objective.split"))

    s = section(raw, "search", ("sampler", "seed", "startup_trials"), src)
    searcher = Searcher(one_of(s.get("sampler", "tpe"), ("tpe", "random"), f"{src}: search.sampler"),
                        int(number(s.get("seed", 0), f"{src}: search.seed", integer=True)),
                        int(number(s.get("startup_trials", 4), f"{src}: search.startup_trials",
                                    integer=True)))
    sc = section(raw, "scheduler", ("name", "grace_period", "reduction_factor"), src)
    scheduler = Scheduler(one_of(sc.get("name", "asha"), ("asha", "fifo"), f"{src}: scheduler.name"),
                          int(number(sc.get("grace_period", 1), f"{src}: scheduler.grace_period",
                                      integer=True)),
                          float(number(sc.get("reduction_factor", 2), f"{src}: scheduler.reduction_factor")))
    if scheduler.grace_period < 1 or scheduler.reduction_factor <= 1:
        raise ConfigError(f"{src}: scheduler: grace_period must be >= 1 and reduction_factor > 1")

    res = section(raw, "resources", ("cpu", "gpu"), src)
    baselines = raw.get("baselines", ["x3d_ce"]) or []
    if not isinstance(baselines, list):
        raise ConfigError(f"{src}: baselines must be a list of method names")
    for b in baselines:
        one_of(b, list_methods(), f"{src}: baselines")
    seeds = seed_list(raw.get("seeds", [0]), f"{src}: seeds")
    conf = section(raw, "confirm", ("top", "seeds"), src) if raw.get("confirm") else {}
    confirm = Confirm(int(number(conf.get("top", 0), f"{src}: confirm.top", integer=True)),
                      int(number(conf.get("seeds", 2), f"{src}: confirm.seeds", integer=True)))
    study = Study(
        name=name, method=method, base=base_over, params=tuple(params), objective=objective,
        searcher=searcher, scheduler=scheduler,
        trials=int(number(raw.get("trials", 8), f"{src}: trials", integer=True)),
        concurrency=int(number(raw.get("concurrency", 2), f"{src}: concurrency", integer=True)),
        cpus_per_trial=float(number(res.get("cpu", 1), f"{src}: resources.cpu")),
        gpus_per_trial=gpu_request(res.get("gpu", 0), f"{src}: resources.gpu"),
        max_failures=int(number(raw.get("max_failures", 2), f"{src}: max_failures", integer=True)),
        val_fraction=float(number(raw.get("val_fraction", 0.15), f"{src}: val_fraction")),
        baselines=tuple(baselines),
        seeds=seeds, confirm=confirm,
        description=str(raw.get("description", "")), source=src)
    return validate(study)


def validate(study: Study) -> Study:
    """Range checks, and every parameter tried against the real config at its bounds."""
    src = study.source
    if study.trials < 1 or study.concurrency < 1:
        raise ConfigError(f"{src}: trials and concurrency must be >= 1")
    if study.cpus_per_trial <= 0:
        raise ConfigError(f"{src}: resources.cpu must be > 0 and resources.gpu >= 0")
    gpu_request(study.gpus_per_trial, f"{src}: resources.gpu")  # auto or a number >= 0
    if study.confirm.top and not 1 <= study.confirm.top <= study.trials:
        raise ConfigError(f"{src}: confirm.top (--confirm) must be between 1 and the number of "
                          f"trials ({study.trials}), got {study.confirm.top}")
    if study.confirm.top and study.confirm.seeds < 1:
        raise ConfigError(f"{src}: confirm.seeds must be >= 1, got {study.confirm.seeds}")
    if any(not 0 <= s <= MAX_SEED for s in study.seeds):
        raise ConfigError(f"{src}: seeds must be integers in 0..2**63-1, got {list(study.seeds)}")
    if study.objective.split == "val" and not 0 < study.val_fraction < 1:
        raise ConfigError(f"{src}: val_fraction must be in (0, 1) with objective.split: val")
    if study.objective.split == "test" and not 0 <= study.val_fraction < 1:
        raise ConfigError(f"{src}: val_fraction must be in [0, 1)")
    from bench.data.labels import EMOTIONS
    from bench.engine import check_components
    from bench.losses import build_loss
    for p in study.params:
        for value in (p.choices or (p.low, p.high)):
            if p.type == "int":
                value = int(value)
            try:
                cfg = trial_config(study, {p.key: value})
                check_components(cfg)
                build_loss(cfg.loss.name, class_counts=[1] * len(EMOTIONS), **cfg.loss.options)
            except ConfigError as e:
                raise ConfigError(f"{src}: params.{p.key}: {e}") from None
    return study


def _param(key: str, spec: Any, index: int, count: int, src: str) -> Param:
    where = f"{src}: params.{key}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping like {{type: loguniform, low: 0.03, high: 0.5}}")
    for k in spec:
        one_of(k, ("type", "low", "high", "step", "choices", "when"), f"{where}: unknown key '{k}'")
    kind = one_of(spec.get("type"), DISTRIBUTIONS, f"{where}.type")
    when_raw = spec.get("when") or {}
    if not isinstance(when_raw, Mapping):
        raise ConfigError(f"{where}.when must map parameter keys to values")
    when = tuple(sorted(when_raw.items()))
    if count > 1 and not when:
        raise ConfigError(f"{where}: several variants of one key need a 'when' each")
    name = key if not when else key + "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in when) + "]"
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices must be a non-empty list")
        for k in ("low", "high", "step"):
            if k in spec:
                raise ConfigError(f"{where}: '{k}' does not apply to a categorical parameter")
        return Param(key, kind, choices=tuple(choices), when=when, name=name)
    if "choices" in spec:
        raise ConfigError(f"{where}: 'choices' applies only to type categorical")
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: type {kind} needs low and high")
    low = number(spec["low"], f"{where}.low", integer=kind == "int")
    high = number(spec["high"], f"{where}.high", integer=kind == "int")
    if low >= high:
        raise ConfigError(f"{where}: low ({low}) must be < high ({high})")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: a loguniform parameter needs low > 0, got {low}")
    step = spec.get("step")
    if step is not None:
        step = number(step, f"{where}.step", integer=kind == "int")
        if step <= 0 or kind == "loguniform":
            raise ConfigError(f"{where}.step must be > 0 and only for uniform or int")
    return Param(key, kind, float(low), float(high), step, when=when, name=name)


def _check_when(params: list[Param], src: str) -> None:
    keys = [p.key for p in params]
    for i, p in enumerate(params):
        for k, v in p.when:
            if k not in keys[:i]:
                raise ConfigError(f"{src}: params.{p.key}.when: '{k}' must be a parameter listed "
                                  f"before it (known: {', '.join(keys[:i]) or 'none'})")
            src_params = [q for q in params[:i] if q.key == k]
            if all(q.type != "categorical" or v not in q.choices for q in src_params):
                raise ConfigError(f"{src}: params.{p.key}.when: {k}={v!r} is not one of "
                                  f"that parameter's choices")
