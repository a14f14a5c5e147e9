"""Training configuration: YAML -> validated dataclasses -> plain dict snapshot.

Resolution order: defaults <- method preset (bench/methods/NAME.yaml) <- user
YAML file <- `--set key.sub=value` overrides. Every key is checked against the
dataclasses (and loss/data options against their builders' signatures), so a
typo fails before any work starts, with the nearest valid name suggested.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from bench.errors import ConfigError

__all__ = [
    "ModelConfig", "LossConfig", "OptimConfig", "DataConfig", "TrainConfig", "Config",
    "METHODS_DIR", "list_methods", "load_config", "parse_overrides", "read_yaml", "load_yaml",
]

METHODS_DIR = Path(__file__).parent / "methods"
# Device names a config or --device may give; whether the machine has them is
# checked where the device is opened (bench.engine.resolve_device).
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")
# train.precision values; whether the device supports one is checked where the
# device is opened (bench.engine.resolve_precision).
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
# numpy seeds take any integer >= 0; torch.manual_seed stops at 2**64 - 1.
MAX_SEED = 2**63 - 1


@dataclass
class ModelConfig:
    name: str = "x3d"
    preset: str = "tiny"
    dam_stages: list[bool] = field(default_factory=lambda: [False, False, False, False])
    dam_temporal: bool = True
    dam_frequency: bool = True
    dropout: float = 0.2  # 0.5 delays learning past the 2-3 epochs of a sweep trial


@dataclass
class LossConfig:
    name: str = "ce"
    # Options of the named loss (tau, eta, ...), checked against its builder.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    sam: bool = False
    rho: float = 0.05
    asam: bool = False
    warmup_epochs: float = 0.25  # short: sweep trials last only 2-3 epochs
    grad_clip: float | None = None
    sam_bn_both_passes: bool = False  # BN statistics move in SAM's second pass too (released HDF)
    decay_all: bool = False  # weight decay on every parameter, norms and biases included


@dataclass
class DataConfig:
    name: str = "synthetic"
    num_frames: int = 8
    size: int = 64
    batch_size: int = 16
    augment: bool = True
    augment_on: str = "device"  # device: pixels per batch where the model runs; cpu: per item
    workers: int | str = "auto"  # loader processes; auto: 0 on a CPU device, the trial's CPUs - 1 on a GPU
    cache: bool = True  # without the store: keep decoded frames in each process
    store: bool = True  # the node's clip store: every clip decoded once, shared memmap
    reduced_decode: bool = False  # true: JPEGs >= 2/4/8x the size decode at 1/2, 1/4, 1/8 scale
    on_error: str = "raise"
    # Options of the named data set (root, fold, preset, ...), checked against its builder.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    epochs: int = 8
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    kfold: bool = False
    eval_every: int = 0  # test split scored every k epochs; 0: only after the last epoch
    val_fraction: float = 0.0  # hold out this share of train (by subject when known) as "val"
    diag_every: int = 25  # gradient probe: every k-th step of an epoch, its first included; 0: off
    precision: str = "auto"  # auto (bf16 on CUDA where supported, else fp32) | bf16 | fp16 | fp32
    channels_last: bool = False  # channels_last_3d memory format for weights and clips
    compile: bool = False  # torch.compile the model for training


@dataclass
class Config:
    method: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "config") -> "Config":
        cfg = _build(cls, _fold_options(raw, source), source)
        _check_values(cfg, source)
        return cfg


# Sections whose unknown keys are options of the named component.
_OPTION_SECTIONS = {"loss": LossConfig, "data": DataConfig}


def _fold_options(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Move `loss: {name: dsm, tau: 0.1}` style keys into `options`."""
    out = dict(raw)
    for section, dc in _OPTION_SECTIONS.items():
        sec = out.get(section)
        if not isinstance(sec, Mapping):
            continue
        known = {f.name for f in dataclasses.fields(dc)}
        sec = dict(sec)
        opts = dict(sec.pop("options", None) or {})
        for key in [k for k in sec if k not in known]:
            opts[key] = sec.pop(key)
        sec["options"] = opts
        out[section] = sec
    return out


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return (f" Did you mean '{close[0]}'?" if close else "") + f" Allowed: {', '.join(allowed)}."


