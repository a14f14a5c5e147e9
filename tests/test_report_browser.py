"""The report of a realistic run folder, opened in headless Chromium as a reader would.

The run folder is the demo one (a real Optuna study in a journal, models/,
robustness/ per the contract); Chromium must draw every expected figure with
no console error. CI installs chromium (.ci/run), so there the test never skips.
"""
from __future__ import annotations

import os
import time

import pytest

from bench.report import FIGURES, write_report
from bench.report.browser import check_page, find_chromium
from bench.report.demo import make_demo_run

pytestmark = pytest.mark.slow

if find_chromium() is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it",
                allow_module_level=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = make_demo_run(tmp_path_factory.mktemp("runs"), "demo-sweep")
    t0 = time.perf_counter()
    path, page = write_report(run)
    seconds = time.perf_counter() - t0
    print(f"\nreport build {seconds:.2f}s, {path.stat().st_size / 1e6:.2f} MB")
    return path, page


def test_every_expected_figure_renders_without_console_errors(report):
    path, page = report
    # the demo study has one objective and no ablation
    expected = sorted(n for n in FIGURES.names()
                      if n != "sweep.pareto" and not n.startswith("attribution."))
    assert sorted(page.drawn) == expected and not page.errors
    seen = check_page(path)
    assert seen.errors == []
    assert sorted(seen.drawn) == expected and seen.total == len(expected)
    assert seen.png is not None and seen.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert seen.height > 3000  # the whole page, not just the first screen
    shot = path.with_suffix(".png")
    shot.write_bytes(seen.png)
    print(f"screenshot {shot} ({seen.height}px tall), browser {seen.seconds:.1f}s")


def test_a_broken_page_is_caught(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<div class="figure" data-figure="x"></div>'
                   '<script>console.error("boom"); undefined_function();</script>')
    seen = check_page(bad, screenshot=False, timeout=10)
    assert seen.drawn == [] and seen.total == 1
    assert any("boom" in e for e in seen.errors)
    assert any("undefined_function" in e for e in seen.errors)


TINY = ["--set", "data.preset=ci", "--set", "data.num_frames=4", "--set", "data.batch_size=8",
        "--set", "train.epochs=1"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Real comparison run folders (bench.compare, CI-sized): one training seed and three."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path_factory.mktemp("compare")
    root = Path(__file__).resolve().parents[1]
    runs = {}
    for name, seeds in (("one-seed", "0"), ("three-seeds", "0,1,2")):
        p = subprocess.run([sys.executable, "-m", "bench.compare", "--methods", "hdf,x3d_ce",
                            "--seeds", seeds, *TINY, "--out", str(out), "--name", name],
                           cwd=root, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-3000:]
        assert "verdict:" in p.stdout, p.stdout
        runs[name] = out / name
    return runs


@pytest.mark.parametrize("name, covers", [("one-seed", "test clips only: one training seed"),
                                          ("three-seeds", "3 training seeds x")])
def test_the_verdict_is_on_the_first_screen(compared, name, covers):
    seen = check_page(compared[name] / "report.html", screenshot=False)
    assert seen.errors == []
    assert "hdf vs x3d_ce:" in seen.first_screen and covers in seen.first_screen, seen.first_screen
    assert any(w in seen.first_screen for w in ("HDF better", "baseline better", "inconclusive"))
    if name == "one-seed":
        assert "inconclusive" in seen.first_screen  # one seed never says "better"
