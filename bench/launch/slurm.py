"""Submit Python functions to SLURM through submitit, with one-line errors.

The sweep and robustness CLIs share these options (`add_arguments`) so a user
learns one set of flags. Everything a user can get wrong (no SLURM here, an
unknown partition, sbatch refusing the request, a task that crashed) becomes a
BenchError with one line naming the fix, never a submitit traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.errors import BenchError, ConfigError

__all__ = ["SlurmOptions", "LaunchError", "parse_time", "check_cluster", "submit", "submit_array",
           "wait_all", "add_arguments", "options_from_args"]


class LaunchError(BenchError):
    """A submitted job did not finish with a result; the message names its log."""


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of one job (or of each task of an array)."""

    partition: str | None = None      # None: the cluster's default partition
    time_min: int = 60
    gpus: int = 0                     # per task
    cpus: int = 1                     # per task
    mem_gb: float | None = None       # None: the cluster's default (DefMemPerCPU)
    account: str | None = None
    extra: tuple[str, ...] = ()       # more sbatch options, e.g. "--qos=high", "--constraint=a100"
    setup: tuple[str, ...] = ()       # shell lines before the task, e.g. "module load cuda"
    log_dir: Path = Path("slurm-logs")
    job_name: str = "hdf-bench"
    max_parallel: int = 64            # array tasks running at once
    requeue_signal_s: int = 120       # USR2 this long before the time limit (checkpoint + requeue)
    poll_s: float = 2.0               # how often submitit asks sacct while waiting
    extra_env: dict[str, str] = field(default_factory=dict)

    def sbatch_extra(self) -> dict[str, Any]:
        """`extra` as submitit's additional_parameters ("--qos=high" -> {"qos": "high"})."""
        out: dict[str, Any] = {}
        for item in self.extra:
            m = re.fullmatch(r"(?:#SBATCH\s+)?--?([A-Za-z][\w-]*)(?:[= ](.*))?", item.strip())
            if not m:
                raise ConfigError(f"extra sbatch option {item!r} is not of the form --name=value")
            key, value = m.group(1).replace("-", "_"), m.group(2)
            out[key] = True if value is None else value
        return out


