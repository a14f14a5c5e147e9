"""`python -m bench.tune --space search_spaces/dsm.yaml`: tune HDF, train baselines, export.

    python -m bench.tune --space search_spaces/dsm.yaml              # local Ray, all cores
    python -m bench.tune --space search_spaces/hdf.yaml --trials 40 --gpus-per-trial 0.25
    python -m bench.tune --space search_spaces/sam.yaml --address 10.0.0.5:6379
    python -m bench.tune --resume runs/dsm-20261123-101500          # after a crash or kill

Writes runs/<name>/ (see the README's "Sweep run folder"): study.yaml,
env.json, optuna.journal, trials.parquet/.csv, models.yaml, models/<name>/
(config.yaml, checkpoint.pt, metrics.csv), summary.json; then runs the
robustness suite and the report on it unless told not to.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.cli import non_negative_int, positive_int, run_main
from bench.config import read_yaml
from bench.errors import ConfigError, DataError
from bench.runs import atomic_write_text, environment, write_table
from bench.search.spaces import with_base_sets

__all__ = ["main", "run_sweep"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _apply_cli(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags override the study file; the result is what study.yaml stores."""
    raw = dict(raw)
    for key in ("trials", "concurrency"):
        if getattr(args, key) is not None:
            raw[key] = getattr(args, key)
    res = dict(raw.get("resources") or {})
    if args.cpus_per_trial is not None:
        res["cpu"] = args.cpus_per_trial
    if args.gpus_per_trial is not None:
        res["gpu"] = args.gpus_per_trial
    if res:
        raw["resources"] = res
    if args.overrides:
        raw = with_base_sets(raw, args.overrides)
    return raw


def _prepare_dir(run_dir: Path) -> None:
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


def _export(run_dir: Path, name: str, rec, role: str, method: str, seed: int) -> dict[str, Any]:
    """Copy a trial's last checkpoint and history into models/<name>/."""
    from bench.runs import load_checkpoint
    from bench.search.results import model_metrics

    if rec.checkpoint is None:
        raise DataError(f"trial {rec.trial} left no checkpoint to export")
    dest = run_dir / "models" / name
    tmp = dest.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(rec.checkpoint / "state.pt", tmp / "checkpoint.pt")
    state = load_checkpoint(tmp / "checkpoint.pt")
    (tmp / "config.yaml").write_text(yaml.safe_dump(state["config"], sort_keys=False))
    write_table(tmp / "metrics.csv", model_metrics(rec))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return {"name": name, "role": role, "method": method, "seed": int(seed),
            "path": f"models/{name}", "trial": rec.trial}


