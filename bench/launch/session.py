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
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import yaml

from bench.errors import ConfigError
from bench.runfolder import ENV, STUDY, TUNE
from bench.runs import atomic_write_text, environment

__all__ = ["new_run_folder", "guarded", "strip_options", "slurm_dests", "hand_off",
           "run_arguments", "fixed_parser", "run_fixed", "log_line"]


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


def run_arguments(ap: argparse.ArgumentParser) -> None:
    """Where a run goes and what follows it: every training command shares these."""
    from bench.cli import non_negative_int, positive_int
    from bench.launch.slurm import add_arguments as slurm_arguments

    ap.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    ap.add_argument("--name", help="run folder name (default: <kind>-<timestamp>)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a base config key, e.g. --set train.epochs=2 (repeatable)")
    ap.add_argument("--address", help="join a running Ray cluster (host:port) instead of "
                                      "starting one")
    ap.add_argument("--cpus", type=positive_int, help="CPUs of the local Ray instance (default: all)")
    ap.add_argument("--gpus", type=non_negative_int,
                    help="GPUs of the local Ray instance (default: all)")
    ap.add_argument("--no-robustness", action="store_true", help="skip the robustness suite")
    ap.add_argument("--no-report", action="store_true", help="skip the HTML report")
    ap.add_argument("--launcher", choices=["local", "slurm"], default="local",
                    help="slurm: submit this whole command as one SLURM job (submitit)")
    slurm_arguments(ap)


def fixed_parser(prog: str, doc: str, *, what: str, default: str,
                 choose: tuple[str, str]) -> argparse.ArgumentParser:
    """The parser of a command that trains a fixed list of runs (compare, ablate).

    `choose`: (flag, help) of what the command varies (--methods, --factors).
    """
    from bench.cli import positive_int

    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    ap.add_argument(choose[0], help=choose[1])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--study", help=f"{what} file (default: {default})")
    src.add_argument("--resume", metavar="RUN_DIR", help=f"finish an interrupted {what}")
    ap.add_argument("--seeds", help="training seeds, e.g. 0,1,2")
    ap.add_argument("--concurrency", type=positive_int, help="runs at a time (overrides the file)")
    run_arguments(ap)
    return ap


def log_line(msg: str) -> None:
    """Progress for a person: stderr, so stdout keeps the results."""
    print(msg, file=sys.stderr, flush=True)


def run_fixed(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str], *,
              raw: dict[str, Any], study, run_dir: Path, train: Callable[[], dict[str, Any]],
              target: str, log: Callable[[str], None],
              after: Callable[[Path], list[str]] | None = None) -> tuple[int, dict[str, Any]]:
    """The shell of a fixed-list command: hand-off or folder, train (guarded), finish.

    `train()` runs the phase and returns the summary; `after(run_dir)` runs once the
    suite has (e.g. an ablation's effects) and returns lines to print.
    """
    from bench.engine import build_split
    from bench.finish import finish_run
    from bench.launch.command import check_cluster_address
    from bench.runfolder import write_summary
    from bench.search.run import SweepInterrupted, check_resources, init_ray

    if args.launcher == "local":
        check_cluster_address(args.address)  # in seconds, before a run folder or data exist
    if args.launcher == "slurm":
        if not args.resume and run_dir.exists():
            raise ConfigError(f"run folder {run_dir} exists already; choose another --name")
        return hand_off(parser, args, argv, run_dir, target,
                        resume_flags=("--no-robustness", "--no-report")), {}
    if not args.resume:
        new_run_folder(run_dir, raw)
    try:
        with guarded(run_dir, resumed=bool(args.resume)):
            build_split(study.base_config(), "train")  # generate/check the data once
            init_ray(address=args.address, num_cpus=args.cpus, num_gpus=args.gpus)
            check_resources(study)
            summary = train()
            write_summary(run_dir, summary)
    except SweepInterrupted as e:
        log(str(e))
        return 3, {}
    verdict = finish_run(run_dir, robustness=not args.no_robustness, report=False, log=log)
    lines = after(run_dir) if after is not None and not args.no_robustness else []
    if not args.no_report:
        from bench.report import write_report

        path = write_report(run_dir)[0]
    if verdict:  # stdout leads with the verdict; progress went to stderr
        print("verdict:\n" + "\n".join(f"  {s}" for s in verdict), flush=True)
    for line in lines:
        print(line, flush=True)
    print(f"{summary['kind']}: {len(summary['models'])} models in {summary['duration_s']:.0f}s\n"
          f"run folder:   {run_dir}\nmodels:       {', '.join(summary['models'])}"
          + ("" if args.no_report else f"\nreport:       {path}"), flush=True)
    return 0, summary
