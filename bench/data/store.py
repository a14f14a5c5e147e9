"""The clip store: every clip of a data set decoded once, resized, kept as uint8 in one file.

    records (all splits) --decode once--> <cache>/clips/<key>/frames.u8   (F, S, S, 3) uint8
                                          <cache>/clips/<key>/store.json  clips, offsets, bad frames
    ClipDataset._sample --> ClipStore.clip(row)  # read-only np.memmap view (N, S, S, 3)

Every DataLoader worker and every trial on the node maps the same file
read-only: the frames sit once in the page cache, never once per process. The
key hashes what determines the bytes: the clips' sources (paths plus each
file's mtime and size, or the data set's own identity where it has one), the
frame size and the decode mode, so a changed data set or size gets a new store.

A store is built under `locked()` into a hidden temporary folder, fsynced, its
marker written last, then renamed into place; a builder killed half-way leaves
only the temporary folder, which the next builder removes. Frames that cannot be
read are replaced by their nearest readable neighbour and listed in the marker,
so a data set loaded with on_error="raise" still fails on them when used.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from bench.data.cachedir import CACHE_HINT, cache_root, locked, read_marker
from bench.data.frames import decode_clip
from bench.data.records import ClipRecord
from bench.errors import DataError

__all__ = ["ClipStore", "open_store", "store_key", "clip_key", "STORE_VERSION"]

log = logging.getLogger(__name__)

STORE_VERSION = 1  # bump when the same key would give other bytes
MARKER = "store.json"
FRAMES = "frames.u8"


def clip_key(rec: ClipRecord) -> str:
    """A clip's name in the store: its video file or frame folder."""
    return str(rec.source)


def _files(rec: ClipRecord) -> list[Path]:
    return [rec.video] if rec.video is not None else list(rec.frames or [])


def store_key(records: Iterable[ClipRecord], *, size: int, reduced: bool,
              identity: str | None = None) -> str:
    """Hash of what determines a store's bytes.

    Without `identity` every file is stat'ed (mtime, size); with it (a data set
    that is never changed in place, e.g. a generated one) only the file names count.
    """
    h = hashlib.sha1(json.dumps({"v": STORE_VERSION, "size": size, "reduced": reduced,
                                 "identity": identity}).encode())
    for rec in sorted(records, key=clip_key):
        h.update(f"\0{clip_key(rec)}".encode())
        for f in _files(rec):
            if identity is None:
                try:
                    st = os.stat(f)
                    stamp = f"{st.st_mtime_ns}:{st.st_size}"
                except OSError:
                    stamp = "missing"
            else:
                stamp = ""
            h.update(f"|{f.name}:{stamp}".encode())
    return h.hexdigest()[:20]


class ClipStore:
    """Read side of a complete store; pickles without its mapping (workers reopen it)."""

    def __init__(self, folder: Path, record: dict[str, Any]) -> None:
        self.folder = folder
        self.size = int(record["size"])
        self.keys: list[str] = list(record["clips"])
        self.offsets = np.asarray(record["offsets"], dtype=np.int64)  # (clips + 1,)
        self.bad: dict[str, list[list[str]]] = dict(record.get("bad", {}))
        self._rows = {k: i for i, k in enumerate(self.keys)}
        self._frames: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_frames"] = None  # a memmap would pickle its bytes
        return state

    def row(self, rec: ClipRecord) -> int:
        try:
            return self._rows[clip_key(rec)]
        except KeyError:
            raise DataError(f"clip {rec.clip_id} ({rec.source}) is not in the clip store "
                            f"{self.folder}") from None

    def problems(self, row: int) -> list[list[str]]:
        """[path, reason] of each frame of a clip that was replaced (or the clip itself)."""
        return self.bad.get(str(row), [])

    def clip(self, row: int) -> np.ndarray:
        """Every frame of one clip, a read-only view of the shared file.  # (N, S, S, 3)"""
        if self._frames is None:
            total = int(self.offsets[-1])
            self._frames = np.memmap(self.folder / FRAMES, dtype=np.uint8, mode="r",
                                     shape=(total, self.size, self.size, 3)) if total else \
                np.zeros((0, self.size, self.size, 3), np.uint8)
        return self._frames[self.offsets[row]:self.offsets[row + 1]]


def _complete(folder: Path) -> dict[str, Any] | None:
    """The marker of a complete store at `folder`, or None (missing, partial, damaged)."""
    rec = read_marker(folder / MARKER)
    if rec is None or rec.get("version") != STORE_VERSION:
        return None
    try:
        nbytes = (folder / FRAMES).stat().st_size
    except OSError:
        return None
    return rec if nbytes == int(rec["offsets"][-1]) * int(rec["size"]) ** 2 * 3 else None


def open_store(records: Iterable[ClipRecord], *, size: int, reduced: bool = False,
               identity: str | None = None, root: Path | None = None) -> ClipStore:
    """The store of `records` at `size`, built now (once per node) if missing or partial."""
    records = sorted(records, key=clip_key)
    key = store_key(records, size=size, reduced=reduced, identity=identity)
    base = (root or cache_root()) / "clips"
    final = base / key
    rec = _complete(final)
    if rec is not None:  # no lock needed to read: a complete store never changes
        return ClipStore(final, rec)
    with locked(base / f".{key}.lock"):
        rec = _complete(final)
        if rec is None:
            if final.exists():
                log.warning("clip store %s is incomplete or damaged; rebuilding it", final)
                shutil.rmtree(final, ignore_errors=True)
            for left in base.glob(f".{key}.tmp-*"):  # a builder killed mid-build (we hold the lock)
                log.warning("removing a partial clip store left by a killed builder: %s", left)
                shutil.rmtree(left, ignore_errors=True)
            _build(final, records, size=size, reduced=reduced, key=key)
            rec = _complete(final)
            if rec is None:  # pragma: no cover - the build just wrote it
                raise DataError(f"clip store {final} is unreadable right after writing it")
    return ClipStore(final, rec)


def _build(final: Path, records: list[ClipRecord], *, size: int, reduced: bool, key: str) -> None:
    """Decode every clip into a temporary folder, fsync, mark complete, rename into place."""
    tmp = final.parent / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    n_frames = sum(len(_files(r)) for r in records)
    log.info("building the clip store %s (%d clips, about %d frames at %dx%d)",
             final, len(records), n_frames, size, size)
    offsets, bad = [0], {}
    try:
        tmp.mkdir()
        with open(tmp / FRAMES, "wb") as f:
            for i, rec in enumerate(records):
                frames, problems = decode_clip(rec, size=size, reduced=reduced)  # (N, S, S, 3)
                if problems:
                    bad[str(i)] = problems
                f.write(np.ascontiguousarray(frames).data)
                offsets.append(offsets[-1] + len(frames))
            f.flush()
            os.fsync(f.fileno())
        record = {"store": "bench.data.store", "version": STORE_VERSION, "key": key,
                  "size": size, "reduced": reduced, "clips": [clip_key(r) for r in records],
                  "offsets": offsets, "bad": bad}
        with open(tmp / MARKER, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except DataError:
        raise
    except OSError as e:  # disk full, read-only file system, permissions
        raise DataError(f"cannot write the clip store under {final.parent}: {e.strerror or e} "
                        f"({CACHE_HINT}, or set data.store=false)") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every system opens folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
