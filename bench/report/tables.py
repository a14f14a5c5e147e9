"""Read a run folder into tidy frames: the report's only file I/O.

Every table is optional. A missing file leaves its field `None`; a file that
exists but cannot be read or lacks columns also leaves it `None` and adds one
line to `RunData.notes`, so the page says what is wrong instead of failing.
The columns each frame carries once loaded are listed in `COLUMNS` (the
figure functions document the same names).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.errors import ConfigError, DataError
from bench.paths import inside
from bench import runfolder as rf
from bench.runfolder import MARKERS, TRAIN_FILES, is_run_folder, is_train_run

__all__ = ["RunData", "load_run", "is_run_folder", "COLUMNS", "IMBALANCE_SHIFT", "SOURCE_SHIFTS",
           "MARKERS"]

# Required columns of each loaded frame (extra columns are kept).
COLUMNS: dict[str, tuple[str, ...]] = {
    "trials": ("trial", "number", "status", "epoch", "metric", "value"),
    "models": ("name", "role"),
    "metrics": ("model", "role", "fold", "epoch", "split", "metric", "value"),
    "confusion": ("model", "true", "pred", "count"),
    "results": ("model", "role", "shift", "severity", "seed", "metric", "value"),
    "gain": ("model", "baseline", "condition", "metric", "estimate", "ci_low", "ci_high"),
    "scores": ("model",),
    "imbalance": ("model", "role", "ratio", "group", "value"),
    "sources": ("model", "role", "split", "metric", "value"),
    "confirm": ("trial", "seed", "metric", "value"),
    "effects": ("effect", "kind", "metric", "estimate", "ci_low", "ci_high"),
}
# Rows of results.parquet that are not style/temporal shifts (see _split_results).
IMBALANCE_SHIFT = "imbalance"
LONGTAIL_SHIFT = "longtail_exp"
SOURCE_SHIFTS = {"source_seen": "seen", "source_unseen": "unseen"}


@dataclass
class RunData:
    """Everything the report shows, read once; None = not in the run folder."""

    root: Path
    name: str
    study_spec: dict[str, Any] | None = None
    env: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    study: Any = None  # optuna.Study from optuna.journal
    trials: pd.DataFrame | None = None
    models: pd.DataFrame | None = None
    metrics: pd.DataFrame | None = None
    confusion: pd.DataFrame | None = None
    results: pd.DataFrame | None = None
    gain: pd.DataFrame | None = None
    scores: pd.DataFrame | None = None
    imbalance: pd.DataFrame | None = None
    sources: pd.DataFrame | None = None
    confirm: pd.DataFrame | None = None      # confirm.csv: top configurations at fresh seeds
    effects: pd.DataFrame | None = None      # effects.csv: an ablation's effects
    verdicts: list[dict[str, Any]] | None = None  # robustness/verdict.json
    has_robustness: bool = False
    notes: list[str] = field(default_factory=list)


def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _first(root: Path, *names: str) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def _checked(data: RunData, kind: str, df: pd.DataFrame | None, where: str) -> pd.DataFrame | None:
    if df is None:
        return None
    missing = [c for c in COLUMNS[kind] if c not in df.columns]
    if missing:
        data.notes.append(f"{where}: missing column(s) {', '.join(missing)}; not shown")
        return None
    return df


def _table(data: RunData, kind: str, *names: str) -> pd.DataFrame | None:
    path = _first(data.root, *names)
    if path is None:
        return None
    try:
        df = _read_table(path)
    except Exception as e:  # pyarrow / pandas raise many kinds for a bad file
        data.notes.append(f"{path.relative_to(data.root)}: unreadable ({str(e).splitlines()[0]})")
        return None
    return _checked(data, kind, df, str(path.relative_to(data.root)))


def _yaml_or_json(data: RunData, name: str) -> Any:
    path = data.root / name
    if not path.is_file():
        return None
    try:
        text = path.read_text()
        return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        data.notes.append(f"{name}: unreadable ({str(e).splitlines()[0]})")
        return None


def _load_study(data: RunData) -> Any:
    path = data.root / rf.JOURNAL
    if not path.is_file():
        return None
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = JournalStorage(JournalFileBackend(str(path)))
        names = optuna.get_all_study_names(storage)
        name = data.name if data.name in names else (names[0] if len(names) == 1 else None)
        if name is None:
            data.notes.append(f"optuna.journal: {len(names)} studies, none named '{data.name}'")
            return None
        return optuna.load_study(study_name=name, storage=storage)
    except Exception as e:  # a truncated journal raises from deep inside optuna
        data.notes.append(f"optuna.journal: unreadable ({str(e).splitlines()[0]})")
        return None


def _train_manifest(data: RunData) -> pd.DataFrame:
    """A bench.train run folder as a one-model manifest: the folder is the model's folder."""
    cfg = _yaml_or_json(data, "config.yaml")
    cfg = cfg if isinstance(cfg, dict) else {}
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    hdf = cfg.get("method") == "hdf" or model.get("name") == "hdf"
    return pd.DataFrame({"name": [data.name], "role": ["hdf" if hdf else "baseline"],
                         "path": ["."]})


def _manifest(data: RunData) -> pd.DataFrame | None:
    """models.yaml, or the folders under models/ when it is absent, or a bench.train run."""
    listed = _yaml_or_json(data, rf.MODELS)
    if isinstance(listed, list) and listed:
        return _checked(data, "models", pd.DataFrame(listed), rf.MODELS)
    folders = sorted(p for p in (data.root / "models").glob("*/") if p.is_dir())
    if not folders:
        return _train_manifest(data) if is_train_run(data.root) else None
    return pd.DataFrame({"name": [p.name for p in folders],
                         "role": ["hdf" if p.name.startswith("hdf") else "baseline" for p in folders],
                         "path": [f"models/{p.name}" for p in folders]})


