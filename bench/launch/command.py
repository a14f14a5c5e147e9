"""Run a whole CLI as one SLURM job, and check a Ray address before using it.

`submit_command` is what `python -m bench.tune ... --launcher slurm` uses: the
job runs the same `main(argv)` on a compute node. When SLURM requeues it (time
limit via submitit's checkpoint, preemption, `scontrol requeue`), the restarted
job runs `resume_argv` instead, so an interrupted study is finished, not redone.
"""
from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from typing import Any, Sequence

from bench.errors import ConfigError
from bench.launch.slurm import SlurmOptions, check_cluster, submit

__all__ = ["ResumableCommand", "submit_command", "check_ray_address"]


class ResumableCommand:
    """`target(argv)` in the job; `target(resume_argv)` once the job restarted and state exists.

    target is "module:function" so the pickle holds a name, not code.
    submitit calls `checkpoint` on its pre-timeout signal and requeues the job.
    """

    def __init__(self, target: str, argv: Sequence[str], resume_argv: Sequence[str],
                 state_path: str | Path) -> None:
        self.target, self.argv, self.resume_argv = target, list(argv), list(resume_argv)
        self.state_path = str(state_path)

    def restarted(self) -> bool:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0 and Path(self.state_path).exists()

    def __call__(self) -> Any:
        module, _, name = self.target.partition(":")
        main = getattr(importlib.import_module(module), name)
        code = main(self.resume_argv if self.restarted() else self.argv)
        if isinstance(code, int) and code:
            raise SystemExit(code)
        return code

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(
            ResumableCommand(self.target, self.resume_argv, self.resume_argv, self.state_path))


def submit_command(target: str, argv: Sequence[str], resume_argv: Sequence[str],
                   state_path: str | Path, options: SlurmOptions) -> Any:
    """Submit one job running the CLI; returns the submitit Job (job.job_id, job.paths)."""
    check_cluster(options)
    return submit(ResumableCommand(target, argv, resume_argv, state_path), options=options)


def check_ray_address(address: str, timeout_s: float = 5.0) -> tuple[str, int]:
    """HOST:PORT of a running Ray head, or one line saying why it cannot be used."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"Ray address {address!r} is not HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(f"cannot reach the Ray head at {address} ({why}): is it running? "
                          "(slurm/sweep.sh starts one; by hand: ray start --head --port PORT)") from None
    return host, int(port)
