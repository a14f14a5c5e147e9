"""Clip records and the helpers every reader shares.

Readers only parse label files and check that clips exist; decoding happens in
`clips.ClipDataset`. A reader in skip mode returns a `RecordList`, a plain list
that also carries the `(item, reason)` pairs it skipped, so one bad row in an
11k-clip split does not stop a run but is never silent either.
"""
from __future__ import annotations

import contextlib
import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from bench.data.labels import EMOTIONS, label_from_name
from bench.errors import ConfigError, DataError

__all__ = [
    "ClipRecord",
    "RecordList",
    "Issues",
    "OnError",
    "FRAME_SUFFIXES",
    "check_on_error",
    "check_split",
    "frame_folder_issue",
    "list_frames",
    "parse_label",
    "two_field_rows",
    "utf8_errors",
]

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
_DIGITS = re.compile(r"\d+")


@dataclass
class ClipRecord:
    """One labelled clip: a folder of frames or a video file (exactly one)."""

    clip_id: str
    label: int  # 0-based, DFEW order (bench.data.labels.EMOTIONS)
    frames: list[Path] | None = None  # sorted frame files of a frame folder
    video: Path | None = None  # an encoded video file
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.video is None):
            raise ValueError(f"clip {self.clip_id}: give exactly one of frames= or video=")
        if not 0 <= self.label < len(EMOTIONS):
            raise ValueError(f"clip {self.clip_id}: label {self.label} outside 0..{len(EMOTIONS) - 1}")

    @property
    def source(self) -> Path:
        """The folder or file the clip is read from, for error messages."""
        if self.video is not None:
            return self.video
        assert self.frames is not None
        return self.frames[0].parent if self.frames else Path(self.clip_id)


class RecordList(list[ClipRecord]):
    """A list of records plus the `(item, reason)` pairs skipped while reading."""

    skipped: list[tuple[str, str]]

    def __init__(self, records: Iterable[ClipRecord] = (), skipped: Iterable[tuple[str, str]] = ()):
        super().__init__(records)
        self.skipped = list(skipped)


class Issues:
    """Raise on the first bad item, or collect it, according to `on_error`."""

    def __init__(self, on_error: OnError, what: str) -> None:
        self.on_error = check_on_error(on_error)
        self.what = what  # e.g. the CSV path, for the summary line
        self.skipped: list[tuple[str, str]] = []

    def report(self, item: str, reason: str) -> None:
        """`reason` is the full one-line message; `item` names the row or file."""
        if self.on_error == "raise":
            raise DataError(reason)
        self.skipped.append((item, reason))

    def finish(self, records: list[ClipRecord]) -> RecordList:
        """The records kept; none at all is an error here, not a sampler's later."""
        if not records:
            if self.skipped:
                raise DataError(f"no usable clips in {self.what} ({len(self.skipped)} skipped; "
                                f"first: {self.skipped[0][1]})")
            raise DataError(f"no clips in {self.what}")
        if self.skipped:
            log.warning(
                "skipped %d bad item(s) reading %s (kept %d); first: %s",
                len(self.skipped), self.what, len(records), self.skipped[0][1],
            )
        return RecordList(records, self.skipped)


def two_field_rows(csv_path: Path, header: list[str], issues: Issues) -> Iterator[tuple[str, str, str]]:
    """`(where, field1, field2)` of each row of a two-column CSV; blank rows skipped.

    A wrong header fails whatever `on_error` says (the whole file is suspect);
    a row without exactly two fields is reported to `issues` and left out.
    """
    names = ",".join(header)
    with utf8_errors(csv_path), csv_path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        got = next(rows, None)
        if got is None or [h.strip() for h in got] != header:
            raise DataError(f"{csv_path}:1: header must be '{names}', got {','.join(got or [])!r}")
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{csv_path}:{rows.line_num}"
            if len(row) != 2:
                issues.report(where, f"{where}: expected 2 fields '{names}', got {len(row)}")
                continue
            yield where, row[0], row[1]


@contextlib.contextmanager
def utf8_errors(path: Path) -> Iterator[None]:
    """Bytes that are not UTF-8 in a label or list file: one line naming it, no traceback."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not a UTF-8 text file (byte 0x{e.object[e.start]:02x} "
                        f"at offset {e.start})") from None


def check_on_error(on_error: str) -> OnError:
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    return on_error  # type: ignore[return-value]


def check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _frame_key(path: Path) -> tuple[Any, ...]:
    # "frame_10.jpg" after "frame_9.jpg": compare the digit runs as numbers.
    return (tuple(int(d) for d in _DIGITS.findall(path.stem)), path.name)


def list_frames(folder: Path) -> list[Path]:
    """Frame files of a clip folder in numeric order; [] if none."""
    frames = [
        p for p in folder.iterdir()
        if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(frames, key=_frame_key)


def parse_label(text: str, *, names: bool, numbers: bool) -> int:
    """0-based DFEW index from '1'..'7' and/or an emotion name; ValueError if bad."""
    text = text.strip()
    if numbers and text.lstrip("+-").isdigit():
        value = int(text)
        if not 1 <= value <= len(EMOTIONS):
            raise ValueError(f"label {value} outside 1..{len(EMOTIONS)}")
        return value - 1
    if names:
        try:
            return label_from_name(text)
        except KeyError:
            pass
    allowed = []
    if numbers:
        allowed.append(f"1..{len(EMOTIONS)}")
    if names:
        allowed.append("/".join(EMOTIONS))
    raise ValueError(f"label {text!r} is not one of {' or '.join(allowed)}")


def frame_folder_issue(folder: Path) -> tuple[list[Path], str | None]:
    """The folder's frames, or a reason why the clip cannot be used."""
    if not folder.is_dir():
        return [], f"clip folder {folder} does not exist"
    frames = list_frames(folder)
    if not frames:
        return [], f"clip folder {folder} has no {'/'.join(FRAME_SUFFIXES)} frames"
    return frames, None
