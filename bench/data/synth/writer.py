"""Writing a synthetic data set in DFEW's on-disk layout (the only module here that does I/O).

    <root>/Clip/clip_224x224/<00001>/<00001>.jpg ...
    <root>/EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv
    <root>/metadata.csv      one row per clip, every generation parameter
    <root>/synth.json        version, preset, seed, options (written last: the complete marker)

Everything is written into a hidden sibling folder and renamed into place at
the end, so an interrupted run never leaves a half-written data set behind.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import pandas as pd

from bench.data.cachedir import cache_root, locked, read_marker
from bench.data.labels import EMOTIONS
from bench.data.synth.dataset import clip_rng, sample_table
from bench.data.synth.options import (
    GENERATOR_VERSION, SynthOptions, check_seed, make_options, non_default,
)
from bench.data.synth.render import render_clip
from bench.data.synth.sources import encode_jpeg
from bench.errors import DataError
from bench.paths import check_output_folder

__all__ = ["generate", "ensure_synthetic", "cache_root", "MARKER"]

log = logging.getLogger(__name__)

MARKER = "synth.json"
SEED_WHAT = "synthetic data seed"
CLIP_DIR = Path("Clip") / "clip_224x224"
SPLIT_DIR = Path("EmoLabel_DataSplit")
# metadata.csv leads with these; the remaining parameters follow.
_FIRST = ["video_name", "label", "emotion", "subject", "source", "source_name", "intensity",
          "onset", "apex", "apex_end", "offset", "num_frames", "fps", "fold"]
_CHUNK = 24  # clips per worker task
_MIN_PARALLEL = 200  # below this many clips, worker start-up costs more than it saves


def _render_chunk(args: tuple[str, list[dict[str, Any]], int]) -> int:
    """Render and write the frames of a few clips; returns the number of frames."""
    clip_root, rows, seed = args
    cv2.setNumThreads(1)
    n = 0
    for row in rows:
        frames = render_clip(row, clip_rng(seed, row["video_name"]))  # (T, H, W, 3)
        folder = Path(clip_root) / f"{int(row['video_name']):05d}"
        folder.mkdir(parents=True)
        for i, frame in enumerate(frames):
            (folder / f"{i + 1:05d}.jpg").write_bytes(encode_jpeg(frame, int(row["jpeg_quality"])))
        n += len(frames)
    return n


def _write_frames(clip_root: Path, table: pd.DataFrame, seed: int, workers: int) -> int:
    rows = table.to_dict("records")
    chunks = [(str(clip_root), rows[i:i + _CHUNK], seed) for i in range(0, len(rows), _CHUNK)]
    if workers <= 1 or len(rows) < _MIN_PARALLEL:
        return sum(_render_chunk(c) for c in chunks)
    # fork (as torch's DataLoader does): spawn/forkserver would re-import the caller's
    # __main__, which breaks scripts without a main guard. Children touch only numpy/cv2.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_signals)
    try:
        return sum(pool.map(_render_chunk, chunks))
    finally:
        # On an interrupt, drop the chunks not started and wait for the running ones, so
        # no worker writes into the folder the caller removes next.
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_signals() -> None:
    """Render workers leave interrupts to the parent, which stops the pool and cleans up.

    Forked workers inherit the parent's handlers: Ctrl-C (sent to the whole
    process group) would print a traceback per worker, and SIGTERM would raise
    where no clean-up waits. Ignore SIGINT; die quietly on SIGTERM/SIGHUP.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def _write_splits(root: Path, table: pd.DataFrame, num_folds: int) -> None:
    for split in ("train", "test"):
        folder = root / SPLIT_DIR / f"{split}(single-labeled)"
        folder.mkdir(parents=True)
        for k in range(1, num_folds + 1):
            in_test = table["fold"] == k
            part = table[in_test if split == "test" else ~in_test]
            part[["video_name", "label"]].to_csv(folder / f"set_{k}.csv", index=False)


