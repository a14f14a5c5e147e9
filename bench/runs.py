"""Run folders: the only place training results touch the disk.

A run is written under `<name>.partial/` and renamed to `<name>/` when it
finishes, so a folder without the suffix is always complete. Every file is
written to a temporary name and moved into place, so readers never see half a
file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from bench.errors import ConfigError, DataError

__all__ = ["RunFolder", "environment", "atomic_write_text", "save_checkpoint", "load_checkpoint",
           "write_table"]

_PACKAGES = ("torch", "torchvision", "pytorchvideo", "albumentations", "numpy", "pandas",
             "ray", "optuna", "plotly", "submitit")


def environment() -> dict[str, Any]:
    """What a reader needs to reproduce a number: versions, hardware, commit, command."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "hostname": socket.gethostname(), "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "packages": versions, "git_commit": commit, "argv": sys.argv,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:  # an interrupt too: no hidden half-file stays next to the output
        tmp.unlink(missing_ok=True)
        raise


def write_table(path: Path, df: pd.DataFrame) -> None:
    """CSV (and Parquet beside it for .parquet paths), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# The part of torch's weights_only refusal that names the first object it would not load.
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _unreadable(p: Path, e: BaseException) -> DataError:
    """One line for a file torch.load refused, never torch's own advice.

    torch suggests re-running with weights_only=False, which lets the file run
    any code it holds: the one thing a checkpoint of unknown origin must not get.
    """
    found = _GLOBAL.search(str(e))
    if found:
        return DataError(f"checkpoint {p} holds objects a checkpoint may not hold (first: "
                         f"{found.group(1)}); it was not written by hdf-bench and is not loaded")
    return DataError(f"checkpoint {p} is not a hdf-bench checkpoint (not a file torch.save "
                     f"wrote, or a damaged one)")


def load_checkpoint(path: str | Path, require: tuple[str, ...] = ("model", "config")) -> dict[str, Any]:
    """weights_only load: a checkpoint can never run code.

    `require`: keys the checkpoint must hold (a Trainer.state_dict() has them all);
    a file without them is refused here with one line, not later with a KeyError.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"checkpoint not found: {p}")
    if p.stat().st_size == 0:
        raise DataError(f"checkpoint {p} is empty (0 bytes)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise _unreadable(p, e) from None
    if not isinstance(state, dict):
        raise DataError(f"checkpoint {p} is not a hdf-bench checkpoint: it holds a "
                        f"{type(state).__name__}, not the training state")
    missing = [k for k in require if not isinstance(state.get(k), dict)]
    if missing:
        raise DataError(f"checkpoint {p} is not a hdf-bench checkpoint: it lacks "
                        f"{' and '.join(repr(k) for k in missing)} (the weights and the config "
                        f"they were trained with)")
    return state


class RunFolder:
    """`<out>/<name>.partial/` while running, `<out>/<name>/` once finished."""

    def __init__(self, out: str | Path, name: str) -> None:
        self.final = Path(out) / name
        self.path = Path(out) / f"{name}.partial"
        if self.final.exists():
            raise ConfigError(f"run folder {self.final} exists already; choose another --name")
        try:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
        except OSError as e:
            raise ConfigError(f"cannot create run folder {self.path}: {e.strerror or e}") from None

    def file(self, rel: str) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_yaml(self, rel: str, data: Any) -> None:
        atomic_write_text(self.file(rel), yaml.safe_dump(data, sort_keys=False))

    def write_json(self, rel: str, data: Any) -> None:
        atomic_write_text(self.file(rel), json.dumps(data, indent=2, default=str) + "\n")

    def finish(self) -> Path:
        os.replace(self.path, self.final)
        self.path = self.final
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
