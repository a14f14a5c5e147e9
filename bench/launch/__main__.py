"""`python -m bench.launch check [--partition P ...]`: is this cluster usable?

Submits a small job array (2 models x 2 shift groups) of the toy robustness
task, waits, merges, and checks that the table equals the in-process one.
"""
from __future__ import annotations

import argparse
import sys
import time

from bench.cli import run_main
from bench.launch.array import TOY_KEYS, plan_tasks, run_array, toy_shift_eval
from bench.launch.slurm import LaunchError, add_arguments, options_from_args


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["check"])
    add_arguments(p)
    args = p.parse_args(argv)
    options = options_from_args(args, job_name="hdf-bench-check")
    tasks = plan_tasks(["model_a", "model_b"], [["blur", "noise"], ["occlusion"]])
    arg_list = [(t.model, t.shifts) for t in tasks]
    t0 = time.perf_counter()
    remote = run_array(toy_shift_eval, arg_list, TOY_KEYS, launcher="slurm", options=options)
    seconds = time.perf_counter() - t0
    local = run_array(toy_shift_eval, arg_list, TOY_KEYS, launcher="local")
    if not remote.equals(local):
        raise LaunchError("the job array's merged table differs from the in-process one")
    print(f"ok: {len(tasks)} array tasks, {len(remote)} rows merged, round trip {seconds:.1f}s "
          f"(logs: {options.log_dir})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
