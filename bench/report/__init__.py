"""The run report: one self-contained HTML page per run folder.

    html = build_report("runs/my-sweep")          # str
    path, page = write_report("runs/my-sweep")    # runs/my-sweep/report.html

Layers: tables.load_run (the only file reads) -> figures (pure: frames ->
plotly figures, registered by name in FIGURES) -> page.render_page (pure:
HTML string) -> write_report (atomic write). browser.py checks a page in
headless Chromium.
"""
from __future__ import annotations

import os
from pathlib import Path

from bench.report.figures import FIGURES, NotApplicable
from bench.report.page import Page, render_page
from bench.report.tables import RunData, load_run

__all__ = ["build_report", "write_report", "load_run", "render_page", "RunData", "Page",
           "FIGURES", "NotApplicable"]


def build_report(run_dir: str | Path) -> str:
    """The report of a run folder as one HTML string (plotly.js embedded, opens offline)."""
    return render_page(load_run(run_dir)).html


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 data: RunData | None = None) -> tuple[Path, Page]:
    """Write RUN_DIR/report.html (or `out`) atomically; returns the path and the page.

    `data`: the run as `load_run` read it already (the CLI shows its notes first).
    """
    page = render_page(data if data is not None else load_run(run_dir))
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(page.html.encode("utf-8"))  # plotly.js is not ASCII: never the locale's codec
        os.replace(tmp, path)
    except BaseException:  # an interrupt too: no hidden half-page stays behind
        tmp.unlink(missing_ok=True)
        raise
    return path, page
