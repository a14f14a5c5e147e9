"""`python -m bench.evaluate CHECKPOINT`: score a checkpoint on a data set.

    python -m bench.evaluate runs/hdf-x/checkpoints/best.pt
    python -m bench.evaluate best.pt --set data.name=dfew --set data.root=/data/DFEW --set data.fold=2

By default the data set, fold and clip size are the checkpoint's own; `--set`
overrides data keys. Prints WAR, UAR and per-class recall; `--out FILE.csv`
writes them as a tidy table (checkpoint, data, split, metric, value).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bench.cli import run_main
from bench.config import Config, deep_merge, parse_overrides
from bench.data.workers import resolve_workers
from bench.engine import EvalResult, build_split, evaluate, model_from_config, resolve_device
from bench.errors import ConfigError, DataError
from bench.paths import check_output_file
from bench.progress import Reporter
from bench.runs import load_checkpoint, write_table

__all__ = ["main", "evaluate_checkpoint", "load_model", "weights_mismatch"]


def load_model(state: dict[str, Any], device: torch.device) -> tuple[Config, torch.nn.Module]:
    """Rebuild the network a checkpoint was trained as and load its weights."""
    cfg = Config.from_dict(state["config"], source="checkpoint config")
    model = model_from_config(cfg)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError, AttributeError):  # torch lists every key
        raise DataError(weights_mismatch(cfg, state["model"])) from None
    return cfg, model.to(device).eval()


def _shapes(weights: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}


def weights_mismatch(cfg: Config, weights: Any) -> str:
    """One line saying how a checkpoint's weights differ from the network its config builds.

    When another backbone preset builds a network the weights fit, that is the
    likely cause and the line says so ("preset tiny (config) vs xs (weights)");
    otherwise it counts the missing, unexpected and reshaped tensors.
    """
    import dataclasses

    from bench.models.x3d import PRESETS

    have = _shapes(weights) if isinstance(weights, dict) else {}
    m = cfg.model
    fits = []
    for preset in PRESETS:  # xs, s and m differ in clip size only: their weights look alike
        if preset == m.preset:
            continue
        other = dataclasses.replace(cfg, model=dataclasses.replace(m, preset=preset))
        if _shapes(model_from_config(other).state_dict()) == have:
            fits.append(preset)
    if fits:
        return (f"checkpoint weights do not match its config: preset {m.preset} (config) vs "
                f"{'/'.join(fits)} (weights)")
    want = _shapes(model_from_config(cfg).state_dict())
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    reshaped = [k for k in want if k in have and want[k] != have[k]]
    first = (missing or extra or reshaped or ["(not a state dict)"])[0]
    return (f"checkpoint weights do not match its config (model {m.name}/{m.preset}): "
            f"{len(missing)} missing, {len(extra)} unexpected, {len(reshaped)} of another shape; "
            f"first: {first}")


def evaluate_checkpoint(state: dict[str, Any], *, overrides: list[str] | None = None,
                        split: str = "test", device: str = "auto",
                        reporter: Reporter | None = None) -> tuple[Config, EvalResult]:
    dev = resolve_device(device)
    cfg, model = load_model(state, dev)
    over = parse_overrides(overrides or [])
    if set(over) - {"data"}:
        raise ConfigError(f"only data.* keys can be overridden at evaluation, got "
                          f"{', '.join(sorted(set(over) - {'data'}))}")
    if over:
        base = cfg.to_dict()
        if over.get("data", {}).get("name", cfg.data.name) != cfg.data.name:
            base["data"]["options"] = {}  # another data set: the old one's options do not apply
        cfg = Config.from_dict(deep_merge(base, over), source="--set")
        trained = Config.from_dict(state["config"]).data
        for key in ("num_frames", "size"):
            if getattr(cfg.data, key) != getattr(trained, key):
                raise ConfigError(f"data.{key} must stay {getattr(trained, key)}: the model "
                                  f"was built for that clip size")
    dataset = build_split(cfg, split)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.data.batch_size,
                                         num_workers=resolve_workers(cfg.data.workers, device=dev))
    reporter = reporter or Reporter(quiet=True)
    with reporter.task(f"evaluating {len(dataset)} clips") as bar:
        return cfg, evaluate(model, loader, dev, bar)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a .pt file written by bench.train or bench.tune")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a data key, e.g. --set data.fold=2 (repeatable)")
    ap.add_argument("--split", default="test", choices=["train", "test"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", help="write the metrics as a tidy CSV here")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    resolve_device(args.device)  # what can be checked without reading anything comes first
    if args.out:  # before minutes of evaluation, not after
        check_output_file(args.out, "the metrics table", create_parents=True)
    state = load_checkpoint(args.checkpoint)
    reporter = Reporter(quiet=args.quiet)
    cfg, ev = evaluate_checkpoint(state, overrides=args.overrides, split=args.split,
                                  device=args.device, reporter=reporter)
    rows = [{"checkpoint": str(args.checkpoint), "data": cfg.data.name, "split": args.split,
             "metric": k, "value": v} for k, v in ev.metrics.items()]
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_table(out, pd.DataFrame(rows))
    width = max(len(k) for k in ev.metrics)
    lines = [f"{k:<{width}}  {v:.4f}" for k, v in ev.metrics.items()]
    reporter.result(f"{cfg.data.name} {args.split}: {len(ev.y_true)} clips\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    run_main(main)
