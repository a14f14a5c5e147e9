"""The sweep run folder, read and written: models.yaml in, robustness/ out.

    RUN_DIR/models.yaml                  list of {name, role, method, seed, group, path}
    RUN_DIR/<path>/checkpoint.pt         bench Trainer.state_dict()
    RUN_DIR/summary.json                 study_key: runs of the same study share it
    RUN_DIR/robustness/                  results.parquet/.csv, predictions.parquet,
                                         scores.csv, gain.csv, suite.json, verdict.json

The output folder is written under a temporary name and renamed into place, so
RUN_DIR/robustness/ is either the previous complete result or the new one.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from bench.config import Config, load_yaml
from bench.engine import build_split
from bench.errors import ConfigError, DataError, UnknownNameError
from bench.evaluate import load_model
from bench.paths import inside
from bench.runfolder import SUITE, SUMMARY, VERDICT
from bench.runs import atomic_write_text, load_checkpoint, write_table

__all__ = ["ModelEntry", "read_manifest", "read_checkpoints", "trained_devices", "load_models",
           "test_set", "pick_baseline", "write_outputs", "prior_spread", "ROLES", "VERDICT_FILE"]

ROLES = ("hdf", "baseline")
VERDICT_FILE = VERDICT


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: str
    method: str
    seed: int
    path: Path  # absolute model folder
    group: str = ""  # the same model trained with other seeds shares it ("hdf-best", "x3d_ce")


def _group(item: dict[str, Any]) -> str:
    """The manifest's group, else the name without its "-s<seed>" suffix."""
    if item.get("group"):
        return str(item["group"])
    name, suffix = str(item["name"]), f"-s{item.get('seed', 0)}"
    return name[:-len(suffix)] if name.endswith(suffix) else name


def read_manifest(run_dir: str | Path, *, allow_outside: bool = False) -> list[ModelEntry]:
    """Entries of RUN_DIR/models.yaml, checked (one clear error per problem).

    A model's path stays inside RUN_DIR unless `allow_outside`: a copied or
    downloaded run folder must not make the suite open files elsewhere.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"run folder {run} does not exist")
    path = run / "models.yaml"
    if not path.is_file():
        raise DataError(f"{path} does not exist (is {run} a finished sweep run folder?)")
    raw = load_yaml(path, "model manifest")
    if isinstance(raw, dict) and "models" in raw:
        raw = raw["models"]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: expected a non-empty list of models")
    out: list[ModelEntry] = []
    for i, item in enumerate(raw):
        where = f"{path}: model {i + 1}"
        if not isinstance(item, dict) or not {"name", "role", "path"} <= set(item):
            raise ConfigError(f"{where} needs name, role and path")
        if item["role"] not in ROLES:
            raise ConfigError(f"{where}: role must be one of {', '.join(ROLES)}, got {item['role']!r}")
        if any(e.name == item["name"] for e in out):
            raise ConfigError(f"{where}: name '{item['name']}' appears twice")
        seed = item.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{where}: seed must be an integer, got {seed!r}")
        folder = inside(run, str(item["path"]), f"{where}: path", allow_outside=allow_outside,
                        hint=" (pass --allow-outside to read models elsewhere)")
        out.append(ModelEntry(str(item["name"]), str(item["role"]), str(item.get("method", "")),
                              seed, folder.resolve(), _group(item)))
    return out


def read_checkpoints(entries: list[ModelEntry]) -> dict[str, dict[str, Any]]:
    """name -> checkpoint (tensors on the CPU) from each entry's checkpoint.pt."""
    return {e.name: load_checkpoint(e.path / "checkpoint.pt") for e in entries}


def trained_devices(checkpoints: dict[str, dict[str, Any]]) -> dict[str, str]:
    """name -> the train.device its config names (auto, cpu, cuda, cuda:N)."""
    return {name: Config.from_dict(state["config"], source=f"checkpoint config of '{name}'")
            .train.device for name, state in checkpoints.items()}


def load_models(entries: list[ModelEntry], device: torch.device,
                checkpoints: dict[str, dict[str, Any]] | None = None
                ) -> dict[str, tuple[Config, Any]]:
    """name -> (config, model in eval mode on `device`) from each entry's checkpoint.pt
    (or from `checkpoints`, already read)."""
    states = checkpoints if checkpoints is not None else read_checkpoints(entries)
    return {e.name: load_model(states[e.name], device) for e in entries}


def test_set(configs: dict[str, Config]):
    """The test split every model was trained for; models must agree on it (paired inputs)."""
    def key(c: Config) -> tuple:
        d = c.data
        return (d.name, d.num_frames, d.size, yaml.safe_dump(d.options, sort_keys=True))

    first_name, first = next(iter(configs.items()))
    for name, cfg in configs.items():
        if key(cfg) != key(first):
            raise ConfigError(f"models '{first_name}' and '{name}' were trained on different data "
                              f"or clip sizes; the suite feeds every model the same clips")
    return build_split(first, "test")


def pick_baseline(entries: list[ModelEntry], name: str | None) -> str | None:
    """The named model, or the first baseline of the manifest (None if there is none)."""
    names = [e.name for e in entries]
    if name is not None:
        if name not in names:
            raise UnknownNameError(f"unknown baseline '{name}'. Models in this run: {', '.join(names)}")
        return name
    return next((e.name for e in entries if e.role == "baseline"), None)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def prior_spread(run_dir: str | Path) -> dict[str, Any] | None:
    """The seed spread of the newest earlier run of the same study with several seeds.

    Runs are siblings of RUN_DIR whose summary.json has RUN_DIR's study_key and whose
    verdict.json was computed over >= 2 training seeds. None when there is none.
    """
    run = Path(run_dir).resolve()
    key = (_json(run / SUMMARY) or {}).get("study_key")
    if not key:
        return None
    found = []
    for other in run.parent.iterdir():
        if other == run or (_json(other / SUMMARY) or {}).get("study_key") != key:
            continue
        path = other / "robustness" / VERDICT_FILE
        for v in _json(path) or []:
            if isinstance(v, dict) and int(v.get("training_seeds", 0)) >= 2 and v.get("spread"):
                found.append((path.stat().st_mtime, other.name, v))
    if not found:
        return None
    _, name, v = max(found, key=lambda f: f[0])
    return {"run": name, "seeds": int(v["training_seeds"]), "spread": dict(v["spread"])}


def write_outputs(run_dir: str | Path, tables: dict[str, pd.DataFrame], info: dict[str, Any],
                  *, verdicts: list[dict[str, Any]] | None = None) -> Path:
    """Write `tables` (file name -> DataFrame), suite.json and verdict.json to RUN_DIR/robustness
    atomically."""
    run = Path(run_dir)
    final = run / "robustness"
    tmp = run / f".robustness.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for fname, df in tables.items():
            write_table(tmp / fname, df)
        atomic_write_text(tmp / SUITE, json.dumps(info, indent=2, default=str) + "\n")
        if verdicts is not None:
            atomic_write_text(tmp / VERDICT_FILE, json.dumps(verdicts, indent=2) + "\n")
        old = run / f".robustness.old-{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
