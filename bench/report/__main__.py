"""`python -m bench.report RUN_DIR`: write RUN_DIR/report.html, one offline HTML page.

    python -m bench.report runs/my-sweep
    python -m bench.report runs/my-sweep --out /tmp/r.html --screenshot /tmp/r.png
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.cli import run_main
from bench.paths import check_output_file
from bench.report import load_run, write_report

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", metavar="RUN_DIR", help="run folder (runs/<name>)")
    ap.add_argument("--out", help="HTML file to write (default: RUN_DIR/report.html)")
    ap.add_argument("--screenshot", metavar="PNG",
                    help="also open the page in headless Chromium and save a full-page PNG")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    data = load_run(args.run_dir)  # refuses a missing folder or one that is not a run folder
    out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    check_output_file(out, "the report", create_parents=False)
    if args.screenshot:
        check_output_file(args.screenshot, "the screenshot", create_parents=False)
    for note in data.notes:  # the page says it too, but a terminal user may never open it
        print(f"warning: {note}", file=sys.stderr)
    path, page = write_report(args.run_dir, out, data=data)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB, {len(page.drawn)} figures, "
          f"{time.perf_counter() - t0:.1f}s)")
    for name, reason in page.skipped.items():
        print(f"  not shown: {name} ({reason})")
    for name, err in page.errors.items():
        print(f"  FAILED: {name} ({err})")
    if args.screenshot:
        from bench.report.browser import check_page

        seen = check_page(path)
        Path(args.screenshot).write_bytes(seen.png or b"")
        print(f"screenshot {args.screenshot}: {len(seen.drawn)}/{seen.total} figures drawn, "
              f"{len(seen.errors)} console errors")
        for err in seen.errors:
            print(f"  {err}")
        if seen.errors or len(seen.drawn) != seen.total:
            return 1
    return 1 if page.errors else 0


if __name__ == "__main__":
    run_main(main)
