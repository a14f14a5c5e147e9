"""Path checks shared by the CLIs: can an output be written, does a listed path stay home.

Both run before any work, so a bad `--out` costs nothing and a crafted list or
manifest never gets a file outside its folder opened and handed to a decoder.
"""
from __future__ import annotations

import os
from pathlib import Path

from bench.errors import ConfigError

__all__ = ["check_output_file", "check_output_folder", "inside"]


def _first_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(path.anchor or ".")


def check_output_folder(folder: str | Path, what: str) -> Path:
    """Fail unless `folder` exists as a writable folder or can be created (mkdir -p)."""
    folder = Path(folder)
    base = _first_existing(folder)
    if not base.is_dir():
        raise ConfigError(f"cannot write {what} under {folder}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {what} under {folder}: no write permission in {base}")
    return folder


def check_output_file(path: str | Path, what: str, *, create_parents: bool) -> Path:
    """Fail unless a file can be written at `path`; checked before the work that fills it.

    create_parents=False: the parent folder must exist already (a typo in a folder
    name is refused rather than silently created).
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"cannot write {what} to {path}: it is a folder; give a file name")
    parent = path.parent
    if not create_parents and not parent.exists():
        raise ConfigError(f"cannot write {what} to {path}: folder {parent} does not exist")
    check_output_folder(parent, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"cannot write {what} to {path}: no write permission")
    return path


def inside(base: str | Path, rel: str | Path, what: str, *, allow_outside: bool = False,
           hint: str = "") -> Path:
    """`base / rel`, refused when it leaves `base` (by `..` or by being absolute).

    The check is on the written path (`..` collapsed, symlinks not followed): a
    link a user placed inside the folder is their choice, a `../../etc/passwd`
    in a downloaded list is not. `allow_outside` lets absolute and escaping paths
    through; `hint` says how to ask for that.
    """
    base = Path(base)
    target = Path(os.path.normpath(base / rel))
    if allow_outside:
        return target
    root = Path(os.path.normpath(base.absolute()))
    full = Path(os.path.normpath(base.absolute() / rel))
    if full != root and root not in full.parents:
        shown = root if str(base) in ("", ".") else base
        raise ConfigError(f"{what} {str(rel)!r} points outside {shown}{hint}")
    return target
