"""Running work on a SLURM cluster: submitit submission and job-array fan-out."""
from bench.launch.array import LAUNCHERS, ArrayTask, merge_tidy, plan_tasks, run_array, toy_shift_eval
from bench.launch.command import ResumableCommand, check_ray_address, submit_command
from bench.launch.slurm import (LaunchError, SlurmOptions, add_arguments, check_cluster,
                                options_from_args, parse_time, submit, submit_array, wait_all)

__all__ = ["LAUNCHERS", "ArrayTask", "merge_tidy", "plan_tasks", "run_array", "toy_shift_eval",
           "LaunchError", "SlurmOptions", "add_arguments", "check_cluster", "options_from_args",
           "parse_time", "submit", "submit_array", "wait_all", "ResumableCommand", "check_ray_address",
           "submit_command"]
