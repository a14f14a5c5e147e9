"""Decoding: JPEG/PNG frames with OpenCV, video files with PyAV; the video list.

Encoded video files (mp4, avi, ...) are listed in a CSV:

    path,label            # header required
    clips/a.mp4,angry     # label: emotion name (any case) or DFEW number 1..7
    clips/b.avi,4         # paths relative to the CSV's folder (or absolute)
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.data.records import ClipRecord, Issues, OnError, RecordList, parse_label, two_field_rows
from bench.errors import DataError

__all__ = ["read_video_list", "decode_video", "read_frame", "resize_frame"]

HEADER = ["path", "label"]


def read_video_list(csv_path: str | Path, *, on_error: OnError = "raise") -> RecordList:
    """Records of a `path,label` list; checks that files exist, decodes nothing."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"video list {csv_path} does not exist")
    issues = Issues(on_error, str(csv_path))
    records: list[ClipRecord] = []
    for where, rel, label_text in two_field_rows(csv_path, HEADER, issues):
        try:
            label = parse_label(label_text, names=True, numbers=True)
        except ValueError as e:
            issues.report(where, f"{where}: {e}")
            continue
        video = csv_path.parent / rel.strip()
        if not video.is_file():
            issues.report(where, f"{where}: video file {video} does not exist")
            continue
        records.append(ClipRecord(clip_id=rel.strip(), label=label, video=video))
    return issues.finish(records)


def decode_video(path: Path, *, size: int | None = None) -> np.ndarray:
    """All frames of the first video stream as RGB uint8.  # (N, H, W, 3)

    `size` resizes each frame as it is decoded, so a long video never sits in
    memory at full resolution.
    """
    import av  # PyAV is only needed for this loader

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"video file {path} has no video stream")
            frames = [resize_frame(f.to_ndarray(format="rgb24"), size) for f in container.decode(video=0)]
    except av.FFmpegError as e:
        raise DataError(f"video file {path} cannot be decoded: {e}") from None
    if not frames:
        raise DataError(f"video file {path} has no frames")
    return np.stack(frames)


def resize_frame(frame: np.ndarray, size: int | None) -> np.ndarray:
    """Square resize (INTER_AREA: the usual case is downscaling 256 -> 64/112)."""
    if size is None or frame.shape[:2] == (size, size):
        return frame
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def read_frame(path: Path, size: int | None = None) -> np.ndarray:
    """One image file as RGB uint8, resized to (size, size).  # (H, W, 3)"""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataError(f"frame {path} cannot be read (missing, empty or not an image)")
    return cv2.cvtColor(resize_frame(bgr, size), cv2.COLOR_BGR2RGB)
