"""Command-line values of the study's commands: number and seed lists, the default space."""
from __future__ import annotations

from pathlib import Path

from bench.errors import ConfigError

__all__ = ["DEFAULT_SPACE", "number_list", "seed_list", "positive_list"]

# x3d_ce's space: its trials learn on 2 CPUs, so there is a best worth finding
DEFAULT_SPACE = Path(__file__).resolve().parents[2] / "search_spaces" / "adamw.yaml"


def number_list(flag: str, text: str, kind: type = int) -> list:
    """"0,1,2" (or "0.01,0.05" with kind float) -> numbers; else one line naming the flag."""
    try:
        return [kind(s) for s in text.split(",")]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise ConfigError(f"{flag} {text!r}: give comma-separated {what}") from None


def seed_list(flag: str, text: str) -> list[int]:
    """"0,2,5" or "0-9" (or a mix) -> integers."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: give integers and ranges, e.g. 0-9 or 0,1,2") \
            from None
    if not out:
        raise ConfigError(f"{flag} {text!r}: no seeds")
    return out


def positive_list(flag: str, text: str, kind: type) -> list:
    """"0.01,0.03" -> numbers, each > 0."""
    out = number_list(flag, text, kind)
    if any(not v > 0 for v in out):
        raise ConfigError(f"{flag} {text!r}: every value must be > 0")
    return out
