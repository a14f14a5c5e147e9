"""What `bench.tune` and `bench.compare` share as command-line shells.

    new run folder (refused if it exists or cannot be written)
        -> study.yaml + env.json -> training (guarded: a run that never trained
           leaves no folder, on an error, Ctrl-C or SIGTERM alike) -> finish_run
    or, with --launcher slurm: the same command as one SLURM job, whose argv is
    this one without the SLURM options (read off the parser, not a copied list)
"""
from __future__ import annotations

import argparse
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import yaml

from bench.errors import ConfigError
from bench.runfolder import ENV, STUDY, TUNE
from bench.runs import atomic_write_text, environment

__all__ = ["new_run_folder", "guarded", "strip_options", "slurm_dests", "hand_off"]


def new_run_folder(run_dir: Path, raw_study: dict[str, Any]) -> None:
    """Create RUN_DIR with study.yaml and env.json; one line if it exists or is not writable."""
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except FileExistsError:
        raise ConfigError(f"run folder {run_dir} exists already; choose another --name "
                          f"or finish it with --resume {run_dir}") from None
    except OSError as e:
        raise ConfigError(f"cannot write the run folder {run_dir}: {e.strerror or e}") from None
    atomic_write_text(run_dir / STUDY, yaml.safe_dump(raw_study, sort_keys=False))
    atomic_write_text(run_dir / ENV, pd.Series(environment()).to_json(indent=2))


@contextmanager
def guarded(run_dir: Path, *, resumed: bool) -> Iterator[None]:
    """Remove a new run folder in which nothing trained when the body fails or is stopped.

    Catches BaseException: Ctrl-C (KeyboardInterrupt) and the SIGTERM handler's
    SystemExit must clean up as surely as an error does.
    """
    from bench.search.run import SweepInterrupted

    try:
        yield
    except SweepInterrupted:
        raise  # trials ran: the folder is resumable, keep it
    except BaseException:
        if not resumed and not (run_dir / TUNE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def slurm_dests() -> set[str]:
    """The argparse dests of the SLURM options (`bench.launch.slurm.add_arguments`)."""
    from bench.launch.slurm import add_arguments

    p = argparse.ArgumentParser(add_help=False)
    add_arguments(p)
    return {a.dest for a in p._actions} | {"launcher"}


def strip_options(parser: argparse.ArgumentParser, argv: list[str], dests: set[str]) -> list[str]:
    """argv without the options whose dest is in `dests`, and their values."""
    actions = parser._option_string_actions
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        flag = a.split("=", 1)[0]
        matches = [s for s in actions if s == flag] or \
            [s for s in actions if s.startswith(flag) and flag.startswith("--")]
        action = actions[matches[0]] if len(matches) == 1 else None
        if action is not None and action.dest in dests:
            skip = "=" not in a and action.nargs != 0
            continue
        out.append(a)
    return out


def hand_off(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str],
             run_dir: Path, target: str, *, resume_flags: tuple[str, ...] = ()) -> int:
    """Run this command as a SLURM job; a requeued job resumes the same run folder."""
    from bench.launch.command import submit_command
    from bench.launch.slurm import options_from_args

    opts = options_from_args(args, job_name=f"{target.split('.')[1].split(':')[0]}-{run_dir.name}")
    keep = strip_options(parser, argv, slurm_dests() | {"cpus", "gpus"})
    if not getattr(args, "resume", None) and not args.name:
        keep += ["--name", run_dir.name]
    hw = ["--cpus", str(opts.cpus)] + (["--gpus", str(opts.gpus)] if opts.gpus else [])
    resume = ["--resume", str(run_dir.resolve())] + hw + [f for f in resume_flags if f in argv]
    job = submit_command(target, keep + hw, resume, run_dir / STUDY, opts)
    print(f"submitted SLURM job {job.job_id}: {run_dir}\n"
          f"logs: {job.paths.stdout} (and .err); follow with `squeue -j {job.job_id}`", flush=True)
    return 0
