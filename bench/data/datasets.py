"""Data sets by name: `build_dataset("dfew", split="train", root=...)`.

Every builder takes the same clip options (num_frames, size, augment, seed,
cache, on_error, store, reduced_decode) plus its own (root, fold, ...). `seed`
drives training-time randomness; `data_seed` (synthetic only) drives the
generator of the data.

store=True: clips come from the node's clip store (bench.data.store), built on
first use from the clips of every split, so the train and test splits of every
fold share one file.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable

from bench.data.clips import ClipDataset
from bench.data.dfew import dfew_clip_id, read_dfew_split
from bench.data.ferv39k import read_ferv39k_split
from bench.data.records import ClipRecord, check_split, utf8_errors
from bench.data.device_augment import ClipParams
from bench.data.transforms import build_train_transform
from bench.data.video import read_video_list
from bench.errors import ConfigError, DataError
from bench.registry import Registry

__all__ = ["DATASETS", "build_dataset", "join_metadata"]

DATASETS: Registry = Registry("dataset")


def build_dataset(
    name: str,
    *,
    split: str,
    num_frames: int = 8,
    size: int = 64,
    augment: bool = False,
    seed: int = 0,
    cache: bool = True,
    on_error: str = "raise",
    store: bool = True,
    reduced_decode: bool = False,
    **dataset_options: Any,
) -> ClipDataset:
    """Build a registered data set; unknown options fail with a suggestion."""
    return DATASETS.build(
        name, split=split, num_frames=num_frames, size=size, augment=augment,
        seed=seed, cache=cache, on_error=on_error, store=store,
        reduced_decode=reduced_decode, **dataset_options,
    )


def _clip_dataset(
    records: list[ClipRecord], *, split: str, num_frames: int, size: int,
    augment: bool, seed: int, cache: bool, on_error: str, store: bool, reduced_decode: bool,
    every_clip: Callable[[], list[ClipRecord]], identity: str | None = None,
) -> ClipDataset:
    """`every_clip()`: the records of all splits (the store's contents), read only if store."""
    from bench.data.store import open_store

    train = check_split(split) == "train"
    # augment: True (on the CPU, per item) or "device" (parameters per item, pixels per batch)
    transform = build_train_transform(size) if augment and augment != "device" and train else None
    params = ClipParams() if augment == "device" and train else None
    clip_store = open_store(every_clip(), size=size, reduced=reduced_decode,
                            identity=identity) if store else None
    return ClipDataset(
        records, num_frames=num_frames, size=size, transform=transform,
        train=train, seed=seed, cache=cache, on_error=on_error,
        reduced_decode=reduced_decode, store=clip_store, device_params=params,
    )


def _both_splits(records: list[ClipRecord], split: str,
                 read: Callable[[str], list[ClipRecord]]) -> Callable[[], list[ClipRecord]]:
    """`records` plus the other split's, each clip once."""
    def every_clip() -> list[ClipRecord]:
        other = read("test" if split == "train" else "train")
        seen = {str(r.source) for r in records}
        return list(records) + [r for r in other if str(r.source) not in seen]
    return every_clip


def _need(value: str | Path | None, option: str, dataset: str, what: str) -> Path:
    if value is None or str(value) == "":
        raise ConfigError(f"dataset '{dataset}' needs option '{option}' ({what})")
    return Path(value).expanduser()


@DATASETS.register("dfew")
def dfew(
    *,
    split: str,
    root: str | Path | None = None,
    fold: int = 1,
    # clip options (see build_dataset)
    num_frames: int = 8,
    size: int = 64,
    augment: bool = False,
    seed: int = 0,
    cache: bool = True,
    on_error: str = "raise",
    store: bool = True,
    reduced_decode: bool = False,
) -> ClipDataset:
    root = _need(root, "root", "dfew", "the folder holding Clip/ and EmoLabel_DataSplit/")
    records = read_dfew_split(root, fold=fold, split=split, on_error=on_error)
    every = _both_splits(records, split, lambda other: read_dfew_split(
        root, fold=fold, split=other, on_error=on_error))
    return _clip_dataset(records, split=split, num_frames=num_frames, size=size,
                         augment=augment, seed=seed, cache=cache, on_error=on_error,
                         store=store, reduced_decode=reduced_decode, every_clip=every)


@DATASETS.register("ferv39k")
def ferv39k(
    *,
    split: str,
    root: str | Path | None = None,
    # clip options (see build_dataset)
    num_frames: int = 8,
    size: int = 64,
    augment: bool = False,
    seed: int = 0,
    cache: bool = True,
    on_error: str = "raise",
    store: bool = True,
    reduced_decode: bool = False,
) -> ClipDataset:
    root = _need(root, "root", "ferv39k", "the folder holding 4_setups/ and 2_ClipsforFaceCrop/")
    records = read_ferv39k_split(root, split=split, on_error=on_error)
    every = _both_splits(records, split, lambda other: read_ferv39k_split(
        root, split=other, on_error=on_error))
    return _clip_dataset(records, split=split, num_frames=num_frames, size=size,
                         augment=augment, seed=seed, cache=cache, on_error=on_error,
                         store=store, reduced_decode=reduced_decode, every_clip=every)


@DATASETS.register("video")
def video(
    *,
    split: str,
    list: str | Path | None = None,  # noqa: A002 - the config key users write
    allow_outside: bool = False,
    # clip options (see build_dataset)
    num_frames: int = 8,
    size: int = 64,
    augment: bool = False,
    seed: int = 0,
    cache: bool = True,
    on_error: str = "raise",
    store: bool = True,
    reduced_decode: bool = False,
) -> ClipDataset:
    """`split` only picks training or evaluation sampling; the list is the split.

    allow_outside: read listed files outside the list's folder (absolute paths,
    `..`); off, so a list from elsewhere cannot point the decoder at any file.
    """
    csv_path = _need(list, "list", "video", "a CSV of 'path,label' rows")
    records = read_video_list(csv_path, on_error=on_error, allow_outside=allow_outside)
    return _clip_dataset(records, split=split, num_frames=num_frames, size=size,
                         augment=augment, seed=seed, cache=cache, on_error=on_error,
                         store=store, reduced_decode=reduced_decode, every_clip=lambda: records)


@DATASETS.register("synthetic")
def synthetic(
    *,
    split: str,
    preset: str = "default",
    data_seed: int = 0,
    root: str | Path | None = None,
    fold: int = 1,
    synth_options: dict[str, Any] | None = None,
    holdout_sources: list[int] | None = None,
    # clip options (see build_dataset)
    num_frames: int = 8,
    size: int = 64,
    augment: bool = False,
    seed: int = 0,
    cache: bool = True,
    on_error: str = "raise",
    store: bool = True,
    reduced_decode: bool = False,
) -> ClipDataset:
    """Generated (or reused) DFEW-layout data; `.meta` carries metadata.csv.

    holdout_sources: camera sources whose clips are left out of the train split
    (the test split keeps them), to measure accuracy on unseen sources.
    """
    from bench.data.synth import MARKER, ensure_synthetic  # generator is optional for other loaders

    check_split(split)
    folder = ensure_synthetic(preset=preset, seed=data_seed, root=root, **(synth_options or {}))
    records = read_dfew_split(folder, fold=fold, split=split, on_error=on_error)
    join_metadata(records, Path(folder) / "metadata.csv")
    every = _both_splits(records, split, lambda other: read_dfew_split(
        folder, fold=fold, split=other, on_error=on_error))
    marker = (Path(folder) / MARKER).read_text(encoding="utf-8")
    if holdout_sources and split == "train":
        from bench.data.synth.holdout import drop_sources
        num_sources = int(json.loads(marker)["options"]["num_sources"])
        records = drop_sources(records, holdout_sources, num_sources=num_sources)
    # A generated data set is never changed in place: its marker names its bytes.
    identity = f"{Path(folder).resolve()}\n{marker}"
    return _clip_dataset(records, split=split, num_frames=num_frames, size=size,
                         augment=augment, seed=seed, cache=cache, on_error=on_error,
                         store=store, reduced_decode=reduced_decode, every_clip=every,
                         identity=identity)


def join_metadata(records: list[ClipRecord], csv_path: Path) -> None:
    """Add each clip's metadata.csv row to `record.meta` (in place).

    The row's 1-based `label` must agree with the split file: a mismatch means
    the folder mixes two generations.
    """
    if not csv_path.is_file():
        raise DataError(f"metadata file {csv_path} does not exist")
    with utf8_errors(csv_path), csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"video_name", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{csv_path}:1: header lacks {', '.join(sorted(missing))}")
        rows: dict[str, tuple[int, dict[str, str]]] = {}
        for row in reader:
            try:
                rows[dfew_clip_id(row["video_name"])] = (reader.line_num, row)
            except ValueError as e:
                raise DataError(f"{csv_path}:{reader.line_num}: {e}") from None
    for rec in records:
        if rec.clip_id not in rows:
            raise DataError(f"metadata file {csv_path} has no row for clip {rec.clip_id}")
        line, row = rows[rec.clip_id]
        if str(row["label"]).strip() != str(rec.label + 1):
            raise DataError(
                f"{csv_path}:{line}: label {row['label']} disagrees with the split file "
                f"(DFEW label {rec.label + 1}) for clip {rec.clip_id}"
            )
        rec.meta.update({k: _parse_value(v) for k, v in row.items() if k not in ("video_name", "label")})


def _parse_value(text: str | None) -> Any:
    # metadata.csv mixes ints, floats and names; keep the frame numeric where it can be.
    if text is None:
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
