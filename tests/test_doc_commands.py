"""Every command in README.md and docs/ parses as written, and is run here, elsewhere, or listed
as too slow for CI with the reason.

Commands are the lines of the ```bash blocks (continuation lines joined, comments
dropped). A `python -m MODULE ...` command is parsed by MODULE's own argparse
(its main() stops right after parsing), so a renamed or removed flag fails here.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+", " ", re.sub(r"\s+#.*$", "", line)).strip()
                if line:
                    out.append((page.relative_to(ROOT).as_posix(), line))
    return out


COMMANDS = _commands()
TEST_CMD = ('python3 -m venv .venv && . .venv/bin/activate && pip install -q -e ".[dev]" '
            '&& python -m pytest -q')
MAIN_CMD = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
            "python -m bench.tune --space search_spaces/dsm.yaml")

# Run for real by this file, as written, in a scratch folder.
RUN_HERE = {
    "python -m robustness --list",
    "python -m bench.data.synth --out data/synth-uniform --preset ci --class-prior uniform "
    "--set noise_scale=0.5",
}
# Run by CI or by another test.
RUN_ELSEWHERE = {
    TEST_CMD: ".ci/run runs it verbatim",
}
_SLURM = "needs a SLURM cluster with nodes and GPUs (tests/test_slurm.py runs sweep.sh on the " \
         "dev cluster with the smoke space)"
_DATA = "needs the licence-gated DFEW data set"
_RUN_DIR = "needs a finished run folder; tests/test_report*.py and tests/test_robustness_cli.py " \
           "run these CLIs on real ones"
# Too slow for CI, or needing what CI lacks; each still parses below.
SLOW = {
    MAIN_CMD: "about 7 minutes on 2 CPUs (results/verdicts.md); tests/test_tune_repro.py runs "
              "the same machinery on the smoke study",
    "sbatch --nodes=4 --gpus-per-node=4 --cpus-per-task=32 -p gpu slurm/sweep.sh --space "
    "search_spaces/hdf.yaml --out /shared/runs --name hdf1": _SLURM,
    "sbatch slurm/sweep.sh --space search_spaces/hdf.yaml --out /shared/runs --name hdf1": _SLURM,
    "sbatch --nodes=4 --gpus-per-node=4 --cpus-per-task=32 --time=1-00:00:00 -p gpu "
    "slurm/sweep.sh --space search_spaces/hdf.yaml --out /shared/runs --name hdf-big": _SLURM,
    "python -m bench.tune --space search_spaces/sam.yaml --launcher slurm --partition gpu "
    "--time 2:00:00": _SLURM,
    "python -m robustness --run /shared/runs/hdf1 --launcher slurm --partition gpu": _SLURM,
    "python -m robustness --run runs/sweep1 --launcher slurm --partition gpu --time 30": _SLURM,
    "python -m bench.data.synth --out data/synth --preset default --seed 0":
        "the full synthetic set (1,500 clips); the ci preset runs here",
    "python -m bench.train --method hdf --set data.name=dfew --set data.root=/data/DFEW "
    "--set data.num_frames=16 --set data.size=112 --set model.preset=s --set data.cache=false "
    "--set train.kfold=true": _DATA,
    "python -m bench.evaluate last.pt --set data.name=dfew --set data.root=/data/DFEW "
    "--set data.fold=2": _DATA,
    "python -m bench.report runs/my-sweep": _RUN_DIR,
    "python -m bench.report runs/my-sweep --out r.html --screenshot r.png": _RUN_DIR,
    "python -m robustness --run runs/sweep1": _RUN_DIR,
    "python -m robustness --run runs/sweep1 --shifts all --severities all --seeds 0,1,2": _RUN_DIR,
    "python -m robustness --run runs/sweep1 --shifts temporal --baseline x3d_ce-s1": _RUN_DIR,
    "python -m bench.evaluate runs/my-run/checkpoints/last.pt": _RUN_DIR,
    "python -m bench.evaluate last.pt --out scores.csv": _RUN_DIR,
    "python -m bench.compare --resume runs/compare-20261205-101500": _RUN_DIR,
    "python -m bench.compare": "13 minutes on 2 CPUs (results/verdicts.md); "
                               "tests/test_report_browser.py runs it CI-sized",
    "python -m bench.compare --methods hdf,x3d_ce,x3d_sam --seeds 0,1,2,3,4": "15 full runs",
    "python -m bench.compare --set train.epochs=16 --address 10.0.0.5:6379":
        "needs a Ray cluster at that address",
    "python -m bench.train --method hdf": "8 epochs of full HDF at 64 px (about 20 minutes)",
    "python -m bench.train --method x3d_ce --set optim.lr=1e-3 --set train.epochs=4":
        "4 epochs at 64 px; tests/test_train.py trains CI-sized",
    "python -m bench.train --config my.yaml --set loss.tau=0.1 --out runs --name my-run":
        "needs the user's my.yaml",
    "python -m bench.train --method hdf --set train.kfold=true": "5 folds x 8 epochs",
    "python -m bench.perf model": "minutes of timing; tests/test_perf.py runs it CI-sized",
    "python -m bench.perf model --presets tiny --diag-every 25":
        "timing; tests/test_perf.py runs it CI-sized",
    "python -m bench.perf model --device cuda --no-ratios --presets tiny,s --batches 8,16,32,64":
        "needs a CUDA device; tests/test_perf.py runs the throughput table CI-sized on cpu",
    "python -m bench.perf model --presets tiny --no-ratios --layouts contiguous,channels_last,compiled":
        "minutes of timing (compilation); tests/test_perf.py runs the table CI-sized",
    "python -m bench.perf tune": "timing; tests/test_perf.py runs it CI-sized",
    "python -m bench.perf robustness": "timing; tests/test_perf.py runs it CI-sized",
    "python -m bench.perf data": "about 80 s of timing plus generating a data set; "
                                 "tests/test_perf.py runs it CI-sized",
}
# Commands of the "Commands" table and of pages written as a placeholder (METAVARs) are not
# in ```bash blocks, so they are not extracted.


def test_every_documented_command_is_run_or_listed_with_a_reason():
    known = RUN_HERE | set(RUN_ELSEWHERE) | set(SLOW)
    unlisted = sorted({c for _, c in COMMANDS} - known)
    assert not unlisted, "document how these are run (RUN_HERE / RUN_ELSEWHERE / SLOW):\n" + \
        "\n".join(unlisted)
    stale = sorted(known - {c for _, c in COMMANDS})
    assert not stale, f"no longer in the docs: {stale}"


class _Parsed(Exception):
    pass


def _module_argv(command: str) -> tuple[str, list[str]] | None:
    """(module, argv) of the `python -m` part of a command (sbatch slurm/sweep.sh: bench.tune)."""
    words = shlex.split(command.split("&&")[-1])
    if words[:2] in (["python", "-m"], ["python3", "-m"]):
        return words[2], words[3:]
    if words[0] == "sbatch":
        script = next(i for i, w in enumerate(words) if w.endswith(".sh"))
        assert (ROOT / words[script]).is_file()
        return "bench.tune", words[script + 1:]
    return None


@pytest.mark.parametrize("page, command", [c for c in COMMANDS if _module_argv(c[1])],
                         ids=[f"{p}:{c[:60]}" for p, c in COMMANDS if _module_argv(c)])
def test_every_documented_command_parses_as_written(page, command, monkeypatch):
    module, argv = _module_argv(command)
    if module == "pytest":
        return
    original = argparse.ArgumentParser.parse_args

    def stop_after_parsing(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop_after_parsing)
    mod = importlib.import_module(module)
    if not hasattr(mod, "main"):
        mod = importlib.import_module(module + ".__main__")
    with pytest.raises(_Parsed):
        mod.main(argv)


@pytest.mark.parametrize("command", sorted(RUN_HERE))
def test_the_cheap_documented_commands_run(command, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