def _record(preset: str, seed: int, opts: SynthOptions, table: pd.DataFrame) -> dict[str, Any]:
    return {
        "generator": "bench.data.synth", "version": GENERATOR_VERSION, "preset": preset,
        "seed": seed, "options": opts.to_dict(), "num_clips": int(len(table)),
        "num_frames": int(table["num_frames"].sum()),
        "class_counts": {e: int((table["label"] == i + 1).sum()) for i, e in enumerate(EMOTIONS)},
        "sources": sorted(set(zip(table["source"].tolist(), table["source_name"].tolist()))),
    }


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"output '{out}' exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise DataError(f"output '{out}' is not empty and is not a synthetic data set "
                        f"(no {MARKER}); choose an empty or new folder")
    check_output_folder(out.parent, "the synthetic data set")


def generate(out: str | Path, *, preset: str = "default", seed: int = 0, workers: int | None = None,
             **options: Any) -> Path:
    """Write a data set to `out` (replacing an earlier synthetic one there) and return the path.

    Checks come first (options, seed, target), so a bad call writes nothing; an
    interrupt or a full disk removes the hidden folder written so far.
    """
    opts = make_options(preset, **options)
    seed = check_seed(seed, SEED_WHAT)
    out = Path(out).expanduser().absolute()
    _check_target(out)
    table = sample_table(opts, seed)
    workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        _write_frames(tmp / CLIP_DIR, table, seed, workers)
        _write_splits(tmp, table, opts.num_folds)
        cols = _FIRST + [c for c in table.columns if c not in _FIRST]
        table[cols].to_csv(tmp / "metadata.csv", index=False)
        (tmp / MARKER).write_text(json.dumps(_record(preset, seed, opts, table), indent=2) + "\n")
        _swap_in(tmp, out)
    except DataError:
        raise
    except OSError as e:  # disk full, read-only file system, permissions
        raise DataError(f"cannot write the synthetic data set to {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _swap_in(tmp: Path, out: Path) -> None:
    """Move the finished folder to `out`; an older data set there is removed only afterwards."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _default_root(preset: str, seed: int, opts: SynthOptions) -> Path:
    name = f"{preset}-seed{seed}-v{GENERATOR_VERSION}"
    changed = non_default(opts, preset)
    if changed:
        digest = hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]
        name += f"-{digest}"
    return cache_root() / "synth" / name


def _unusable(path: Path) -> str | None:
    """Why a non-empty folder at `path` is not a complete data set (no or unreadable marker)."""
    if not path.is_dir() or not any(path.iterdir()):
        return None
    marker = path / MARKER
    if not marker.is_file():
        return f"it has no {MARKER}"
    return None if read_marker(marker) is not None else f"its {MARKER} is unreadable"


def ensure_synthetic(*, preset: str = "default", seed: int = 0, root: str | Path | None = None,
                     workers: int | None = None, **options: Any) -> Path:
    """Root of the synthetic data set for (preset, seed, options), generating it if missing.

    A cache entry (no `root`) that is incomplete (no marker) or whose marker is
    unreadable can only be left over from an interrupted or damaged write: it is
    rebuilt, with a warning. A folder the user named as `root` is never removed.
    """
    opts = make_options(preset, **options)
    seed = check_seed(seed, SEED_WHAT)  # before the lock: a bad seed leaves nothing in the cache
    path = Path(root).expanduser().absolute() if root is not None else _default_root(preset, seed, opts)
    if root is not None and (problem := _unusable(path)):  # refused before a lock file appears
        raise DataError(f"data root '{path}' is not a complete synthetic data set ({problem}); "
                        f"remove it or choose another root")
    with locked(path.parent / f".{path.name}.lock"):
        problem = _unusable(path)
        if problem and root is not None:  # it changed since the check above
            raise DataError(f"data root '{path}' is not a complete synthetic data set "
                            f"({problem}); remove it or choose another root")
        if problem:
            log.warning("cache entry %s is incomplete or corrupt (%s); rebuilding it", path, problem)
            shutil.rmtree(path)
        marker = path / MARKER
        if marker.is_file():
            rec = read_marker(marker) or {}
            want = (GENERATOR_VERSION, preset, seed, opts.to_dict())
            if (rec.get("version"), rec.get("preset"), rec.get("seed"), rec.get("options")) != want:
                raise DataError(f"'{marker}' records a different data set (preset, seed, options "
                                f"or version); delete '{path}' or choose another root")
            return path
        return generate(path, preset=preset, seed=seed, workers=workers, **options)