def run_sweep(study, run_dir: Path, *, address: str | None, cpus: int | None,
              gpus: int | None) -> dict[str, Any]:
    """Sweep, then baselines; writes the tables and models; returns the summary."""
    from bench.engine import build_split
    from bench.search.results import pick_best, trials_table
    from bench.search.run import baseline_runs, init_ray, records, run_phase
    from bench.search.trainable import METHOD_KEY, SEED_KEY

    t0 = time.perf_counter()
    build_split(study.base_config(), "train")  # generate/check the data once, not per trial
    init_ray(address=address, num_cpus=cpus, num_gpus=gpus)
    _check_resources(study)
    _log(f"sweep: {study.trials} trials of {study.method} ({study.epochs} epochs max, "
         f"{study.concurrency} at a time, {study.cpus_per_trial:g} CPU"
         f"{f' + {study.gpus_per_trial:g} GPU' if study.gpus_per_trial else ''} each), "
         f"objective {', '.join(study.objective.reported)}")
    sweep = records(run_phase(study, run_dir, "sweep", log=_log))
    table = trials_table(study, sweep)
    write_table(run_dir / "trials.parquet", table)
    write_table(run_dir / "trials.csv", table)
    best, front = pick_best(study, table)
    by_trial = {r.trial: r for r in sweep}
    models: list[dict[str, Any]] = []
    best_values = None
    if best is not None:
        rec = by_trial[best]
        best_values = {k: v for k, v in rec.config.items() if not k.startswith("__")}
        models.append(_export(run_dir, "hdf-best", rec, "hdf", study.method, study.seeds[0]))
    else:
        _log("no trial ran every epoch without failing: nothing to export as hdf-best")

    runs = baseline_runs(study, best_values)
    if runs:
        _log(f"baselines: {len(runs)} run(s) at the same budget ({study.epochs} epochs)")
        wide = _widen(study, len(runs))
        for rec in records(run_phase(wide, run_dir, "baselines", log=_log, runs=runs)):
            spec = rec.config.get("__run", rec.config)
            method = spec.get(METHOD_KEY) or study.method
            seed = int(spec.get(SEED_KEY, study.seeds[0]))
            is_hdf = METHOD_KEY not in spec
            name = ("hdf-best" if is_hdf else method) + \
                ("" if seed == study.seeds[0] else f"-s{seed}")
            if rec.error:
                _log(f"  baseline {name} failed: {rec.error}")
                continue
            models.append(_export(run_dir, name, rec, "hdf" if is_hdf else "baseline",
                                  method, seed))
    atomic_write_text(run_dir / "models.yaml", yaml.safe_dump(models, sort_keys=False))
    counts = table.groupby("status").trial.nunique().to_dict() if len(table) else {}
    scores = _best_scores(table, best)
    summary = {"study": study.name, "space": study.source, "trials": study.trials,
               "status_counts": counts, "best_trial": best, "pareto_front": front,
               "best_params": {k[6:]: v for k, v in _params_of(table, best).items()},
               "best_scores": scores, "models": [m["name"] for m in models],
               "duration_s": round(time.perf_counter() - t0, 1)}
    atomic_write_text(run_dir / "summary.json", pd.Series(summary).to_json(indent=2) + "\n")
    return summary


