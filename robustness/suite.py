"""The robustness suite: every model on the same corrupted clips, scored into one tidy table.

    dataset clips (uint8) -> shift(clip, severity, rng(shift, severity, seed, clip))
        -> uint8 batch (B, T, H, W, 3) (pinned for cuda) -> device -> model_input
        -> (B, 3, T, H, W) float32, normalised on the device -> every model -> argmax
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

from bench.data.clips import model_input
from bench.data.labels import EMOTIONS
from bench.metrics import score
from robustness.imbalance import PROFILES, RATIOS, rescore_long_tail
from robustness.shifts import (DEFAULT_SEVERITIES, DEFAULT_SHIFTS, SHIFTS, apply_shift,
                               check_severity, shift_rng)

__all__ = ["evaluate", "run_suite", "predict_conditions", "score_predictions", "SuiteResult",
           "RESULT_COLUMNS", "PREDICTION_COLUMNS"]

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


def _uint8_batch(frames: Sequence[np.ndarray], pin: bool) -> torch.Tensor:
    """Clips (T, H, W, 3) uint8 stacked into one (B, T, H, W, 3) uint8 tensor."""
    x = torch.empty((len(frames), *frames[0].shape), dtype=torch.uint8, pin_memory=pin)
    np.stack(frames, out=x.numpy())
    return x


@torch.inference_mode()
def predict_conditions(models: Mapping[str, torch.nn.Module], dataset,
                       conditions: Sequence[tuple[str, int, int]], *, batch_size: int = 32,
                       device: str | torch.device = "cpu", progress: Progress | None = None
                       ) -> tuple[pd.DataFrame, dict[str, float]]:
    """PREDICTION_COLUMNS rows for every model x (shift, severity, seed) condition.

    `dataset` is any object with `len`, `get_frames(i)` (uint8 (T, H, W, 3)),
    `labels` and `records[i].clip_id` (a bench ClipDataset).
    """
    device = torch.device(device)
    pin = device.type == "cuda"  # pinned host memory: the copy to the GPU runs asynchronously
    for m in models.values():
        m.eval().to(device)
    n = len(dataset)
    clean = [dataset.get_frames(i) for i in range(n)]  # each (T, H, W, 3) uint8
    y_true = np.asarray(dataset.labels)
    clip_ids = [str(r.clip_id) for r in dataset.records]
    frames_out = []
    t_corrupt = t_model = 0.0
    t_start = time.perf_counter()
    for ci, (shift, sev, seed) in enumerate(conditions):
        out = {m: np.empty(n, dtype=np.int64) for m in models}
        for a in range(0, n, batch_size):
            t0 = time.perf_counter()
            frames = [clean[i] if shift == "clean" else
                      apply_shift(shift, clean[i], sev, shift_rng(shift, sev, seed, i))
                      for i in range(a, min(a + batch_size, n))]
            x = model_input(_uint8_batch(frames, pin), device)  # (B, 3, T, H, W) float32
            t1 = time.perf_counter()
            for name, model in models.items():
                logits, _ = model(x)  # (B, K)
                out[name][a:a + len(frames)] = logits.argmax(1).cpu().numpy()
            t_model += time.perf_counter() - t1
            t_corrupt += t1 - t0
        for name in models:
            frames_out.append(pd.DataFrame({"model": name, "shift": shift, "severity": sev,
                                            "seed": seed, "clip": clip_ids, "y_true": y_true,
                                            "y_pred": out[name]}))
        if progress:
            progress(ci + 1, len(conditions))
    predictions = pd.concat(frames_out, ignore_index=True)[PREDICTION_COLUMNS] if frames_out \
        else pd.DataFrame(columns=PREDICTION_COLUMNS)
    return predictions, {"corrupt": t_corrupt, "model": t_model,
                         "total": time.perf_counter() - t_start, "clips": float(n),
                         "conditions": float(len(conditions))}


def score_predictions(predictions: pd.DataFrame, roles: Mapping[str, str], *,
                      imbalance_ratios: Sequence[int] = RATIOS, seeds: Sequence[int] = (0,)
                      ) -> pd.DataFrame:
    """The tidy results table (RESULT_COLUMNS) from predictions: WAR/UAR per condition,
    plus long-tail re-scoring of the clean predictions (severity = imbalance ratio)."""
    rows = []
    for (name, shift, sev, seed), g in predictions.groupby(["model", "shift", "severity", "seed"],
                                                           sort=False):
        sc = score(g.y_true.to_numpy(), g.y_pred.to_numpy(), EMOTIONS)
        rows += [{"model": name, "role": roles.get(name, "model"), "shift": shift,
                  "severity": int(sev), "seed": int(seed), "metric": metric, "value": sc[metric]}
                 for metric in ("war", "uar")]
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    clean = predictions[predictions["shift"] == "clean"]
    if imbalance_ratios and len(clean):
        y_true = None
        clean_preds = {}
        for name, g in clean.groupby("model", sort=False):
            y_true = g.y_true.to_numpy()
            clean_preds[name] = g.y_pred.to_numpy()
        lt = rescore_long_tail(y_true, clean_preds, len(EMOTIONS), ratios=imbalance_ratios,
                               profiles=PROFILES, seeds=seeds)
        lt.insert(1, "role", lt["model"].map(lambda m: roles.get(m, "model")))
        results = pd.concat([results, lt], ignore_index=True)
    return results.astype({"severity": "int64", "seed": "int64", "value": "float64"})


def run_suite(models: Mapping[str, torch.nn.Module], dataset, *,
              shifts: Sequence[str] = DEFAULT_SHIFTS, severities: Sequence[int] = DEFAULT_SEVERITIES,
              seeds: Sequence[int] = (0,), roles: Mapping[str, str] | None = None,
              imbalance_ratios: Sequence[int] = RATIOS, batch_size: int = 32,
              device: str | torch.device = "cpu", progress: Progress | None = None) -> SuiteResult:
    """Predictions and the tidy results table for every model x condition.

    `roles` maps model name to "hdf"/"baseline" (default "model"). Long-tail
    re-scoring of the clean predictions adds rows "longtail_exp"/"longtail_step"
    with severity = imbalance ratio; pass `imbalance_ratios=()` to skip them.
    """
    conds = _conditions(shifts, severities, seeds)
    predictions, seconds = predict_conditions(models, dataset, conds, batch_size=batch_size,
                                              device=device, progress=progress)
    roles = {m: (roles or {}).get(m, "model") for m in models}
    results = score_predictions(predictions, roles, imbalance_ratios=imbalance_ratios, seeds=seeds)
    return SuiteResult(results, predictions, seconds)


def evaluate(models: Mapping[str, torch.nn.Module], dataset, *,
             shifts: Sequence[str] = DEFAULT_SHIFTS, severities: Sequence[int] = DEFAULT_SEVERITIES,
             seeds: Sequence[int] = (0,), **kwargs) -> pd.DataFrame:
    """RobustBench-style entry point: the tidy results table (see RESULT_COLUMNS).

        df = robustness.evaluate({"x3d_ce": model}, test_set, shifts=["jpeg"], severities=[3])
        df.query("metric == 'war'").pivot_table(index="shift", columns="severity", values="value")
    """
    return run_suite(models, dataset, shifts=shifts, severities=severities, seeds=seeds,
                     **kwargs).results
