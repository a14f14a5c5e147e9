"""bench.perf model runs end to end and reports both goal ratios."""
from __future__ import annotations

import pytest

from bench.perf.__main__ import main


def test_perf_model_prints_ratios(capsys):
    assert main(["model", "--presets", "tiny", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for needle in ("x3d fwd+bwd", "x3d+dam fwd+bwd", "hdf step", "ratio DAM / plain X3D",
                   "ratio HDF step / AdamW step"):
        assert needle in out


def test_perf_unknown_preset_fails():
    with pytest.raises(SystemExit, match="unknown preset 'huge'"):
        main(["model", "--presets", "huge"])


def test_search_benchmark_counts_trial_epochs_until_the_target():
    import pandas as pd

    from bench.perf.search import epochs_to_reach

    reports = pd.DataFrame({"value": [0.2, 0.5, 0.55, 0.61, 0.7]})
    assert epochs_to_reach(reports, 0.62, 0.01) == 4
    assert epochs_to_reach(reports, 0.70, 0.0) == 5
    assert epochs_to_reach(reports, 0.9, 0.01) is None


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,x"], "--seeds '0,x': give comma-separated integers"),
    (["--keep", "{tmp}"], "folder is not empty"),
])
def test_perf_search_user_errors_are_one_line(args, message, tmp_path, capsys):
    from bench.cli import run_main
    from bench.perf.__main__ import main

    (tmp_path / "old").mkdir()
    argv = ["search", *[a.format(tmp=tmp_path) for a in args]]
    with pytest.raises(SystemExit) as e:
        run_main(main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err


def _perf(*args: str) -> str:
    import subprocess
    import sys

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


@pytest.mark.slow
def test_perf_search_runs_both_methods_and_prints_the_ratio(tmp_path):
    out = _perf("search", "--space", "search_spaces/smoke.yaml", "--trials", "1", "--seeds", "0",
                "--set", "train.epochs=1", "--keep", str(tmp_path / "keep"))
    kept = sorted(p.name for p in (tmp_path / "keep").iterdir())
    assert kept == ["perf-random-fifo-0", "perf-tpe-asha-0"], kept
    for needle in ("tpe+asha seed 0: 1 trial-epochs", "random+fifo seed 0: 1 trial-epochs",
                   "target:", "ratio tpe+asha / random+fifo:"):
        assert needle in out, out