def _widen(study, n_runs: int):
    """Baselines run FIFO with nothing after them: spread the idle CPUs over them."""
    import dataclasses

    import ray

    if study.gpus_per_trial:
        return study
    cpus = int(ray.cluster_resources().get("CPU", 1))
    per = max(study.cpus_per_trial, float(cpus // max(1, min(n_runs, study.concurrency))))
    return dataclasses.replace(study, cpus_per_trial=per)


def _check_resources(study) -> None:
    import ray

    have = ray.cluster_resources()
    for key, need, flag in (("CPU", study.cpus_per_trial, "--cpus-per-trial"),
                            ("GPU", study.gpus_per_trial, "--gpus-per-trial")):
        if need > have.get(key, 0):
            raise ConfigError(f"each trial asks for {need:g} {key} but the Ray cluster has "
                              f"{have.get(key, 0):g}; lower it with {flag}")


def _params_of(table: pd.DataFrame, trial: str | None) -> dict[str, Any]:
    if trial is None:
        return {}
    row = table[table.trial == trial].iloc[0]
    return {c: row[c] for c in table.columns if c.startswith("param.") and pd.notna(row[c])}


def _best_scores(table: pd.DataFrame, trial: str | None) -> dict[str, float]:
    if trial is None:
        return {}
    t = table[table.trial == trial]
    last = t[t.epoch == t.epoch.max()]
    return {m: round(float(v), 4) for m, v in zip(last.metric, last.value)
            if m.startswith(("val_war", "val_uar", "test_war", "test_uar"))}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--space", help="study YAML (see search_spaces/)")
    src.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted sweep")
    ap.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    ap.add_argument("--name", help="run folder name (default: <space>-<timestamp>)")
    ap.add_argument("--trials", type=int, help="number of trials (overrides the study)")
    ap.add_argument("--concurrency", type=int, help="trials at a time (overrides the study)")
    ap.add_argument("--cpus-per-trial", type=float)
    ap.add_argument("--gpus-per-trial", type=float, help="fractions allowed, e.g. 0.25")
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
    from bench.launch.slurm import add_arguments as slurm_arguments

    slurm_arguments(ap)
    return ap


def _submit(args: argparse.Namespace, argv: list[str], run_dir: Path) -> int:
    """Run this command as a SLURM job; a requeued job resumes the same run folder."""
    from bench.launch.command import submit_command
    from bench.launch.slurm import options_from_args

    opts = options_from_args(args, job_name=f"tune-{run_dir.name}")
    keep = _strip_launcher(argv)
    if not args.resume and not args.name:
        keep += ["--name", run_dir.name]
    job_argv = keep + ["--cpus", str(opts.cpus)] + (["--gpus", str(opts.gpus)] if opts.gpus else [])
    resume = ["--resume", str(run_dir.resolve()), "--cpus", str(opts.cpus)] + \
        [f for f in ("--no-robustness", "--no-report") if f in argv]
    job = submit_command("bench.tune:main", job_argv, resume, run_dir / "study.yaml", opts)
    print(f"submitted SLURM job {job.job_id}: sweep into {run_dir}\n"
          f"logs: {job.paths.stdout} (and .err); follow with `squeue -j {job.job_id}`",
          flush=True)
    return 0


_SLURM_FLAGS = {"--partition", "--time", "--gpus-per-task", "--cpus-per-task", "--mem",
                "--account", "--sbatch", "--setup", "--slurm-logs", "--launcher"}


def _strip_launcher(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        flag = a.split("=", 1)[0]
        if flag in _SLURM_FLAGS:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.launcher == "local":
        from bench.launch.command import check_cluster_address

        check_cluster_address(args.address)  # in seconds, before a run folder or data exist
    from bench.search.run import SweepInterrupted
    from bench.search.spaces import study_from_dict

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "study.yaml").is_file():
            raise ConfigError(f"{run_dir} is not a sweep run folder (no study.yaml)")
        raw = read_yaml(run_dir / "study.yaml")
        study = study_from_dict(raw, name=run_dir.name, source=str(run_dir / "study.yaml"))
        if args.launcher == "slurm":
            return _submit(args, argv, run_dir)
    else:
        raw = _apply_cli(read_yaml(args.space), args)
        if not Path(args.space).is_file():
            raise ConfigError(f"search space file not found: {args.space}")
        name = args.name or f"{Path(args.space).stem}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        study = study_from_dict(raw, name=name, source=str(args.space))
        run_dir = Path(args.out) / name
        if args.launcher == "slurm":
            if run_dir.exists():
                raise ConfigError(f"run folder {run_dir} exists already; choose another --name")
            return _submit(args, argv, run_dir)
        _prepare_dir(run_dir)
        atomic_write_text(run_dir / "study.yaml", yaml.safe_dump(raw, sort_keys=False))
        atomic_write_text(run_dir / "env.json", pd.Series(environment()).to_json(indent=2))
    try:
        summary = run_sweep(study, run_dir, address=args.address, cpus=args.cpus, gpus=args.gpus)
    except SweepInterrupted as e:
        _log(str(e))
        return 3
    except BaseException:  # a user error, a bug, Ctrl-C or SIGTERM: a folder where nothing ran goes
        if not args.resume and not (run_dir / "tune").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    _print_summary(summary, run_dir)
    return _after_sweep(run_dir, robustness=not args.no_robustness, report=not args.no_report)


def _after_sweep(run_dir: Path, *, robustness: bool, report: bool) -> int:
    """The robustness suite, then the report, on the finished run folder."""
    code = 0
    if robustness and (run_dir / "models.yaml").is_file():
        import ray

        if ray.is_initialized():
            ray.shutdown()  # give the cores back to torch
        from robustness.__main__ import main as robustness_main

        _log("robustness suite (skip with --no-robustness):")
        code = robustness_main(["--run", str(run_dir)]) or 0
    if report:
        from bench.report import write_report

        path, _ = write_report(run_dir)
        print(f"report:       {path}", flush=True)
    return code


def _print_summary(s: dict[str, Any], run_dir: Path) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(s["status_counts"].items()))
    lines = [f"sweep {s['study']}: {s['trials']} trials ({counts}) in {s['duration_s']:.0f}s"]
    if s["best_trial"]:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in s["best_params"].items())
        scores = ", ".join(f"{k} {v:.3f}" for k, v in s["best_scores"].items())
        lines.append(f"best {s['best_trial']}: {scores}\n  {params}")
    lines += [f"run folder:   {run_dir}",
              f"trials table: {run_dir / 'trials.parquet'} (and .csv)",
              f"models:       {', '.join(s['models']) or 'none'} under {run_dir / 'models'}",
              f"optuna study: optuna-dashboard {run_dir / 'optuna.journal'}"]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    run_main(main)
