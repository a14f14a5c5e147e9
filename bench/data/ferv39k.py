"""FERV39k reader (docs/data.md).

    <root>/4_setups/All_scenes/{train,test}_All.csv   # "Crime/Angry/0063 Angry", no header
    <root>/2_ClipsforFaceCrop/<Scene>/<Emotion>/<NNNN>/*.jpg

Labels are mapped by NAME to the DFEW order: public code bases disagree on the
integer order (DFEW order vs alphabetical), so integer labels are refused.
"""
from __future__ import annotations

from pathlib import Path

from bench.data.records import (
    ClipRecord,
    Issues,
    OnError,
    RecordList,
    check_split,
    frame_folder_issue,
    parse_label,
    utf8_errors,
)
from bench.errors import ConfigError, DataError
from bench.paths import inside

__all__ = ["read_ferv39k_split", "ferv39k_split_csv"]

SETUP_DIR = Path("4_setups") / "All_scenes"
CLIP_DIR = Path("2_ClipsforFaceCrop")


def ferv39k_split_csv(root: str | Path, *, split: str) -> Path:
    check_split(split)
    return Path(root) / SETUP_DIR / f"{split}_All.csv"


def read_ferv39k_split(
    root: str | Path,
    *,
    split: str,
    on_error: OnError = "raise",
) -> RecordList:
    """Records of the All_scenes train or test list, in file order."""
    csv_path = ferv39k_split_csv(root, split=split)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"FERV39k root {root} does not exist")
    if not csv_path.is_file():
        raise DataError(f"FERV39k split file {csv_path} does not exist")
    clip_dir = root / CLIP_DIR
    if not clip_dir.is_dir():
        raise DataError(f"FERV39k frame folder {clip_dir} does not exist")

    issues = Issues(on_error, str(csv_path))
    records: list[ClipRecord] = []
    with utf8_errors(csv_path), csv_path.open(encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            fields = text.split()
            if not fields:
                continue
            where = f"{csv_path}:{line}"
            if len(fields) != 2:
                issues.report(where, f"{where}: expected 'Scene/Emotion/NNNN EmotionName', got {text.strip()!r}")
                continue
            rel, name = fields
            try:
                label = parse_label(name, names=True, numbers=False)
            except ValueError as e:
                issues.report(where, f"{where}: {e}")
                continue
            try:
                folder = inside(clip_dir, rel, f"{where}: clip folder")
            except ConfigError as e:
                issues.report(where, str(e))
                continue
            frames, problem = frame_folder_issue(folder)
            if problem:
                issues.report(where, f"{where}: {problem}")
                continue
            parts = Path(rel).parts
            meta = {"scene": parts[0] if len(parts) == 3 else ""}
            records.append(ClipRecord(clip_id=rel, label=label, frames=frames, meta=meta))
    return issues.finish(records)
