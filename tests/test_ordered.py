"""The ordering rule: what the searcher is told and which trials stop do not depend on report order."""
from __future__ import annotations

import itertools

import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from bench.search.ordered import OrderedHalving, OrderedSearcher, rungs, trial_index


class _Recorder(Searcher):
    """A searcher that records what it is told and proposes the number of results it knows."""

    def __init__(self) -> None:
        super().__init__(metric="val_war", mode="max")
        self.log: list[tuple] = []
        self.known: list[str] = []  # trials told, in the order told

    def suggest(self, trial_id):
        self.log.append(("suggest", trial_id, tuple(self.known)))
        return {"x": len(self.known)}

    def on_trial_result(self, trial_id, result):
        self.log.append(("result", trial_id, result["epoch"]))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.known.append(trial_id)
        state = "fail" if error else ("pruned" if result is None else "complete")
        self.log.append(("complete", trial_id, state))


def _run(finish_order: list[int], c: int = 2, total: int = 4) -> list[tuple]:
    """Start trials as the rule allows; finish running ones in `finish_order` (by trial index)."""
    inner = _Recorder()
    s = OrderedSearcher(inner, concurrency=c, total=total, epochs=2, metrics=["val_war"])
    running: list[int] = []
    started = 0
    order = list(finish_order)

    def fill() -> None:
        nonlocal started
        while started < total:
            if s.suggest(f"id{started}") is None:
                return
            running.append(started)
            started += 1

    fill()
    while running:
        k = next(k for k in order if k in running)
        order.remove(k)
        running.remove(k)
        result = {"epoch": 1 if k == 1 else 2, "val_war": 0.1 * k, "diverged": 0}
        s.on_trial_complete(f"id{k}", result=result)
        fill()
    return inner.log


def test_the_searcher_sees_the_same_history_whatever_order_trials_finish_in():
    logs = [_run(list(p)) for p in itertools.permutations(range(4))]
    # what each proposal was made knowing: trial k knows trials 0..k-2, in trial order
    seen = {tuple(e for e in log if e[0] == "suggest") for log in logs}
    assert seen == {(("suggest", "id0", ()), ("suggest", "id1", ()), ("suggest", "id2", ("id0",)),
                     ("suggest", "id3", ("id0", "id1")))}
    for log in logs:
        states = {e[1]: e[2] for e in log if e[0] == "complete"}
        assert states == {"id0": "complete", "id1": "pruned", "id2": "complete", "id3": "complete"}
        # the pruned trial's stopping epoch reaches the searcher before it is told PRUNED
        i = log.index(("complete", "id1", "pruned"))
        assert log[i - 1] == ("result", "id1", 1)


def test_failed_and_diverged_trials_are_told_as_fail():
    inner = _Recorder()
    s = OrderedSearcher(inner, concurrency=1, total=2, epochs=3, metrics=["val_war"])
    s.suggest("a")
    s.on_trial_complete("a", result={"epoch": 2, "val_war": float("nan"), "diverged": 1})
    s.suggest("b")
    s.on_trial_complete("b", error=True)
    assert [e[2] for e in inner.log if e[0] == "complete"] == ["fail", "fail"]


def test_state_round_trips_for_a_resumed_sweep():
    inner = _Recorder()
    s = OrderedSearcher(inner, concurrency=2, total=4, epochs=2, metrics=["val_war"])
    s.suggest("a"), s.suggest("b")
    s.on_trial_complete("b", result={"epoch": 2, "val_war": 0.3})
    again = OrderedSearcher(_Recorder(), concurrency=2, total=4, epochs=2, metrics=["val_war"])
    again.set_state(s.get_state())
    assert again.suggest("c") is None  # trial 0 has not finished: still waits
    again.on_trial_complete("a", result={"epoch": 2, "val_war": 0.2})
    assert again.suggest("c") == {"x": 1}


def test_halving_judges_against_earlier_trials_only(tmp_path):
    def make():
        return OrderedHalving(metric="val_war", mode="max", max_t=4, grace_period=1,
                              reduction_factor=2, concurrency=2, state_path=tmp_path / "r.json")

    h = make()
    assert h.rungs == [1, 2] and rungs(3, 2, 8) == [3, 6] and trial_index("12_x=1") == 11
    # trial 1 reports first with a low value: no earlier trial (0..-1) to compare with
    assert h.decide(1, 1, 0.1) == TrialScheduler.CONTINUE
    assert h.decide(0, 1, 0.5) == TrialScheduler.CONTINUE
    # trial 2 is judged against trial 0 only (not trial 1, which may still be running)
    assert h.decide(2, 1, 0.3) == TrialScheduler.STOP
    # trial 3 against trials 0 and 1 at rung 1: median of 0.5 and 0.1 is 0.3
    assert h.decide(3, 1, 0.35) == TrialScheduler.CONTINUE
    assert h.decide(3, 3, 0.0) == TrialScheduler.CONTINUE  # not a rung
    # a resumed sweep re-reads the rung values and judges the same
    again = make()
    assert again.decide(2, 1, 0.3) == TrialScheduler.STOP


@pytest.mark.parametrize("mode, values, expect", [("max", (0.5, 0.4), "STOP"),
                                                  ("min", (0.5, 0.4), "CONTINUE")])
def test_halving_follows_the_objective_direction(tmp_path, mode, values, expect):
    h = OrderedHalving(metric="m", mode=mode, max_t=4, grace_period=1, reduction_factor=2,
                       concurrency=1, state_path=tmp_path / "r.json")
    h.decide(0, 1, values[0])
    assert h.decide(1, 1, values[1]) == getattr(TrialScheduler, expect)
