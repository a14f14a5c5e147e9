"""The cost benchmarks (bench.perf model, tune) run end to end and report their goal ratios."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bench.perf.__main__ import main


def test_perf_model_prints_ratios(capsys):
    assert main(["model", "--presets", "tiny", "--repeats", "1", "--no-throughput"]) == 0
    out = capsys.readouterr().out
    for needle in ("x3d fwd+bwd", "x3d+dam fwd+bwd", "hdf step", "ratio DAM / plain X3D",
                   "ratio HDF step / AdamW step", "hdf step, probed",
                   "ratio HDF step with probe every 25 / without"):
        assert needle in out


def test_perf_model_prints_clips_per_second_per_batch_precision_and_layout(capsys):
    assert main(["model", "--presets", "tiny", "--no-ratios", "--batches", "2",
                 "--precisions", "fp32,bf16", "--layouts", "contiguous,channels_last",
                 "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "hdf train" in out and "adamw train" in out and "peak MiB (process RSS)" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("tiny ")]
    assert {(r[2], r[3], r[4]) for r in rows} == {
        ("2", p, lay) for p in ("fp32", "bf16")
        for lay in ("contiguous", "channels_last")}
    for r in rows:  # hdf, adamw, infer clips/s and peak memory: positive numbers
        assert all(float(v) > 0 for v in r[5:9])


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
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        main(["model", "--presets", "huge"])


@pytest.mark.parametrize("args,needle", [
    (["--precisions", "fp8"], "--precisions must be a comma-separated list"),
    (["--precisions", "fp16"], "fp16 needs a CUDA device"),
    (["--batches", "1"], "--batches must be integers >= 2"),
    (["--layouts", "nhwc"], "--layouts must be a comma-separated list"),
    (["--device", "cuda:7"], "available devices"),
])
def test_perf_model_bad_options_are_one_line(args, needle):
    p = subprocess.run([sys.executable, "-m", "bench.perf", "model", "--presets", "tiny", *args],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr, p.stderr


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
