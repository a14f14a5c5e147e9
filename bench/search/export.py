"""Trials -> RUN_DIR/models/<name>/ and models.yaml: what the suite and the report load.

    trial record (last checkpoint state.pt, history)
        -> models/<name>/checkpoint.pt, config.yaml, metrics.csv   (written under a
           temporary name, then renamed: a model folder is whole or absent)
        -> one manifest entry {name, role, method, seed, group, path, trial}
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from bench.errors import DataError
from bench.runfolder import MODELS, MODELS_DIR
from bench.runs import atomic_write_text, load_checkpoint, write_table
from bench.search.results import model_metrics
from bench.search.trainable import STATE_FILE

__all__ = ["export_model", "write_manifest", "model_name"]


def model_name(group: str, seed: int, first_seed: int) -> str:
    """The group's name at its first seed, "<group>-s<seed>" at the others."""
    return group if seed == first_seed else f"{group}-s{seed}"


def export_model(run_dir: Path, rec, *, name: str, role: str, method: str, seed: int,
                 group: str) -> dict[str, Any]:
    """Copy a trial's last checkpoint and history into models/<name>/; its manifest entry."""
    if rec.checkpoint is None:
        raise DataError(f"trial {rec.trial} left no checkpoint to export")
    dest = Path(run_dir) / MODELS_DIR / name
    tmp = dest.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(rec.checkpoint / STATE_FILE, tmp / "checkpoint.pt")
    state = load_checkpoint(tmp / "checkpoint.pt")
    (tmp / "config.yaml").write_text(yaml.safe_dump(state["config"], sort_keys=False))
    write_table(tmp / "metrics.csv", model_metrics(rec))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return {"name": name, "role": role, "method": method, "seed": int(seed), "group": group,
            "path": f"{MODELS_DIR}/{name}", "trial": rec.trial}


def write_manifest(run_dir: Path, models: list[dict[str, Any]]) -> None:
    atomic_write_text(Path(run_dir) / MODELS, yaml.safe_dump(models, sort_keys=False))
