"""The suite on a run folder, as a library call: models.yaml in, tables and verdicts out.

    stress_test(RUN_DIR, SuiteOptions(...)) -> SuiteOutput     (reads checkpoints, computes)
    write_suite(RUN_DIR, output)            -> RUN_DIR/robustness/   (the only writing)

`python -m robustness` and the sweep and comparison commands all go through
these two functions, so the same run folder gives the same tables whichever
of them ran the suite.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from bench.engine import cuda_count, resolve_device
from bench.runfolder import GAIN, PREDICTIONS, RESULTS, RESULTS_CSV, SCORES
from robustness import runs
from robustness.array import run_on_launcher
from robustness.device import DeviceChoice, array_device, choose_device
from robustness.imbalance import RATIOS
from robustness.scores import corruption_scores, gains
from robustness.shifts import DEFAULT_SEVERITIES, DEFAULT_SHIFTS
from robustness.suite import SuiteResult, run_suite, score_predictions
from robustness.verdict import Verdict, verdicts

__all__ = ["SuiteOptions", "SuiteOutput", "stress_test", "write_suite"]


@dataclass(frozen=True)
class SuiteOptions:
    shifts: tuple[str, ...] = tuple(DEFAULT_SHIFTS)
    severities: tuple[int, ...] = tuple(DEFAULT_SEVERITIES)
    seeds: tuple[int, ...] = (0,)  # corruption seeds
    baseline: str | None = None  # the mCE reference (default: the first baseline)
    bootstrap: int = 1000
    imbalance: tuple[int, ...] = tuple(RATIOS)
    limit: int | None = None
    batch_size: int = 32
    device: str | None = None  # None: the device the models were trained on (robustness.device)
    launcher: str = "local"
    slurm: Any = None  # bench.launch.slurm options for launcher "slurm"
    allow_outside: bool = False  # models.yaml paths may leave the run folder


@dataclass
class SuiteOutput:
    suite: SuiteResult
    scores: pd.DataFrame
    gain: pd.DataFrame
    verdicts: list[Verdict]
    baseline: str | None
    info: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """File name -> table, as RUN_DIR/robustness/ holds them."""
        return {RESULTS: self.suite.results, RESULTS_CSV: self.suite.results,
                PREDICTIONS: self.suite.predictions, SCORES: self.scores, GAIN: self.gain}


def stress_test(run_dir: str | Path, opts: SuiteOptions, *, progress: Callable | None = None,
                log: Callable[[str], None] = lambda m: None,
                warn: Callable[[str], None] | None = None) -> SuiteOutput:
    """Every model of the run folder under every condition, scored, paired and judged.

    The device is opts.device, else the one the models were trained on
    (robustness.device); `warn` gets the one line saying when that could not be kept.
    """
    warn = warn or (lambda m: log(f"warning: {m}"))
    entries = runs.read_manifest(run_dir, allow_outside=opts.allow_outside)
    baseline = runs.pick_baseline(entries, opts.baseline)
    checkpoints = runs.read_checkpoints(entries)
    trained = runs.trained_devices(checkpoints)
    roles = {e.name: e.role for e in entries}
    groups = {e.name: (e.group, e.seed) for e in entries}
    if opts.launcher == "local":
        choice = choose_device(list(trained.values()), cuda=cuda_count(), requested=opts.device)
        device = resolve_device(choice.name)
        _warn(choice, warn)
        loaded = runs.load_models(entries, device, checkpoints)
        del checkpoints
        used: dict[str, Any] = {"device": str(device)}
        dataset = runs.test_set({k: cfg for k, (cfg, _) in loaded.items()})
        if opts.limit:
            dataset.records = dataset.records[:opts.limit]
        log(f"{len(entries)} models x {len(opts.shifts)} shifts x {len(opts.severities)} "
            f"severities x {len(opts.seeds)} seeds on {len(dataset)} clips ({device})")
        suite = run_suite({k: m for k, (_, m) in loaded.items()}, dataset, shifts=opts.shifts,
                          severities=opts.severities, seeds=opts.seeds, roles=roles,
                          imbalance_ratios=opts.imbalance, batch_size=opts.batch_size,
                          device=device, progress=progress)
    else:  # a job array: one task per model x shift, merged and scored here
        del checkpoints
        choice, gpus = array_device(list(trained.values()), gpus=opts.slurm.gpus,
                                    requested=opts.device)
        _warn(choice, warn)
        used = {"device": choice.name, "gpus_per_task": gpus}
        t0 = time.perf_counter()
        log(f"submitting {len(entries) * (len(opts.shifts) + 1)} array tasks to SLURM "
            f"({choice.name}, {gpus} GPU{'' if gpus == 1 else 's'} per task)")
        preds = run_on_launcher(Path(run_dir), [e.name for e in entries], opts.shifts,
                                opts.severities, opts.seeds, batch_size=opts.batch_size,
                                limit=opts.limit, threads=opts.slurm.cpus,
                                launcher=opts.launcher, options=replace(opts.slurm, gpus=gpus),
                                device=choice.name)
        suite = SuiteResult(score_predictions(preds, roles, imbalance_ratios=opts.imbalance,
                                              seeds=opts.seeds),
                            preds, {"total": time.perf_counter() - t0})
    scores = corruption_scores(suite.results, opts.shifts, baseline)
    gain = gains(suite.predictions, roles, opts.shifts, groups=groups, n_boot=opts.bootstrap,
                 seed=opts.seeds[0])
    clean = suite.results[(suite.results["shift"] == "clean") & (suite.results.metric == "war")]
    clips = int(suite.predictions.loc[suite.predictions["shift"] == "clean", "clip"].nunique())
    judged = verdicts(gain, dict(zip(clean.model, clean.value)), groups, clips=clips,
                      prior=runs.prior_spread(run_dir))
    info = {"shifts": list(opts.shifts), "severities": list(opts.severities),
            "seeds": list(opts.seeds), "baseline": baseline, "bootstrap": opts.bootstrap,
            "imbalance_ratios": list(opts.imbalance), "clips": clips,
            "models": [e.name for e in entries], "seconds": suite.seconds,
            "torch_threads": torch.get_num_threads(), **used, "trained_devices": trained,
            "device_note": choice.note}
    return SuiteOutput(suite, scores, gain, judged, baseline, info)


def _warn(choice: DeviceChoice, warn: Callable[[str], None]) -> None:
    if choice.note:
        warn(choice.note)


def write_suite(run_dir: str | Path, out: SuiteOutput, info: dict[str, Any] | None = None
                ) -> Path:
    """RUN_DIR/robustness/ (tables, suite.json, verdict.json), written all or nothing."""
    return runs.write_outputs(run_dir, out.tables(), {**out.info, **(info or {})},
                              verdicts=[v.to_dict() for v in out.verdicts])