def _build(dc: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(dc)
    names = [f.name for f in dataclasses.fields(dc)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key '{key}'.{_suggest(str(key), names)}")
        kwargs[key] = _coerce(hints[key], value, f"{where}: {key}")
    return dc(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check a YAML value against a type hint, converting ints to floats."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where.replace(": ", "."))
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value, where)
        for tp_i in inner:  # the first member the value fits
            try:
                return _coerce(tp_i, value, where)
            except ConfigError:
                pass
        names = " or ".join(getattr(t, "__name__", str(t)) for t in inner)
        raise ConfigError(f"{where} must be {names}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(item, v, where) for v in value]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where} must be {tp.__name__}, got {value!r}")


def _check_values(cfg: Config, source: str) -> None:
    """Range checks that no type hint can express."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {msg}")

    need(len(cfg.model.dam_stages) == 4, "model.dam_stages must list 4 booleans (one per X3D stage)")
    need(0.0 <= cfg.model.dropout < 1.0, f"model.dropout must be in [0, 1), got {cfg.model.dropout}")
    need(cfg.optim.lr > 0, f"optim.lr must be > 0, got {cfg.optim.lr}")
    need(cfg.optim.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {cfg.optim.weight_decay}")
    need(cfg.optim.rho > 0, f"optim.rho must be > 0, got {cfg.optim.rho}")
    need(cfg.optim.warmup_epochs >= 0, "optim.warmup_epochs must be >= 0")
    need(cfg.data.num_frames >= 1, f"data.num_frames must be >= 1, got {cfg.data.num_frames}")
    need(cfg.data.size >= 32 and cfg.data.size % 32 == 0,
         f"data.size must be a multiple of 32 (X3D downsamples by 32), got {cfg.data.size}")
    need(cfg.data.batch_size >= 2, f"data.batch_size must be >= 2, got {cfg.data.batch_size}")
    need(cfg.data.workers == "auto" or (isinstance(cfg.data.workers, int) and cfg.data.workers >= 0),
         f"data.workers must be >= 0 or 'auto' (from the CPUs the trial owns), got {cfg.data.workers!r}")
    need(cfg.data.augment_on in ("device", "cpu"),
         f"data.augment_on must be 'device' or 'cpu', got {cfg.data.augment_on!r}")
    need(cfg.data.on_error in ("raise", "skip"),
         f"data.on_error must be 'raise' or 'skip', got {cfg.data.on_error!r}")
    need(cfg.optim.momentum >= 0, f"optim.momentum must be >= 0, got {cfg.optim.momentum}")
    need(cfg.optim.grad_clip is None or cfg.optim.grad_clip > 0,
         f"optim.grad_clip must be > 0 (or null: no clipping), got {cfg.optim.grad_clip}")
    need(cfg.train.epochs >= 1, f"train.epochs must be >= 1, got {cfg.train.epochs}")
    need(0 <= cfg.train.seed <= MAX_SEED,
         f"train.seed must be in 0..2**63-1, got {cfg.train.seed}")
    need(cfg.train.threads is None or cfg.train.threads >= 1,
         f"train.threads must be >= 1 (or null: torch's default), got {cfg.train.threads}")
    need(cfg.train.eval_every >= 0,
         f"train.eval_every must be >= 0 (0: test scored after the last epoch only), "
         f"got {cfg.train.eval_every}")
    need(cfg.train.precision in PRECISIONS,
         f"train.precision must be one of {', '.join(PRECISIONS)}, got {cfg.train.precision!r}")
    need(cfg.train.diag_every >= 0, f"train.diag_every must be >= 0, got {cfg.train.diag_every}")
    need(0.0 <= cfg.train.val_fraction < 1.0,
         f"train.val_fraction must be in [0, 1), got {cfg.train.val_fraction}")
    need(DEVICE_NAME.fullmatch(cfg.train.device) is not None,
         f"train.device must be auto, cpu, cuda or cuda:N, got {cfg.train.device!r}")


def load_yaml(path: str | Path, what: str = "config") -> Any:
    """safe_load a UTF-8 YAML file of any shape; every failure is one ConfigError line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p} is not a UTF-8 text file (byte 0x{e.object[e.start]:02x} at "
                          f"offset {e.start}); save the {what} as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"cannot read {what} {p}: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}:{where} is not valid YAML: {problem}") from None


def read_yaml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A YAML mapping from a file; an empty file is refused, not read as "all defaults"."""
    p = Path(path)
    data = load_yaml(p, what)
    if data is None:
        raise ConfigError(f"{p} is empty (or only comments): a {what} file needs at least one key")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def list_methods() -> list[str]:
    return sorted(p.stem for p in METHODS_DIR.glob("*.yaml"))


def _method_dict(name: str) -> dict[str, Any]:
    path = METHODS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = list_methods()
        raise ConfigError(f"unknown method '{name}'.{_suggest(name, known)}")
    return read_yaml(path)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["optim.lr=1e-3", "loss.name=dsm"]` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' must look like section.key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):
            try:  # YAML 1.1 leaves "1e-4" a string; on the command line it means a number
                value = float(value)
            except ValueError:
                pass
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, *, method: str | None = None,
                overrides: list[str] | None = None) -> Config:
    """Resolve defaults, method preset, YAML file and overrides into a Config."""
    user = read_yaml(path) if path is not None else {}
    over = parse_overrides(overrides or [])
    chosen = over.get("method") or method or user.get("method")
    raw: dict[str, Any] = {}
    if chosen:
        if not isinstance(chosen, str):
            raise ConfigError(f"method must be a name, got {chosen!r}")
        raw = deep_merge(raw, _method_dict(chosen))
        raw["method"] = chosen
    raw = deep_merge(raw, user)
    raw = deep_merge(raw, over)
    if chosen:
        raw["method"] = chosen
    source = str(path) if path is not None else "config"
    return Config.from_dict(raw, source=source)
