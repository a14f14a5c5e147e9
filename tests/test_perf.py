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
