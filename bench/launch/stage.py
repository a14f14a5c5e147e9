"""Node-local copies of a study's data: `python -m bench.launch.stage --to DIR -- TUNE_ARGS`.

    bench.tune arguments ──> the study's data configs (study and baselines)
        ──> synthetic set without a root: generated if missing, staged under DIR/cache
            (trials find it there through HDF_BENCH_CACHE=DIR/cache)
        ──> any data set with a root (DFEW, FERV39k, a named synthetic folder):
            staged as DIR/data/N-NAME (trials read it through HDF_BENCH_STAGED)
        ──> stdout: "copy SRC DST" and "env NAME VALUE" lines, tab-separated

slurm/sweep.sh --stage-data runs this once on the first node, copies every
SRC to DST on every node and exports the env lines before Ray starts there.

HDF_BENCH_STAGED is "SRC=DST" pairs joined by ":"; `restage(cfg)` (pure, no
I/O) rewrites a config's data root by it, in every trial.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from bench.errors import ConfigError

__all__ = ["STAGED_ENV", "parse_staged", "restage", "plan", "main"]

STAGED_ENV = "HDF_BENCH_STAGED"


def parse_staged(text: str | None) -> dict[str, str]:
    """ "SRC=DST:SRC2=DST2" -> {SRC: DST, ...} (empty for None or "")."""
    out = {}
    for item in (text or "").split(":"):
        if item:
            src, sep, dst = item.partition("=")
            if not sep or not src or not dst:
                raise ConfigError(f"{STAGED_ENV}: {item!r} is not SRC=DST")
            out[src] = dst
    return out


def restage(cfg: Any, staged: Mapping[str, str]) -> Any:
    """The config with its data root replaced by the staged copy, if there is one."""
    root = cfg.data.options.get("root")
    if root is None or not staged:
        return cfg
    new = staged.get(str(Path(root).expanduser().absolute()))
    if new is None:
        return cfg
    from bench.config import Config, deep_merge

    return Config.from_dict(deep_merge(cfg.to_dict(), {"data": {"options": {"root": new}}}))


def _cache_folder(cfg: Any) -> Path | None:
    """The synthetic set's cache folder (generated now if missing), or None."""
    o = cfg.data.options
    if cfg.data.name != "synthetic" or o.get("root") is not None:
        return None
    from bench.data.synth import ensure_synthetic

    return ensure_synthetic(preset=o.get("preset", "default"), seed=o.get("data_seed", 0),
                            **(o.get("synth_options") or {}))


def plan(configs: list[Any], to: Path, cache: Path) -> list[tuple[str, str, str]]:
    """("copy", SRC, DST) and ("env", NAME, VALUE) rows for the configs' data."""
    rows: list[tuple[str, str, str]] = []
    roots: dict[str, str] = {}
    cached = False
    for cfg in configs:
        root = cfg.data.options.get("root")
        if root is not None:
            src = str(Path(root).expanduser().absolute())
            if src not in roots:
                if not Path(src).is_dir():
                    raise ConfigError(f"--stage-data: data root {src} is not a folder")
                roots[src] = str(to / "data" / f"{len(roots)}-{Path(src).name}")
                rows.append(("copy", src, roots[src]))
            continue
        folder = _cache_folder(cfg)
        if folder is not None:
            dst = str(to / "cache" / folder.relative_to(cache))
            if ("copy", str(folder), dst) not in rows:
                rows.append(("copy", str(folder), dst))
            cached = True
    if cached:
        rows.append(("env", "HDF_BENCH_CACHE", str(to / "cache")))
    if roots:
        rows.append(("env", STAGED_ENV, ":".join(f"{s}={d}" for s, d in roots.items())))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.launch.stage", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--to", type=Path, required=True, help="node-local staging folder")
    p.add_argument("tune_args", nargs=argparse.REMAINDER, help="-- then bench.tune's arguments")
    args = p.parse_args(argv)
    tune_args = args.tune_args[1:] if args.tune_args[:1] == ["--"] else args.tune_args
    from bench.data.synth import cache_root
    from bench.tune import _study, build_parser

    _, study, _ = _study(build_parser().parse_args(tune_args))
    configs = [study.base_config()] + [study.base_config(m) for m in study.baselines]
    for row in plan(configs, args.to.absolute(), cache_root().absolute()):
        print("\t".join(row))
    return 0


if __name__ == "__main__":
    from bench.cli import run_main

    run_main(main)
