"""Mid-epoch checkpoints: a Trainer stopped at a step boundary and resumed from its state
dict ends bit-identical to one that never stopped; the trial side's file protocol."""
from __future__ import annotations

import io

import pytest
import torch

from bench.engine import Trainer
from bench.search.preempt import Preempt
from bench.search.spaces import load_study


@pytest.fixture(scope="module")
def cfg():
    from bench.config import Config, deep_merge

    c = load_study("search_spaces/smoke.yaml").base_config("x3d_ce")
    return Config.from_dict(deep_merge(c.to_dict(), {"train": {"epochs": 1}}))


def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_resume_mid_epoch_equals_an_uninterrupted_run(cfg):
    whole = Trainer(cfg)
    steps = len(whole.train_loader)
    assert steps >= 3, "the test needs an epoch of several steps"
    never = []  # asked after every step but the last, never stopping
    assert whole.train_epoch(should_stop=lambda: never.append(1) and False) is not None
    assert len(never) == steps - 1 and whole.epoch == 1

    stopped = Trainer(cfg)
    asked = []
    assert stopped.train_epoch(should_stop=lambda: asked.append(1) or len(asked) == 2) is None
    assert (stopped.epoch, stopped.batch) == (0, 2)
    buf = io.BytesIO()
    torch.save(stopped.state_dict(), buf)
    buf.seek(0)
    resumed = Trainer(cfg)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert resumed.batch == 2
    stats = resumed.train_epoch()
    assert stats is not None and (resumed.epoch, resumed.batch) == (1, 0)
    for a, b in zip(_params(whole), _params(resumed)):
        assert torch.equal(a, b)
    assert resumed.scheduler.state_dict()["last_epoch"] == whole.scheduler.state_dict()["last_epoch"]


def test_preempt_files(tmp_path):
    p = Preempt(tmp_path / "pre", "abc_00001")
    p.start()
    assert (tmp_path / "pre" / "abc_00001.running").is_file() and not p.requested()
    (tmp_path / "pre" / "STOP").touch()
    assert p.requested()
    assert p.newer_state(None) is None
    p.save({"epoch": 1, "batch": 3, "w": torch.ones(2)})
    assert p.newer_state(None)["batch"] == 3
    assert p.newer_state({"epoch": 1}) is not None            # epoch 1 + 3 batches > epoch 1
    assert p.newer_state({"epoch": 2, "batch": 0}) is None    # a later epoch's checkpoint wins
    p.clear()
    p.done()
    assert sorted(x.name for x in (tmp_path / "pre").iterdir()) == ["STOP"]
