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
    tmp.write_text(text)
    os.replace(tmp, path)


def write_table(path: Path, df: pd.DataFrame) -> None:
    """CSV (and Parquet beside it for .parquet paths), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """weights_only load: a checkpoint can never run code."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"checkpoint not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise DataError(f"cannot read checkpoint {p}: {str(e).splitlines()[0]}") from None


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