def parse_time(text: str | int) -> int:
    """SLURM time -> whole minutes (at least 1).

    Same forms as sbatch --time: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S".
    """
    s = str(text).strip()
    days, _, rest = s.rpartition("-") if "-" in s else ("", "", s)
    parts = rest.split(":")
    if not all(p.isdigit() for p in parts) or ("-" in s and not days.isdigit()) or len(parts) > 3:
        raise ConfigError(f"time {s!r} is not M, M:S, H:M:S, D-H, D-H:M or D-H:M:S")
    n = [int(p) for p in parts]
    if days:   # D-H, D-H:M, D-H:M:S
        n += [0] * (3 - len(n))
        seconds = int(days) * 86400 + n[0] * 3600 + n[1] * 60 + n[2]
    else:      # M, M:S, H:M:S
        seconds = {1: lambda: n[0] * 60, 2: lambda: n[0] * 60 + n[1],
                   3: lambda: n[0] * 3600 + n[1] * 60 + n[2]}[len(n)]()
    if seconds <= 0:
        raise ConfigError(f"time {s!r} must be positive")
    return max(1, -(-seconds // 60))


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LaunchError(f"'{' '.join(cmd)}' did not answer within {timeout:.0f}s: is slurmctld up?") from None


def check_cluster(options: SlurmOptions) -> str:
    """Fail early with one line when jobs could not run; returns the partition used."""
    for tool in ("sbatch", "sinfo", "sacct"):
        if shutil.which(tool) is None:
            raise ConfigError(f"SLURM not found: '{tool}' is not on PATH (run on a login node, "
                              "or start a local one with 'bash slurm/dev-cluster.sh up')")
    out = _run(["sinfo", "-h", "-o", "%P"])
    if out.returncode != 0:
        raise LaunchError(f"sinfo failed: {_last_line(out.stderr)}")
    partitions = {p.rstrip("*"): p.endswith("*") for p in out.stdout.split()}
    if options.partition is None:
        default = [p for p, is_default in partitions.items() if is_default]
        if not default:
            raise ConfigError(f"the cluster has no default partition: pass --partition "
                              f"(known: {', '.join(sorted(partitions))})")
        partition = default[0]
    elif options.partition not in partitions:
        from bench.registry import _suggest
        raise ConfigError(f"unknown SLURM partition '{options.partition}'."
                          f"{_suggest(options.partition, list(partitions))}")
    else:
        partition = options.partition
    # submitit follows jobs through accounting: without slurmdbd it cannot wait.
    acct = _run(["sacct", "-n", "-X", "-S", "now", "-o", "JobID"])
    if acct.returncode != 0:
        raise ConfigError(f"SLURM accounting does not answer (sacct: {_last_line(acct.stderr)}); "
                          "submitit needs it to follow jobs")
    return partition


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def _executor(options: SlurmOptions, partition: str, array_size: int = 1) -> Any:
    import submitit

    options.log_dir.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=options.log_dir / "%j", cluster="slurm")
    params: dict[str, Any] = dict(
        slurm_partition=partition, timeout_min=options.time_min, cpus_per_task=options.cpus,
        tasks_per_node=1, nodes=1, name=options.job_name,
        slurm_array_parallelism=max(1, min(options.max_parallel, array_size)),
        slurm_signal_delay_s=options.requeue_signal_s,
        slurm_setup=[*(f"export {k}={v}" for k, v in options.extra_env.items()), *options.setup],
    )
    if options.gpus:
        params["gpus_per_node"] = options.gpus
    if options.mem_gb is not None:
        params["mem_gb"] = options.mem_gb
    if options.account:
        params["slurm_account"] = options.account
    extra = options.sbatch_extra()
    if extra:
        params["slurm_additional_parameters"] = extra
    ex.update_parameters(**params)
    return ex


@contextlib.contextmanager
def _sbatch_errors(what: str):
    """sbatch's refusal (bad account, too much memory, ...) as one line."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            yield
    except Exception as e:  # submitit wraps sbatch's stderr in its own error types
        cause = e.__cause__ if isinstance(e.__cause__, subprocess.CalledProcessError) else None
        text = (cause.stderr if cause is not None else "") or str(e) or sink.getvalue()
        raise LaunchError(f"sbatch refused {what}: {_last_line(text)}") from None


def submit(fn: Callable[..., Any], *args: Any, options: SlurmOptions, **kwargs: Any) -> Any:
    """One job running fn(*args, **kwargs); returns the submitit Job."""
    partition = check_cluster(options)
    ex = _executor(options, partition)
    with _sbatch_errors("the job"):
        return ex.submit(fn, *args, **kwargs)


def submit_array(fn: Callable[..., Any], arg_list: Sequence[tuple[Any, ...]],
                 options: SlurmOptions) -> list[Any]:
    """One job array, task i running fn(*arg_list[i]); returns the Jobs in order."""
    if not arg_list:
        return []
    partition = check_cluster(options)
    ex = _executor(options, partition, array_size=len(arg_list))
    with _sbatch_errors(f"the job array of {len(arg_list)} tasks"):
        with ex.batch():
            jobs = [ex.submit(fn, *args) for args in arg_list]
    return jobs


def wait_all(jobs: Sequence[Any], progress: Callable[[int, int], None] | None = None,
             poll_s: float = 2.0) -> list[Any]:
    """Wait for every job and return their results in order.

    A failed task raises LaunchError with the remote error's last line and the
    log path, after all tasks have ended (so the others' logs are complete).
    """
    from submitit.core.utils import UncompletedJobError

    pending = list(range(len(jobs)))
    while pending:
        pending = [i for i in pending if not jobs[i].done()]
        if progress:
            progress(len(jobs) - len(pending), len(jobs))
        if pending:
            time.sleep(poll_s)
    results, failures = [], []
    for job in jobs:
        try:
            results.append(job.result())
        except UncompletedJobError as e:
            trace = str(e).split("----------------------")
            reason = _last_line(trace[1] if len(trace) > 2 else str(e))
            failures.append(f"slurm job {job.job_id} failed: {reason} (log: {job.paths.stderr})")
            results.append(None)
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise LaunchError(failures[0] + more)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The SLURM options of every CLI that can run with `--launcher slurm`."""
    g = parser.add_argument_group("SLURM (with --launcher slurm)")
    g.add_argument("--partition", help="partition (default: the cluster's default)")
    g.add_argument("--time", default="60", help="time limit: minutes, HH:MM:SS or D-HH:MM:SS")
    g.add_argument("--gpus-per-task", dest="slurm_gpus", type=int, default=0, help="GPUs per task")
    g.add_argument("--cpus-per-task", dest="slurm_cpus", type=int, default=1, help="CPUs per task")
    g.add_argument("--mem", type=float, default=None, help="memory per task in GB")
    g.add_argument("--account", help="account to charge")
    g.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                   help="extra sbatch option, repeatable, e.g. --sbatch=--qos=high")
    g.add_argument("--setup", action="append", default=[], metavar="LINE",
                   help="shell line run before the task, repeatable, e.g. 'module load cuda'")
    g.add_argument("--slurm-logs", type=Path, default=Path("slurm-logs"), help="submitit log folder")


def options_from_args(args: argparse.Namespace, job_name: str = "hdf-bench") -> SlurmOptions:
    if args.slurm_cpus < 1:
        raise ConfigError("--cpus-per-task must be at least 1")
    if args.slurm_gpus < 0:
        raise ConfigError("--gpus-per-task must be 0 or more")
    if args.mem is not None and args.mem <= 0:
        raise ConfigError("--mem must be positive (GB)")
    opts = SlurmOptions(partition=args.partition, time_min=parse_time(args.time), gpus=args.slurm_gpus,
                        cpus=args.slurm_cpus, mem_gb=args.mem, account=args.account,
                        extra=tuple(args.sbatch), setup=tuple(args.setup),
                        log_dir=args.slurm_logs, job_name=job_name)
    opts.sbatch_extra()  # reject malformed extra options before anything is submitted
    return opts
