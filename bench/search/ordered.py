"""Sweeps whose outcome does not depend on which concurrent trial reports first.

With c trials at a time, Tune's own searcher and ASHA see results in the order
processes happen to report them, so the same study can keep one trial on one
run and stop it on the next. Two rules make a sweep a function of its seed
(and of each trial's numbers, which are fixed by config, seed and threads):

    trial k (creation order, 0-based) starts only when trials 0 .. k-c have finished
        -> the searcher is told exactly those results, in trial order, just before it
           proposes trial k (and everything once the last trial has been proposed)
        -> at a rung (epoch grace * rf^i < max epochs), trial k is judged against
           the values trials 0 .. k-c reached at that rung, never against trials
           that merely happened to get there first

The price is a slot that idles while trial k-c is still running. Optuna's
records follow the truth: a trial stopped at a rung is told PRUNED (its
per-epoch values are its intermediate values), a diverged or failed one
FAIL, and only a trial that ran every epoch COMPLETE with its final value.
"""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

__all__ = ["OrderedSearcher", "OrderedHalving", "trial_index", "rungs"]


def trial_index(experiment_tag: str) -> int:
    """Tune's experiment tag "3_loss.tau=..." (1-based creation order) -> 2."""
    return int(str(experiment_tag).split("_", 1)[0]) - 1


def rungs(grace_period: int, reduction_factor: float, max_t: int) -> list[int]:
    """Epochs at which successive halving judges a trial: grace, grace*rf, ... below max_t."""
    out, t = [], float(grace_period)
    while t < max_t:
        out.append(int(round(t)))
        t *= reduction_factor
    return sorted(set(out))


class OrderedSearcher(Searcher):
    """Wraps a searcher (Ray's OptunaSearch) so that trial k sees only trials 0 .. k-c."""

    def __init__(self, searcher: Searcher, *, concurrency: int, total: int, epochs: int,
                 metrics: list[str]) -> None:
        self.searcher = searcher  # the attribute name Tune's save/restore walks
        self.concurrency = int(concurrency)
        self.total = int(total)
        self.epochs = int(epochs)
        self.metrics = list(metrics)
        self.index: dict[str, int] = {}  # trial id -> creation order
        self.outcome: dict[int, tuple[str, str, dict[str, float]]] = {}  # k -> (id, state, values)
        self.told: set[int] = set()
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return True  # the ordering rule already caps concurrency at c

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        k = len(self.index)
        if k >= self.total:
            return Searcher.FINISHED
        settled = k - self.concurrency  # trials 0 .. settled must have finished
        if any(i not in self.outcome for i in range(settled + 1)):
            return None  # Tune asks again after the next event
        self._tell(range(settled + 1))
        config = self.searcher.suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        self.index[trial_id] = k
        if k == self.total - 1:
            self._tell(sorted(self.outcome))
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if not result.get("diverged"):
            self.searcher.on_trial_result(trial_id, result)  # intermediate values only

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        k = self.index.get(trial_id)
        if k is None or k in self.outcome:
            return
        result = result or {}
        values = {m: result.get(m) for m in self.metrics}
        finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values.values())
        if error or result.get("diverged") or not finite:
            state = "fail"
        elif int(result.get("epoch", 0)) < self.epochs:
            state = "pruned"
        else:
            state = "complete"
        last = {m: float(v) for m, v in values.items()} if finite else {}
        if state == "pruned":  # Tune withholds the stopping epoch's result from the searcher
            last.update(epoch=int(result["epoch"]),
                        training_iteration=int(result.get("training_iteration", result["epoch"])))
        self.outcome[k] = (trial_id, state, last)
        if len(self.index) >= self.total:  # nothing left to propose: order no longer matters
            self._tell(sorted(self.outcome))

    def _tell(self, ks) -> None:
        for k in ks:
            if k in self.told:
                continue
            trial_id, state, values = self.outcome[k]
            if state == "complete":
                self.searcher.on_trial_complete(trial_id, result=values)
            elif state == "pruned":  # its last value: what Optuna ranks pruned trials by
                self.searcher.on_trial_result(trial_id, values)
                self.searcher.on_trial_complete(trial_id, result=None)
            else:  # no value: OptunaSearch tells PRUNED, or FAIL with error=True
                self.searcher.on_trial_complete(trial_id, result=None, error=state == "fail")
            self.told.add(k)

    def get_state(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["searcher"]
        return copy.deepcopy(state)

    def set_state(self, state: dict[str, Any]) -> None:
        state["outcome"] = {int(k): tuple(v) for k, v in state["outcome"].items()}
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


class OrderedHalving(FIFOScheduler):
    """Asynchronous successive halving judged against earlier trials only.

    At a rung, trial k stops when its value is below the (1 - 1/rf) quantile of
    the values trials 0 .. k-c reached at that rung (Ray's ASHA rule, with a
    fixed set of peers). No peer yet: it goes on. The rung values live in a
    small JSON file beside the experiment, so a resumed sweep judges the same.
    """

    def __init__(self, *, metric: str, mode: str, max_t: int, grace_period: int,
                 reduction_factor: float, concurrency: int, state_path: str | Path) -> None:
        super().__init__()
        self._metric, self._mode = metric, mode  # TrialScheduler's read-only properties
        self.sign = 1.0 if mode == "max" else -1.0
        self.rungs = rungs(grace_period, reduction_factor, max_t)
        self.rf = float(reduction_factor)
        self.concurrency = int(concurrency)
        self.state_path = str(state_path)
        self._values: dict[str, dict[str, float]] | None = None  # rung -> {k: signed value}

    def _records(self) -> dict[str, dict[str, float]]:
        if self._values is None:
            p = Path(self.state_path)
            self._values = json.loads(p.read_text()) if p.is_file() else {}
        return self._values

    def _save(self) -> None:
        p = Path(self.state_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self._records()))
        os.replace(tmp, p)

    def decide(self, k: int, epoch: int, value: float) -> str:
        """CONTINUE or STOP for trial k reporting `value` at `epoch` (pure but for the record)."""
        if epoch not in self.rungs or not math.isfinite(value):
            return TrialScheduler.CONTINUE
        rung = self._records().setdefault(str(epoch), {})
        if str(k) in rung:  # judged before a restart: the same verdict again
            own = rung[str(k)]
        else:
            own = self.sign * value
            rung[str(k)] = own
            self._save()
        peers = [v for j, v in rung.items() if int(j) <= k - self.concurrency]
        if not peers:
            return TrialScheduler.CONTINUE
        cutoff = float(np.percentile(peers, (1 - 1 / self.rf) * 100))
        return TrialScheduler.STOP if own < cutoff else TrialScheduler.CONTINUE

    def on_trial_result(self, tune_controller, trial, result: dict[str, Any]) -> str:
        if result.get("diverged") or self._metric not in result or "epoch" not in result:
            return TrialScheduler.CONTINUE
        return self.decide(trial_index(trial.experiment_tag), int(result["epoch"]),
                           float(result[self._metric]))

    def debug_string(self) -> str:
        return f"OrderedHalving: rungs {self.rungs}, judged against trials <= k-{self.concurrency}"
