"""`python -m bench.train`: train a model from a YAML config and write a run folder.

    python -m bench.train --method hdf
    python -m bench.train --config my.yaml --set optim.lr=1e-3 --set train.epochs=4

Run folder (`runs/<name>/`): config.yaml (resolved), env.json, metrics.csv
(tidy: fold, epoch, split, metric, value), confusion.csv (fold, checkpoint,
true, pred, count) and checkpoints/{best,last}.pt (per fold under fold<k>/
with train.kfold). Last-epoch test metrics are the headline. The test split is
scored after the last epoch, and every `train.eval_every` epochs when that is
> 0; "best" picks among the scored epochs by test WAR and is optimistic, as in
much of the DFER literature.
"""
from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.cli import run_main
from bench.config import Config, list_methods, load_config
from bench.data.labels import EMOTIONS
from bench.engine import EvalResult, Trainer, test_due
from bench.progress import Reporter
from bench.runs import RunFolder, environment, save_checkpoint, write_table

__all__ = ["main", "run_training", "confusion_rows", "folds_for"]

SELECT_METRIC = "war"


def folds_for(cfg: Config) -> list[int | None]:
    """Folds to train: 1..5 with train.kfold, else the configured one (None: builder default)."""
    if cfg.train.kfold:
        return [1, 2, 3, 4, 5]
    return [cfg.data.options.get("fold")]


def confusion_rows(fold: int, which: str, ev: EvalResult) -> list[dict[str, Any]]:
    cm = ev.confusion
    return [{"fold": fold, "checkpoint": which, "true": EMOTIONS[i], "pred": EMOTIONS[j],
             "count": int(cm[i, j])} for i in range(cm.shape[0]) for j in range(cm.shape[1])]


def _metric_rows(fold: int, epoch: int, split: str, values: dict[str, float]) -> list[dict]:
    return [{"fold": fold, "epoch": epoch, "split": split, "metric": k, "value": float(v)}
            for k, v in values.items()]


def run_training(cfg: Config, *, out: str | Path, name: str, reporter: Reporter) -> Path:
    """Train every fold, writing the run folder as it goes; returns its final path."""
    folds = folds_for(cfg)
    trainer = Trainer(cfg, fold=folds[0])  # build data/model first: errors before any write
    reporter.info(f"training {cfg.method or 'custom config'}: model {cfg.model.name}/"
                  f"{cfg.model.preset}, loss {cfg.loss.name}, optim {cfg.optim.name}"
                  f"{'+SAM' if cfg.optim.sam else ''}, data {cfg.data.name}")
    run = RunFolder(out, name)
    try:
        run.write_yaml("config.yaml", cfg.to_dict())
        env = environment()
        run.write_json("env.json", env)
        rows: list[dict] = []
        conf: list[dict] = []
        t_start = time.perf_counter()
        for k, fold in enumerate(folds):
            if k > 0:
                trainer = Trainer(cfg, fold=fold)
            fold_id = int(fold or 1)  # data sets without folds count as fold 1
            ckdir = f"checkpoints/fold{fold_id}/" if cfg.train.kfold else "checkpoints/"
            reporter.info(f"fold {fold_id}: {len(trainer.train_set)} train / "
                          f"{len(trainer.test_set)} test clips, class counts {trainer.class_counts}")
            best: float = -np.inf
            for epoch in range(1, cfg.train.epochs + 1):
                with reporter.task(f"epoch {epoch}/{cfg.train.epochs}") as bar:
                    stats = trainer.train_epoch(progress=bar)
                rows += _metric_rows(fold_id, epoch, "train", stats)
                line = f"epoch {epoch}/{cfg.train.epochs}  loss {stats['loss']:.4f}  " \
                       f"{stats['seconds']:.1f}s"
                last = epoch == cfg.train.epochs
                if test_due(cfg, epoch):
                    ev = trainer.evaluate()
                    rows += _metric_rows(fold_id, epoch, "test", ev.metrics)
                    line += f"  test WAR {ev.metrics['war']:.3f}  UAR {ev.metrics['uar']:.3f}"
                    state = None
                    if ev.metrics[SELECT_METRIC] > best:
                        best = ev.metrics[SELECT_METRIC]
                        state = {**trainer.state_dict(), "metrics": ev.metrics}
                        save_checkpoint(run.file(ckdir + "best.pt"), state)
                        conf = [r for r in conf if not (r["fold"] == fold_id and r["checkpoint"] == "best")]
                        conf += confusion_rows(fold_id, "best", ev)
                    if last:
                        state = {**trainer.state_dict(), "metrics": ev.metrics}
                        save_checkpoint(run.file(ckdir + "last.pt"), state)
                        conf += confusion_rows(fold_id, "last", ev)
                    write_table(run.file("confusion.csv"), pd.DataFrame(conf))
                write_table(run.file("metrics.csv"), pd.DataFrame(rows))
                reporter.info(line)
        env["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        env["seconds"] = round(time.perf_counter() - t_start, 2)
        run.write_json("env.json", env)
        return run.finish()
    except BaseException:
        run.discard()
        raise


def summarize(metrics: pd.DataFrame) -> str:
    """Last-epoch test WAR/UAR (mean +- std over folds) and total training time."""
    test = metrics[metrics.split == "test"]
    last = test[test.epoch == test.groupby("fold").epoch.transform("max")]
    wide = last.pivot_table(index="fold", columns="metric", values="value")
    secs = metrics[(metrics.split == "train") & (metrics.metric == "seconds")].value.sum()
    parts = []
    for m in ("war", "uar"):
        v = wide[m]
        parts.append(f"{m.upper()} {v.mean():.3f}" + (f" +- {v.std():.3f}" if len(v) > 1 else ""))
    folds = f" over {len(wide)} folds" if len(wide) > 1 else ""
    return f"test {', '.join(parts)}{folds} (last epoch); training {secs:.0f}s"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="YAML config (see bench/methods/*.yaml for the keys)")
    ap.add_argument("--method", help=f"method preset: {', '.join(list_methods())}")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set optim.lr=1e-3 (repeatable)")
    ap.add_argument("--out", default="runs", help="folder for run folders (default: runs)")
    ap.add_argument("--name", help="run folder name (default: <method>-<timestamp>)")
    ap.add_argument("--quiet", action="store_true", help="print only the final summary")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, method=args.method, overrides=args.overrides)
    name = args.name or f"{cfg.method or 'custom'}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    reporter = Reporter(quiet=args.quiet)
    path = run_training(cfg, out=args.out, name=name, reporter=reporter)
    reporter.result(f"{summarize(pd.read_csv(path / 'metrics.csv'))}\nrun folder: {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