def _per_model(data: RunData, kind: str, filename: str) -> pd.DataFrame | None:
    """Concatenate models/<name>/<filename>, adding model and role columns."""
    parts = []
    for row in data.models.itertuples():
        rel = str(getattr(row, "path", None) or f"models/{row.name}")
        try:
            path = inside(data.root, rel, f"models.yaml: {row.name}: path") / filename
        except ConfigError as e:  # a manifest must not make the page show files from elsewhere
            note = f"{e}; not shown"
            if note not in data.notes:  # once, not once per table read from model folders
                data.notes.append(note)
            continue
        if not path.is_file():
            continue
        try:
            df = _read_table(path)
        except Exception as e:
            data.notes.append(f"{path.relative_to(data.root)}: unreadable ({str(e).splitlines()[0]})")
            continue
        parts.append(df.assign(model=row.name, role=row.role))
    if not parts:
        return None
    return _checked(data, kind, pd.concat(parts, ignore_index=True), f"models/*/{filename}")


def _confusion_from_predictions(pred: pd.DataFrame) -> pd.DataFrame:
    """Counts per (model, true, pred) over the clean shift, summed over seeds."""
    clean = pred[pred["shift"] == "clean"]
    return (clean.groupby(["model", "y_true", "y_pred"]).size().rename("count").reset_index()
            .rename(columns={"y_true": "true", "y_pred": "pred"}))


def _split_results(data: RunData, results: pd.DataFrame) -> None:
    """Imbalance and seen/unseen-source rows, when stored in results, move to their own frames."""
    lt = results[results["shift"] == LONGTAIL_SHIFT]  # the suite's exponential long-tail rows
    if data.imbalance is None and len(lt):
        groups = {"uar": "all", "recall_many": "many", "recall_medium": "medium",
                  "recall_few": "few"}
        lt = lt[lt["metric"].isin(groups)]
        data.imbalance = lt.assign(ratio=lt["severity"], group=lt["metric"].map(groups),
                                   metric="uar").drop(columns=["shift"])
    imb = results[results["shift"] == IMBALANCE_SHIFT]
    if data.imbalance is None and len(imb):
        # metric "uar" -> group "all"; "uar_many" -> group "many", ...
        group = imb["metric"].str.partition("_")[2].replace("", "all")
        data.imbalance = imb.assign(ratio=imb["severity"], group=group).drop(columns=["shift"])
    src = results[results["shift"].isin(list(SOURCE_SHIFTS))]
    if data.sources is None and len(src):
        data.sources = src.assign(split=src["shift"].map(SOURCE_SHIFTS)).drop(columns=["shift"])
    special = [IMBALANCE_SHIFT, *SOURCE_SHIFTS, LONGTAIL_SHIFT, "longtail_step"]
    data.results = results[~results["shift"].isin(special)].reset_index(drop=True)


def load_run(run_dir: str | Path) -> RunData:
    """All tables of a run folder; raises DataError only when the folder is missing or is
    not a run folder (`is_run_folder`): anything else wrong is a note, not a failure."""
    root = Path(run_dir)
    if not root.is_dir():
        raise DataError(f"run folder not found: {root}")
    if not is_run_folder(root):
        raise DataError(f"{root} is not a run folder: it holds none of {', '.join(MARKERS)}, "
                        f"models/, robustness/ or a bench.train run's "
                        f"{' and '.join(TRAIN_FILES)}")
    data = RunData(root=root, name=root.resolve().name)
    data.study_spec = _yaml_or_json(data, rf.STUDY)
    data.env = _yaml_or_json(data, rf.ENV)
    data.summary = _yaml_or_json(data, rf.SUMMARY)
    data.study = _load_study(data)
    data.trials = _table(data, "trials", rf.TRIALS, rf.TRIALS_CSV)
    data.confirm = _table(data, "confirm", rf.CONFIRM)
    data.effects = _table(data, "effects", rf.EFFECTS)
    data.models = _manifest(data)
    if data.models is not None:
        data.metrics = _per_model(data, "metrics", rf.MODEL_METRICS)
        conf = _per_model(data, "confusion", "confusion.csv")
        if conf is not None and "checkpoint" in conf.columns:  # bench.train writes best and last
            conf = conf[conf["checkpoint"] == "last"]
        data.confusion = conf
    rob = root / rf.ROBUSTNESS
    data.has_robustness = rob.is_dir()
    if data.has_robustness:
        r = f"{rf.ROBUSTNESS}/"
        data.gain = _table(data, "gain", r + rf.GAIN)
        verdicts = _yaml_or_json(data, r + rf.VERDICT)
        data.verdicts = verdicts if isinstance(verdicts, list) else None
        data.scores = _table(data, "scores", r + rf.SCORES)
        results = _table(data, "results", r + rf.RESULTS, r + rf.RESULTS_CSV)
        if results is not None:
            _split_results(data, results)  # long-tail and source rows -> their own frames
        if data.confusion is None and (rob / rf.PREDICTIONS).is_file():
            try:
                pred = pd.read_parquet(rob / rf.PREDICTIONS,
                                       columns=["model", "shift", "y_true", "y_pred"])
                data.confusion = _confusion_from_predictions(pred)
            except Exception as e:
                data.notes.append(f"{r}{rf.PREDICTIONS}: unreadable ({str(e).splitlines()[0]})")
    return data
