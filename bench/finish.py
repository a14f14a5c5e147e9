"""After a sweep or a comparison: the robustness suite, the verdict, the report.

    RUN_DIR/models.yaml -> robustness.pipeline.stress_test -> RUN_DIR/robustness/
        -> verdict sentences lead summary.json (and the printout) -> report.html
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from bench.runfolder import MODELS, read_summary, write_summary

__all__ = ["finish_run"]


def finish_run(run_dir: Path, *, robustness: bool, report: bool, device: str | None = None,
               log: Callable[[str], None] = print) -> list[str]:
    """Run what follows the training; returns the verdict sentences (empty without the suite)."""
    sentences: list[str] = []
    if robustness and (Path(run_dir) / MODELS).is_file():
        import ray

        if ray.is_initialized():
            ray.shutdown()  # give the cores back to torch
        from robustness.pipeline import SuiteOptions, stress_test, write_suite

        log("robustness suite (skip with --no-robustness):")
        out = stress_test(run_dir, SuiteOptions(device=device), log=log)
        write_suite(run_dir, out)
        sentences = [v.sentence for v in out.verdicts]
        summary = read_summary(run_dir)
        for key in ("verdict", "verdicts"):
            summary.pop(key, None)
        write_summary(run_dir, {"verdict": sentences,
                                "verdicts": [v.to_dict() for v in out.verdicts], **summary})
    if report:
        from bench.report import write_report

        path, _ = write_report(run_dir)
        log(f"report:       {path}")
    return sentences
