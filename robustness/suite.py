"""The robustness suite: every model on the same corrupted clips, scored into one tidy table.

    dataset clips (uint8) -> shift(clip, severity, rng(shift, severity, seed, clip))
        -> to_tensor -> batch (B, 3, T, H, W) -> every model -> argmax
        -> predictions (model, shift, severity, seed, clip, y_true, y_pred)
        -> results (model, role, shift, severity, seed, metric, value)

Each clip is corrupted once per (shift, severity, seed) and the same tensor is
fed to every model, so model comparisons are paired. Clean rows have shift
"clean", severity 0, seed 0. No file I/O here: `robustness.runs` writes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from bench.data.clips import to_tensor
from bench.data.labels import EMOTIONS
from bench.metrics import score
from robustness.imbalance import PROFILES, RATIOS, rescore_long_tail
from robustness.shifts import (DEFAULT_SEVERITIES, DEFAULT_SHIFTS, SHIFTS, apply_shift,
                               check_severity, shift_rng)

__all__ = ["evaluate", "run_suite", "SuiteResult", "RESULT_COLUMNS", "PREDICTION_COLUMNS"]

RESULT_COLUMNS = ["model", "role", "shift", "severity", "seed", "metric", "value"]
PREDICTION_COLUMNS = ["model", "shift", "severity", "seed", "clip", "y_true", "y_pred"]
Progress = Callable[[int, int], None]  # (conditions done, conditions total)


@dataclass
class SuiteResult:
    results: pd.DataFrame  # RESULT_COLUMNS
    predictions: pd.DataFrame  # PREDICTION_COLUMNS
    seconds: dict[str, float] = field(default_factory=dict)  # corrupt, model, total


def _conditions(shifts: Sequence[str], severities: Sequence[int],
                seeds: Sequence[int]) -> list[tuple[str, int, int]]:
    for s in shifts:
        SHIFTS.get(s)  # unknown names fail before any work
    sev = [check_severity(v) for v in severities]
    return [("clean", 0, 0)] + [(s, v, int(seed)) for s in shifts for v in sev for seed in seeds]


@torch.inference_mode()
def run_suite(models: Mapping[str, torch.nn.Module], dataset, *,
              shifts: Sequence[str] = DEFAULT_SHIFTS, severities: Sequence[int] = DEFAULT_SEVERITIES,
              seeds: Sequence[int] = (0,), roles: Mapping[str, str] | None = None,
              imbalance_ratios: Sequence[int] = RATIOS, batch_size: int = 32,
              device: str | torch.device = "cpu", progress: Progress | None = None) -> SuiteResult:
    """Predictions and the tidy results table for every model x condition.

    `dataset` is any object with `len`, `get_frames(i)` (uint8 (T, H, W, 3)),
    `labels` and `records[i].clip_id` (a bench ClipDataset). `roles` maps model
    name to "hdf"/"baseline" (default "model"). Long-tail re-scoring of the
    clean predictions adds rows "longtail_exp"/"longtail_step" with severity =
    imbalance ratio; pass `imbalance_ratios=()` to skip them.
    """
    device = torch.device(device)
    roles = {m: (roles or {}).get(m, "model") for m in models}
    conds = _conditions(shifts, severities, seeds)
    for m in models.values():
        m.eval().to(device)
    n = len(dataset)
    clean = [dataset.get_frames(i) for i in range(n)]  # each (T, H, W, 3) uint8
    y_true = np.asarray(dataset.labels)
    clip_ids = [str(r.clip_id) for r in dataset.records]
    preds: dict[tuple[str, str, int, int], np.ndarray] = {}
    t_corrupt = t_model = 0.0
    t_start = time.perf_counter()
    for ci, (shift, sev, seed) in enumerate(conds):
        out = {m: np.empty(n, dtype=np.int64) for m in models}
        for a in range(0, n, batch_size):
            t0 = time.perf_counter()
            frames = [clean[i] if shift == "clean" else
                      apply_shift(shift, clean[i], sev, shift_rng(shift, sev, seed, i))
                      for i in range(a, min(a + batch_size, n))]
            x = torch.stack([to_tensor(f) for f in frames]).to(device)  # (B, 3, T, H, W)
            t1 = time.perf_counter()
            for name, model in models.items():
                logits, _ = model(x)  # (B, K)
                out[name][a:a + len(frames)] = logits.argmax(1).cpu().numpy()
            t_model += time.perf_counter() - t1
            t_corrupt += t1 - t0
        for name in models:
            preds[(name, shift, sev, seed)] = out[name]
        if progress:
            progress(ci + 1, len(conds))
    total = time.perf_counter() - t_start

    rows, pred_frames = [], []
    for (name, shift, sev, seed), p in preds.items():
        sc = score(y_true, p, EMOTIONS)
        rows += [{"model": name, "role": roles[name], "shift": shift, "severity": sev,
                  "seed": seed, "metric": metric, "value": sc[metric]} for metric in ("war", "uar")]
        pred_frames.append(pd.DataFrame({"model": name, "shift": shift, "severity": sev,
                                         "seed": seed, "clip": clip_ids, "y_true": y_true,
                                         "y_pred": p}))
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if imbalance_ratios:
        clean_preds = {m: preds[(m, "clean", 0, 0)] for m in models}
        lt = rescore_long_tail(y_true, clean_preds, len(EMOTIONS), ratios=imbalance_ratios,
                               profiles=PROFILES, seeds=seeds)
        lt.insert(1, "role", lt["model"].map(roles))
        results = pd.concat([results, lt], ignore_index=True)
    results = results.astype({"severity": "int64", "seed": "int64", "value": "float64"})
    predictions = pd.concat(pred_frames, ignore_index=True)[PREDICTION_COLUMNS] if pred_frames \
        else pd.DataFrame(columns=PREDICTION_COLUMNS)
    return SuiteResult(results, predictions,
                       {"corrupt": t_corrupt, "model": t_model, "total": total,
                        "clips": float(n), "conditions": float(len(conds))})


def evaluate(models: Mapping[str, torch.nn.Module], dataset, *,
             shifts: Sequence[str] = DEFAULT_SHIFTS, severities: Sequence[int] = DEFAULT_SEVERITIES,
             seeds: Sequence[int] = (0,), **kwargs) -> pd.DataFrame:
    """RobustBench-style entry point: the tidy results table (see RESULT_COLUMNS).

        df = robustness.evaluate({"x3d_ce": model}, test_set, shifts=["jpeg"], severities=[3])
        df.query("metric == 'war'").pivot_table(index="shift", columns="severity", values="value")
    """
    return run_suite(models, dataset, shifts=shifts, severities=severities, seeds=seeds,
                     **kwargs).results
