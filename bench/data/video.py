"""Decoding: JPEG/PNG frames with OpenCV, video files with PyAV; the video list.

Encoded video files (mp4, avi, ...) are listed in a CSV:

    path,label            # header required
    clips/a.mp4,angry     # label: emotion name (any case) or DFEW number 1..7
    clips/b.avi,4         # paths relative to the CSV's folder

A path that leaves the CSV's folder (absolute, or up through `..`) is refused
unless the caller allows it (`data.allow_outside=true`), so a list from
elsewhere cannot hand any file on the machine to the decoder.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.data.records import ClipRecord, Issues, OnError, RecordList, parse_label, two_field_rows
from bench.errors import ConfigError, DataError
from bench.paths import inside

__all__ = ["read_video_list", "decode_video", "read_frame", "resize_frame", "video_problem",
           "jpeg_side", "reduced_flag"]

HEADER = ["path", "label"]


def read_video_list(csv_path: str | Path, *, on_error: OnError = "raise",
                    allow_outside: bool = False) -> RecordList:
    """Records of a `path,label` list; checks that files exist.

    on_error="skip" also opens each file and decodes its first frame, so a file
    that is not a video is skipped and counted here: later, mid-epoch, a clip
    can no longer be left out. "raise" decodes nothing until the clip is used.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"video list {csv_path} does not exist")
    issues = Issues(on_error, str(csv_path))
    records: list[ClipRecord] = []
    for where, rel, label_text in two_field_rows(csv_path, HEADER, issues):
        try:
            label = parse_label(label_text, names=True, numbers=True)
            video = inside(csv_path.parent, rel.strip(), f"{where}: video path",
                           allow_outside=allow_outside,
                           hint=" (set data.allow_outside=true to read files outside it)")
        except (ValueError, ConfigError) as e:
            issues.report(where, str(e) if isinstance(e, ConfigError) else f"{where}: {e}")
            continue
        if not video.is_file():
            issues.report(where, f"{where}: video file {video} does not exist")
            continue
        if issues.on_error == "skip":
            problem = video_problem(video)
            if problem:
                issues.report(where, f"{where}: {problem}")
                continue
        records.append(ClipRecord(clip_id=rel.strip(), label=label, video=video))
    return issues.finish(records)


def video_problem(path: Path) -> str | None:
    """Why `path` is not a usable video (no stream, no frame, not decodable), or None."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return f"video file {path} has no video stream"
            for _ in container.decode(video=0):
                return None
            return f"video file {path} has no frames"
    except Exception as e:  # PyAV raises FFmpegError, but also ValueError/UnicodeError on junk
        return f"video file {path} cannot be decoded: {e}"


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
    except (av.FFmpegError, ValueError) as e:  # ValueError: e.g. metadata that is not UTF-8
        raise DataError(f"video file {path} cannot be decoded: {e}") from None
    if not frames:
        raise DataError(f"video file {path} has no frames")
    return np.stack(frames)


def resize_frame(frame: np.ndarray, size: int | None) -> np.ndarray:
    """Square resize (INTER_AREA: the usual case is downscaling 256 -> 64/112)."""
    if size is None or frame.shape[:2] == (size, size):
        return frame
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def read_frame(path: Path, size: int | None = None, *, reduced: bool = False) -> np.ndarray:
    """One image file as RGB uint8, resized to (size, size).  # (H, W, 3)

    reduced=True: a JPEG at least 2, 4 or 8 times `size` on its shorter side is
    decoded at 1/2, 1/4 or 1/8 scale by libjpeg (far fewer pixels to decode),
    then resized to the exact size with INTER_AREA like any other frame.

    A JPEG without its end-of-image marker is refused: libjpeg would decode the
    part that is there (grey below it), print "Premature end of JPEG file" without
    the file's name, and the run would train on it.
    """
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if jpeg and data and not _jpeg_complete(data):
        raise DataError(f"frame {path} is truncated (the JPEG ends without its end marker)")
    flag = reduced_flag(jpeg_side(data), size) if jpeg and reduced and size else cv2.IMREAD_COLOR
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag) if data else None
    if bgr is None:
        raise DataError(f"frame {path} cannot be read (missing, empty or not an image)")
    return cv2.cvtColor(resize_frame(bgr, size), cv2.COLOR_BGR2RGB)


_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (2, cv2.IMREAD_REDUCED_COLOR_2))


def reduced_flag(side: int | None, size: int) -> int:
    """The imdecode flag for a JPEG whose shorter side is `side`, wanted at `size`."""
    for factor, flag in _REDUCED:
        if side is not None and side >= factor * size:
            return flag
    return cv2.IMREAD_COLOR


def jpeg_side(data: bytes) -> int | None:
    """The shorter side of a JPEG from its start-of-frame header, or None if not found."""
    i, n = 2, len(data)
    while i + 9 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h = int.from_bytes(data[i + 5:i + 7], "big")
            w = int.from_bytes(data[i + 7:i + 9], "big")
            return min(h, w) or None
        i += 2 + length
    return None


def _jpeg_complete(data: bytes) -> bool:
    """Starts with SOI and ends with EOI (some writers pad a few bytes after it)."""
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" in data[-32:]
