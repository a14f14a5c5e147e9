"""The cost benchmarks (bench.perf model, tune) run end to end and report their goal ratios."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bench.perf.__main__ import main


def test_perf_model_prints_ratios(capsys):
    assert main(["model", "--presets", "tiny", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for needle in ("x3d fwd+bwd", "x3d+dam fwd+bwd", "hdf step", "ratio DAM / plain X3D",
                   "ratio HDF step / AdamW step", "hdf step, probed",
                   "ratio HDF step with probe every 25 / without"):
        assert needle in out


def test_perf_data_prints_the_table_and_goal_lines(tmp_path, monkeypatch, capsys):
    import re

    import torch

    monkeypatch.setenv("HDF_BENCH_CACHE", str(tmp_path))
    threads = torch.get_num_threads()
    tiny = "num_clips=24,num_subjects=6,min_frames=8,max_frames=10"
    assert main(["data", "--preset", "ci", "--preset-112", "ci", "--clips", "6", "--repeats", "1",
                 "--synth-options", tiny]) == 0
    out = capsys.readouterr().out
    for name in (r"synthetic ci", r"DFEW layout \(ci\)"):
        assert re.search(rf"clip store / JPEG path per worker \({name}\): [\d.]+x "
                         rf"\(goal >= 10x\): (met|MISSED)", out), out
    assert "| 80 px | 6 |" in out and "| 112 px | 6 |" in out
    assert not list(tmp_path.glob(".perf-data-*"))  # the benchmark's stores are removed
    assert torch.get_num_threads() == threads


def test_perf_unknown_preset_fails():
    with pytest.raises(SystemExit, match="unknown preset 'huge'"):
        main(["model", "--presets", "huge"])


def _perf(*args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "bench.perf", *args], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


@pytest.mark.slow
def test_perf_tune_times_a_sweep_of_trials_against_bare_loops():
    import re

    out = _perf("tune", "--epochs", "1", "--trials", "2")
    ratio = float(re.search(r"ratio Tune/bare\s+([\d.]+)", out).group(1))
    assert 0.5 < ratio < 5, out
    # the second trial reused the first one's actor: it started within seconds, not a worker start
    later = float(re.search(r"later trials ([\d.]+) s after", out).group(1))
    assert later < 10, out
