"""Decoding one clip's frames, with the nearest-readable-neighbour rule for bad frames.

    ClipRecord --read_frame (cv2, optionally reduced-scale JPEG decode)--> (N, S, S, 3) uint8

Shared by `ClipDataset` (frames on demand) and the clip store (every frame once).
"""
from __future__ import annotations

import numpy as np

from bench.data.records import ClipRecord
from bench.data.video import decode_video, read_frame
from bench.errors import DataError

__all__ = ["read_or_neighbour", "decode_clip"]


def read_or_neighbour(rec: ClipRecord, i: int, *, size: int, reduced: bool, skip: bool,
                      bad: dict[str, str]) -> np.ndarray:
    """Frame i of a frame-folder clip.  # (S, S, 3)

    skip=False: an unreadable frame raises. skip=True: it is recorded in `bad`
    (path -> reason; frames already there are not tried again) and its nearest
    readable neighbour (i-1, i+1, i-2, i+2, ...) is returned instead.
    """
    assert rec.frames is not None
    paths = rec.frames
    try:
        return read_frame(paths[i], size, reduced=reduced)
    except DataError as e:
        if not skip:
            raise
        bad.setdefault(str(paths[i]), str(e))
    n = len(paths)
    for d in range(1, n):
        for j in (i - d, i + d):
            if 0 <= j < n and str(paths[j]) not in bad:
                try:
                    return read_frame(paths[j], size, reduced=reduced)
                except DataError as e:
                    bad.setdefault(str(paths[j]), str(e))
    raise DataError(f"clip {rec.clip_id} ({rec.source}) has no readable frame")


def decode_clip(rec: ClipRecord, *, size: int, reduced: bool) -> tuple[np.ndarray, list[list[str]]]:
    """Every frame of a clip, resized, and the [path, reason] of each replaced one.

    A clip with no usable frame comes back empty (0, S, S, 3), its reason last.
    """
    empty = np.zeros((0, size, size, 3), np.uint8)
    if rec.video is not None:
        try:
            return decode_video(rec.video, size=size), []
        except DataError as e:
            return empty, [[str(rec.video), str(e)]]
    bad: dict[str, str] = {}
    try:
        frames = [read_or_neighbour(rec, i, size=size, reduced=reduced, skip=True, bad=bad)
                  for i in range(len(rec.frames or []))]
    except DataError as e:
        return empty, [[p, r] for p, r in bad.items()] + [[str(rec.source), str(e)]]
    problems = [[p, r] for p, r in bad.items()]
    if not frames:
        return empty, problems + [[str(rec.source), f"clip {rec.clip_id} has no frames"]]
    return np.stack(frames), problems  # (N, S, S, 3)
