"""CLI: python -m bench.data.synth --out DIR --preset ci --seed 0 [--class-prior uniform]."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn, Sequence

import yaml

from bench.cli import run_main
from bench.data.synth.options import PRESETS
from bench.data.synth.writer import MARKER, generate
from bench.errors import BenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(2, f"error: {message}\n")


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got '{text}'")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:  # argparse turns only ArgumentTypeError/ValueError into a line
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise argparse.ArgumentTypeError(f"{key.strip()}: value {value!r} is not valid YAML "
                                         f"({problem})") from None


def _summary(root: Path, seconds: float) -> str:
    import pandas as pd

    meta = pd.read_csv(root / "metadata.csv")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    rec = json.loads((root / MARKER).read_text())
    by_class = ", ".join(f"{k} {v}" for k, v in rec["class_counts"].items())
    by_source = ", ".join(f"{n} {c}" for n, c in meta.groupby("source_name", sort=False).size().items())
    return (f"wrote {len(meta)} clips ({rec['num_frames']} frames, {size / 2**20:.1f} MiB) to {root} "
            f"in {seconds:.1f} s\n  classes: {by_class}\n  sources: {by_source}")


def main(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="python -m bench.data.synth", description=__doc__)
    p.add_argument("--out", required=True, type=Path, help="output folder (new, empty or earlier synth output)")
    p.add_argument("--preset", default="default", help=f"one of {', '.join(PRESETS.names())}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class-prior", help="'dfew' (default), 'uniform' or 7 comma-separated weights")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: up to 2)")
    p.add_argument("--set", dest="options", action="append", default=[], type=_parse_option,
                   metavar="KEY=VALUE", help="any SynthOptions field, e.g. --set noise_scale=1.5")
    args = p.parse_args(argv)
    options = dict(args.options)
    if args.class_prior is not None:
        options["class_prior"] = args.class_prior
    start = time.perf_counter()
    try:
        root = generate(args.out, preset=args.preset, seed=args.seed, workers=args.workers, **options)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(_summary(root, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    run_main(main)
