"""Mid-epoch checkpoints of running trials when the SLURM job is about to end.

    slurm/sweep.sh (USR1 / TERM) ──> touches DIR/STOP, waits for every DIR/<trial>.running
        to have a DIR/<trial>.pt newer than STOP, then stops the driver
    trial: Trainer.train_epoch(should_stop=requested) ──> stops at a step boundary
        ──> save(): DIR/<trial>.pt (model, optimizer, schedule, epoch, batch, RNG) ──> idles
    requeued job: trial restored from its last epoch's Tune checkpoint ──> load() finds a
        newer DIR/<trial>.pt ──> continues from that batch; its next report says resumed_batch

DIR is $HDF_BENCH_PREEMPT_DIR (sweep.sh sets it next to the run folder, on shared
storage). Nothing here reports to Tune: a mid-epoch save is no iteration, so ASHA's
milestones (which count reports, one per epoch) are unchanged.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["PREEMPT_ENV", "Preempt"]

PREEMPT_ENV = "HDF_BENCH_PREEMPT_DIR"


class Preempt:
    """One trial's side of the protocol above (files in `folder`, named by `trial_id`)."""

    def __init__(self, folder: Path, trial_id: str) -> None:
        self.folder = Path(folder)
        self.stop_file = self.folder / "STOP"
        self.state_file = self.folder / f"{trial_id}.pt"
        self.running_file = self.folder / f"{trial_id}.running"

    @classmethod
    def from_env(cls, trial_id: str) -> "Preempt | None":
        folder = os.environ.get(PREEMPT_ENV)
        return cls(Path(folder), trial_id) if folder else None

    def requested(self) -> bool:
        """Asked after every step: one stat() of a file on the shared folder."""
        return self.stop_file.exists()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.running_file.touch()

    def done(self) -> None:
        self.running_file.unlink(missing_ok=True)

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.state_file)  # sweep.sh sees a whole file or none

    def newer_state(self, state: dict[str, Any] | None) -> dict[str, Any] | None:
        """The saved mid-epoch state if it is ahead of `state` (the last epoch's), else None."""
        if not self.state_file.is_file():
            return None
        mid = torch.load(self.state_file, map_location="cpu", weights_only=True)
        have = (0, 0) if state is None else (int(state["epoch"]), int(state.get("batch", 0)))
        return mid if (int(mid["epoch"]), int(mid.get("batch", 0))) > have else None

    def clear(self) -> None:
        """After the next epoch's report: that checkpoint supersedes the mid-epoch one."""
        self.state_file.unlink(missing_ok=True)

    @staticmethod
    def idle(alive: Callable[[], bool] = lambda: True) -> None:
        """Wait for the driver to end this trial (it stops the whole experiment)."""
        while alive():
            time.sleep(1)
