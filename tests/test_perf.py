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
