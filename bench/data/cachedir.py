"""The node-wide data cache folder and its two primitives: an inter-process lock and a marker.

    $HDF_BENCH_CACHE (or ~/.cache/hdf-bench)/
        synth/<name>/         generated data sets (bench.data.synth.writer)
        clips/<key>/          decoded clip stores (bench.data.store)

Every entry is written under a hidden temporary name and renamed into place
after its marker (a small JSON record, written last) is on disk, while holding
`locked(<parent>/.<name>.lock)`: parallel trials build an entry once, the others
wait and then read it. An entry without a readable marker is left over from an
interrupted write and is rebuilt.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from bench.errors import DataError

__all__ = ["cache_root", "locked", "read_marker", "CACHE_HINT"]

CACHE_HINT = "set HDF_BENCH_CACHE to a writable folder"


def cache_root() -> Path:
    """Where cached data sets live: $HDF_BENCH_CACHE or ~/.cache/hdf-bench."""
    return Path(os.environ.get("HDF_BENCH_CACHE") or Path.home() / ".cache" / "hdf-bench")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Inter-process lock (flock on `path`), so parallel processes build an entry once."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")
    except OSError as e:
        raise DataError(f"cannot use the data cache folder {path.parent}: {e.strerror or e} "
                        f"({CACHE_HINT})") from None
    with fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: renaming still keeps it atomic
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_marker(marker: Path) -> dict[str, Any] | None:
    """The marker's record, or None when it cannot be read as a JSON object."""
    try:
        rec = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: bad JSON or bytes that are not UTF-8
        return None
    return rec if isinstance(rec, dict) else None
