"""DFEW reader: the 5-fold single-label protocol (docs/data.md).

    <root>/Clip/clip_224x224/<5-digit id>/<frames>.jpg
    <root>/EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv
        video_name,label      # label 1..7 = Happy Sad Neutral Angry Surprise Disgust Fear

The synthetic generator writes the same layout, so it is read here too.
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
    two_field_rows,
)
from bench.errors import ConfigError, DataError

__all__ = ["read_dfew_split", "dfew_clip_id", "dfew_split_csv", "NUM_FOLDS"]

NUM_FOLDS = 5
HEADER = ["video_name", "label"]
CLIP_DIR = Path("Clip") / "clip_224x224"
SPLIT_DIR = Path("EmoLabel_DataSplit")


def dfew_clip_id(video_name: str | int) -> str:
    """'1', '00001' or 1 -> '00001' (the clip folder name); ValueError if not an id."""
    text = str(video_name).strip()
    if not text.isdigit():
        raise ValueError(f"video_name {text!r} is not a clip number")
    return f"{int(text):05d}"


def dfew_split_csv(root: str | Path, *, fold: int, split: str) -> Path:
    if isinstance(fold, bool) or not isinstance(fold, int) or not 1 <= fold <= NUM_FOLDS:
        raise ConfigError(f"DFEW fold must be an integer in 1..{NUM_FOLDS}, got {fold!r}")
    check_split(split)
    return Path(root) / SPLIT_DIR / f"{split}(single-labeled)" / f"set_{fold}.csv"


def read_dfew_split(
    root: str | Path,
    *,
    fold: int,
    split: str,
    on_error: OnError = "raise",
) -> RecordList:
    """Records of one DFEW fold/split, in CSV order; see records.Issues for on_error."""
    csv_path = dfew_split_csv(root, fold=fold, split=split)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"DFEW root {root} does not exist")
    if not csv_path.parent.is_dir():
        raise DataError(f"DFEW label folder {csv_path.parent} does not exist")
    if not csv_path.is_file():
        raise DataError(f"DFEW split file {csv_path} does not exist")
    clip_dir = root / CLIP_DIR
    if not clip_dir.is_dir():
        raise DataError(f"DFEW frame folder {clip_dir} does not exist")

    issues = Issues(on_error, str(csv_path))
    records: list[ClipRecord] = []
    for where, name, label_text in two_field_rows(csv_path, HEADER, issues):
        try:
            clip_id = dfew_clip_id(name)
            label = parse_label(label_text, names=False, numbers=True)
        except ValueError as e:
            issues.report(where, f"{where}: {e}")
            continue
        frames, problem = frame_folder_issue(clip_dir / clip_id)
        if problem:
            issues.report(where, f"{where}: {problem}")
            continue
        records.append(ClipRecord(clip_id=clip_id, label=label, frames=frames))
    return issues.finish(records)
