"""Robustness suite for HDF and its baselines: style, temporal and camera shifts, class
imbalance and leave-one-source-out, scored as mPC / rPC / mCE and paired gains.

    import robustness
    df = robustness.evaluate({"x3d_ce": model}, test_set, shifts=["jpeg", "reverse"],
                             severities=[1, 3, 5])      # tidy: model, role, shift, severity, seed, metric, value
    robustness.SHIFTS.names()                           # every registered shift

`python -m robustness --run RUN_DIR` runs it on a sweep's models (see __main__).
"""
from __future__ import annotations

from robustness.scores import corruption_scores, gains, paired_bootstrap
from robustness.shifts import DEFAULT_SEVERITIES, DEFAULT_SHIFTS, KINDS, SHIFTS, apply_shift
from robustness.suite import SuiteResult, evaluate, run_suite

__all__ = ["evaluate", "run_suite", "SuiteResult", "SHIFTS", "KINDS", "DEFAULT_SHIFTS",
           "DEFAULT_SEVERITIES", "apply_shift", "corruption_scores", "gains", "paired_bootstrap"]
