"""bench.hpo replay: the grid (cells, snapping, scores), the counts, and a real end-to-end run."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import run_main
from bench.hpo.__main__ import main
from bench.hpo.grid import Grid, cell_scores, cell_values, grid_runs, make_grid
from bench.hpo.reach import (epochs_to_found, epochs_to_returned, finishes, regret_at,
                             spread_lines, summary_lines)
from bench.hpo.flags import seed_list
from bench.search.spaces import load_study

ROOT = Path(__file__).resolve().parents[1]
ADAMW = ROOT / "search_spaces" / "adamw.yaml"


def test_cells_split_a_range_into_equal_widths_log_or_linear():
    study = load_study(ADAMW)
    p = {q.key: q for q in study.params}
    lr = cell_values(p["optim.lr"], 4)  # 3e-4..3e-2 in log: factor 100 ** (1/4) per cell
    assert lr == pytest.approx([3e-4 * 10 ** (0.5 * (i + 0.5)) for i in range(4)], rel=1e-3)
    assert cell_values(p["model.dropout"], 2) == (0.125, 0.375)
    assert cell_values(p["data.augment"], 0) == (True, False)


def test_a_trial_falls_in_the_nearest_cell():
    grid = Grid({"optim.lr": (1e-3, 1e-2), "data.augment": (True, False)},
                {"optim.lr": True, "data.augment": False})
    # 3e-3 is nearer 1e-3 than 1e-2 on a log scale (ratio 3 against 3.33), not on a linear one
    a = grid.snap({"optim.lr": 3e-3, "data.augment": False})
    assert a == grid.snap({"optim.lr": 1e-3, "data.augment": False})
    assert a != grid.snap({"optim.lr": 3.3e-3, "data.augment": False})
    with pytest.raises(ValueError, match="not a cell"):
        grid.snap({"optim.lr": 1e-3, "data.augment": "maybe"})
    assert len(grid.cells()) == 4 and len({grid.snap(c) for c in grid.cells()}) == 4


@pytest.mark.parametrize("counts, message", [
    ({"optim.lr": 3}, "optim.weight_decay: give its number of cells"),
    ({"optim.lr": 3, "optim.weight_decay": 2, "model.dropout": 2, "optim.lrr": 2},
     "--cells optim.lrr: not a searched key"),
    ({"optim.lr": 0, "optim.weight_decay": 2, "model.dropout": 2}, "--cells optim.lr=0"),
])
def test_a_grid_needs_cells_for_every_numeric_key(counts, message):
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        make_grid(load_study(ADAMW), counts)


def test_grid_runs_are_seed_major_with_every_cell_per_seed():
    study = load_study(ADAMW)
    grid = make_grid(study, {"optim.lr": 3, "optim.weight_decay": 1, "model.dropout": 1})
    runs = grid_runs(study, grid, [0, 1])
    assert len(runs) == 2 * 3 * 2  # 3 lr x 2 augment cells, 2 seeds
    assert [r["__seed"] for r in runs] == [0] * 6 + [1] * 6


def test_a_cell_scores_its_mean_over_seeds_and_a_missing_seed_is_no_score():
    rows = [("a", 0, 2, 0.60), ("a", 1, 2, 0.70), ("b", 0, 2, 0.90), ("b", 1, 1, 0.10),
            ("c", 0, 2, 0.50), ("c", 1, 2, math.nan)]
    curves = pd.DataFrame(rows, columns=["cell", "seed", "epoch", "value"])
    scores = cell_scores(curves, 2, [0, 1])
    assert scores.loc["a", "mean"] == pytest.approx(0.65)
    assert scores.loc["a", "std"] == pytest.approx(0.0707, abs=1e-4)
    assert math.isnan(scores.loc["b", "mean"])  # seed 1 never reached epoch 2
    assert math.isnan(scores.loc["c", "mean"])  # seed 1 diverged
    assert scores["mean"].idxmax() == "a"


def test_found_counts_to_a_finished_near_best_trial_returned_to_the_best_finished():
    # two epochs per trial; "x" is near-best, "y" is not but one of its runs was lucky
    reports = pd.DataFrame([
        ("y", 1, 0.50), ("x", 1, 0.40), ("y", 2, 0.80), ("x", 2, 0.70), ("x", 1, 0.50),
        ("x", 2, 0.85)], columns=["cell", "epoch", "value"])
    done = finishes(reports, 2)
    assert done == [(3, "y", 0.80), (4, "x", 0.70), (6, "x", 0.85)]
    assert epochs_to_found(done, {"x"}) == 4   # x's first finish (an early x: not yet)
    assert epochs_to_returned(done, {"x"}) == 6  # 0.70 < y's lucky 0.80: not returned
    assert epochs_to_found(done, {"z"}) is None
    assert epochs_to_returned(finishes(reports.iloc[:4], 2), {"x"}) is None
    # regret: the best cell's mean minus the mean of the cell returned by then
    means = {"x": 0.75, "y": 0.60}
    assert regret_at(done, means, 2) is None  # nothing finished yet
    assert regret_at(done, means, 5) == pytest.approx(0.15)  # y's lucky run is returned
    assert regret_at(done, means, 6) == 0.0
    assert math.isnan(regret_at([(2, "w", 0.9)], means, 2))  # w: a run diverged, no mean


def test_the_summary_counts_every_tolerance_and_budget_on_the_same_sweeps():
    means = {"a": 0.50, "b": 0.49, "c": 0.40}
    done = {"tpe+asha": [[(4, "b", 0.52), (8, "a", 0.51)], [(4, "a", 0.50)]],
            "random+fifo": [[(4, "c", 0.45), (8, "b", 0.47), (12, "a", 0.55)],
                            [(4, "c", 0.41), (8, "c", 0.39)]]}
    spent = {"tpe+asha": [10, 10], "random+fifo": [12, 12]}
    lines = summary_lines(done, spent, [means, means], [0.005, 0.02], [4, 12])
    text = "\n".join(lines)
    assert "within 0.005 of the best cell (1 of 3 cells):" in text
    assert "within 0.020 of the best cell (2 of 3 cells):" in text
    found = [ln for ln in lines if ln.startswith("found    tpe+asha")]
    assert "median trial-epochs 6 (2 of 2 runs" in found[0]  # a at 8 and at 4
    assert "median trial-epochs 4 (2 of 2 runs" in found[1]  # b at 4 counts at 0.02
    # at 4 trial-epochs: tpe+asha returned b (1 point) and a (0); random c and c (10 each)
    at4 = next(ln for ln in lines if ln.startswith("regret      4:"))
    assert "tpe+asha median 0.5, at 0 in 1" in at4 and "random+fifo median 10.0" in at4
    assert "mean difference tpe+asha - random+fifo -9.5" in at4 and "lower in 2" in at4
    at12 = next(ln for ln in lines if ln.startswith("regret     12:"))
    assert "random+fifo median 5.0, at 0 in 1" in at12  # a at 12 (0) and c (10)


@pytest.mark.parametrize("tpe_cell, rand_cell, interval", [
    ("a", "b", "0.00 to 0.00 (0: random+fifo's median never reached in those resamples)"),
    ("b", "a", "inf to inf (inf: tpe+asha's median never reached in those resamples)"),
    ("b", "b", "none (in every resample neither method's median reached the target)"),
    ("a", "a", "1.00 to 1.00")])
def test_an_interval_end_from_an_unreached_median_says_so(tpe_cell, rand_cell, interval):
    """A run that never reaches the target counts as infinitely long, so 0, inf and nan ends
    are not measured ratios; the line must not read like one."""
    done = {"tpe+asha": [[(4, tpe_cell, 0.5)]] * 3, "random+fifo": [[(4, rand_cell, 0.5)]] * 3}
    lines = summary_lines(done, {m: [8] * 3 for m in done}, [{"a": 0.9, "b": 0.1}] * 3,
                          [0.01], [])
    assert lines[3].endswith(f"searcher seeds): {interval}"), lines[3]


def test_each_sweep_is_judged_by_its_own_scores():
    """--holdout: sweep k is scored by the training seed it did not replay, so its target,
    its near-best cells and its regret are its own."""
    held0 = {"a": 0.50, "b": 0.49, "c": 0.40}  # what sweep 0 is judged by
    held1 = {"a": 0.40, "b": 0.52, "c": 0.48}  # sweep 1: b is best, a is 12 points down
    done = {"tpe+asha": [[(4, "a", 0.6)], [(4, "a", 0.6)]],
            "random+fifo": [[(4, "c", 0.5)], [(4, "b", 0.5)]]}
    spent = {"tpe+asha": [8, 8], "random+fifo": [8, 8]}
    lines = summary_lines(done, spent, [held0, held1], [0.01, 0.05], [4])
    text = "\n".join(lines)
    assert "within 0.010 of the best cell (1 to 2 of 3 cells):" in text  # {a, b} and {b}
    assert "within 0.050 of the best cell (2 of 3 cells):" in text  # {a, b} and {b, c}
    found = [ln for ln in lines if ln.startswith("found    tpe+asha")]
    assert "(1 of 2 runs reached it" in found[0]  # a is near-best for sweep 0 only
    at4 = next(ln for ln in lines if ln.startswith("regret      4:"))
    # tpe+asha: 0 and 12 points; random+fifo: c is 10 down for sweep 0, b is best for sweep 1
    assert "tpe+asha median 6.0, at 0 in 1" in at4 and "random+fifo median 5.0, at 0 in 1" in at4
    assert "mean difference tpe+asha - random+fifo +1.0" in at4


def test_holdout_replays_the_other_seeds_and_scores_by_the_held_out_one():
    from bench.hpo.replay import judging

    curves = pd.DataFrame(
        [(c, s, e, v) for c, runs in {"a": [(0.2, 0.6), (0.3, 0.4)], "b": [(0.1, 0.5),
                                                                        (0.2, 0.7)]}.items()
         for s, run in zip((0, 1), runs) for e, v in enumerate(run, 1)],
        columns=["cell", "seed", "epoch", "value"])
    (replayed, scores), = judging(curves, 2, [0, 1], holdout=False)
    assert replayed == {"a": [[0.2, 0.6], [0.3, 0.4]], "b": [[0.1, 0.5], [0.2, 0.7]]}
    assert scores == pytest.approx({"a": 0.5, "b": 0.6})  # means over both seeds
    held0, held1 = judging(curves, 2, [0, 1], holdout=True)
    assert held0[0] == {"a": [[0.3, 0.4]], "b": [[0.2, 0.7]]}  # seed 0 held out: seed 1 replayed
    assert held0[1] == pytest.approx({"a": 0.6, "b": 0.5})  # and seed 0's final values score
    assert held1[0] == {"a": [[0.2, 0.6]], "b": [[0.1, 0.5]]}
    assert held1[1] == pytest.approx({"a": 0.4, "b": 0.7})


@pytest.mark.parametrize("seed", [2, 3])
def test_a_held_out_sweep_replays_only_the_seeds_it_does_not_hold_out(seed):
    """On a shipped grid: searcher seed k holds out training seed k mod 2, so every trial that
    finishes shows the other seed's final value of its cell."""
    from bench.hpo.replay import judging, seed_sweeps

    raw, study, grid, _, args = _shipped("--engine", "sim", "--trials", "16",
                                         name="dsm-h200")
    curves = pd.read_csv(GRIDS / "dsm-h200" / "curves.csv")
    final = curves[curves["epoch"] == study.epochs].pivot(index="cell", columns="seed",
                                                         values="value")
    judged = judging(curves, study.epochs, [0, 1], holdout=True)
    out = seed_sweeps(seed, raw=raw, grid=grid, curves=[c for c, _ in judged],
                      epochs=study.epochs, args=args)
    replayed = 1 - seed % 2
    differ = 0
    for _, _, done, _, _ in out:
        assert done  # trials finished, under both methods
        for _, cell, value in done:
            assert value == final.loc[cell, replayed]
            differ += final.loc[cell, replayed] != final.loc[cell, seed % 2]
    assert differ  # the check could tell the two seeds apart


def _hash(i: int) -> int:
    import hashlib

    return int(hashlib.sha1(str(i).encode()).hexdigest(), 16)


def test_a_fresh_draw_has_its_cells_mean_seed_noise_and_run_shape():
    """--draws fresh: a new run of the cell, centred on its mean, as noisy as its seeds and
    shaped over the epochs like a stored run's deviation; never a value outside [0, 1]."""
    from bench.hpo.draws import fresh_draw

    runs = [[0.20, 0.40, 0.50], [0.20, 0.30, 0.40]]  # mean 0.2, 0.35, 0.45; std 0, .071, .071
    draws = pd.DataFrame([fresh_draw(runs, _hash(i)) for i in range(4000)])
    assert draws.mean().tolist() == pytest.approx([0.20, 0.35, 0.45], abs=0.005)
    assert draws.std().tolist() == pytest.approx([0.0, 0.0707, 0.0707], abs=0.004)
    dev = draws - [0.20, 0.35, 0.45]
    assert (dev[1] - dev[2]).abs().max() < 1e-12  # both runs deviate alike at epochs 2 and 3
    assert draws.round(9).drop_duplicates().shape[0] > 3900  # new runs, not the stored two
    assert fresh_draw([[0.3, 0.5]], 12345) == [0.3, 0.5]  # one run: nothing to draw around
    wide = [[0.0, 0.98], [0.0, 0.02]]
    assert all(0.0 <= v <= 1.0 for i in range(500) for v in fresh_draw(wide, _hash(i)))


@pytest.mark.parametrize("draws", ["runs", "fresh"])
def test_fresh_draws_give_each_trial_its_own_run_stored_draws_replay_the_grids(draws):
    from bench.hpo.engines import replay_sweep

    raw, study, grid, curves, args = _shipped("--engine", "sim", "--trials", "40",
                                              "--draws", draws, name="dsm-h200")
    r = replay_sweep(raw, grid, curves, "random", "fifo", 7, args)
    final = r[r["epoch"] == study.epochs]
    stored = final.apply(lambda x: x["value"] in [run[-1] for run in curves[x["cell"]]], axis=1)
    if draws == "runs":
        assert stored.all()
    else:  # cells whose runs differ: every trial a value of its own
        noisy = final[final["cell"].map(lambda c: len({run[-1] for run in curves[c]}) > 1)]
        assert len(noisy) > 10 and not stored[noisy.index].any()
        assert not noisy.duplicated(["cell", "value"]).any()
    again = replay_sweep(raw, grid, curves, "random", "fifo", 7, args)
    pd.testing.assert_frame_equal(r, again)  # a function of the searcher seed, as before


def test_the_cli_says_it_draws_fresh_runs_and_judges_by_the_cells_means(capsys):
    assert main(["replay", *_shipped_cli("dsm-h200"), "--engine", "sim", "--seeds", "0",
                 "--trials", "4", "--draws", "fresh"]) == 0
    out = capsys.readouterr().out
    assert "draws: every trial is a fresh run around its cell's stored ones" in out
    assert "target: the best cell's mean 0.462" in out and "tpe+asha seed 0:" in out


def test_spread_counts_distinct_cells_and_the_most_visited_share_per_sweep():
    visited = {"tpe+asha": [["a", "a", "a", "b"], ["a", "b", "b", "b"], ["c"] * 4],
               "random+fifo": [["a", "b", "c", "d"]] * 3}
    tpe, rand = spread_lines(visited, 10)
    assert "tpe+asha     median 2 distinct cells of 10" in tpe and "a median 75 %" in tpe
    assert "median 4 distinct cells of 10" in rand and "a median 25 %" in rand


def test_seed_lists_take_ranges():
    assert seed_list("--seeds", "0-3,7") == [0, 1, 2, 3, 7]
    from bench.errors import ConfigError
    with pytest.raises(ConfigError, match="--seeds 'a': give integers and ranges"):
        seed_list("--seeds", "a")


@pytest.mark.parametrize("args, message", [
    (["--cells", "optim.lr"], "--cells expects KEY=N"),
    (["--fix", "optim.momentum=0.9"], "--fix optim.momentum: not a searched key"),
    (["--cells", "optim.lr=3"], "optim.weight_decay: give its number of cells"),
    (["--seeds", "x"], "--seeds 'x'"),
    (["--tolerance", "0.01,x"], "--tolerance '0.01,x': give comma-separated numbers"),
    (["--budgets", "60,0"], "--budgets '60,0': every value must be > 0"),
    (["--workers", "0"], "--workers 0: give 1 or more"),
    (["--jobs", "2"], "--jobs 2: give 1 or more, and more than 1 only with --engine sim"),
    (["--holdout", "--train-seeds", "0"], "--holdout needs 2 or more --train-seeds (got '0')"),
    (["--holdout", "--draws", "fresh"], "--holdout and --draws fresh: give one"),
])
def test_replay_user_errors_are_one_line(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(main, ["replay", "--grid", str(tmp_path / "g"), *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "g").exists()  # refused before a grid folder is made


def _replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.hpo", "replay", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)


@pytest.mark.slow
def test_replay_trains_a_grid_once_and_replays_real_sweeps_on_it(tmp_path):
    grid = ["--grid", str(tmp_path / "g"), "--space", "search_spaces/smoke.yaml",
            "--cells", "loss.tau=1", "--fix", "optim.rho=0.05", "--train-seeds", "0,1"]
    p = _replay(*grid, "--seeds", "0", "--trials", "3", "--epoch-s", "0")
    assert p.returncode == 0, p.stderr
    assert "training the grid: 2 cells x 2 seeds = 4 runs" in p.stdout, p.stdout
    curves = pd.read_csv(tmp_path / "g" / "curves.csv")
    assert len(curves) == 2 * 2 * 2 and set(curves["seed"]) == {0, 1}  # cells x seeds x epochs
    for needle in ("target: the best cell's mean", "training-seed noise",
                   "tpe+asha seed 0: ", "random+fifo seed 0: ",
                   "found    ratio tpe+asha / random+fifo:",
                   "returned ratio tpe+asha / random+fifo:",
                   "regret      6: tpe+asha median",  # default budgets: 3 trials x 2 epochs
                   "visited  random+fifo  median"):
        assert needle in p.stdout, p.stdout
    # the second call reads the grid back: no training, only replays
    p = _replay(*grid, "--seeds", "1", "--trials", "2", "--epoch-s", "0")
    assert p.returncode == 0 and "training the grid" not in p.stdout, p.stdout + p.stderr
    assert "tpe+asha seed 1: " in p.stdout and "(1 of 1 runs" in p.stdout, p.stdout
    # judged by held-out training seeds: each seed's own target, one per held-out seed
    p = _replay(*grid, "--seeds", "0,1", "--trials", "2", "--engine", "sim", "--holdout")
    assert p.returncode == 0 and "training the grid" not in p.stdout, p.stdout + p.stderr
    for needle in ("target: held out training seed 0: the best cell's score",
                   "target: held out training seed 1: the best cell's score",
                   "random+fifo seed 1: ", "regret      4: tpe+asha median"):
        assert needle in p.stdout, p.stdout
    # another grid in the same folder is refused, in one line, before anything runs
    p = _replay(*grid[:-2], "--train-seeds", "0", "--seeds", "0")
    assert p.returncode == 2 and "holds another grid" in p.stderr, p.stderr


@pytest.mark.slow
def test_a_grid_trained_in_local_processes_needs_no_ray_matches_tune_and_resumes(tmp_path):
    """--workers: the same loop as a Tune trial, so the same curves as the Tune-trained grid."""
    grid = ["--space", "search_spaces/smoke.yaml", "--cells", "loss.tau=1",
            "--fix", "optim.rho=0.05", "--train-seeds", "0,1", "--train-only"]
    p = _replay("--grid", str(tmp_path / "tune"), *grid)
    assert p.returncode == 0, p.stderr
    # Ray and Optuna made unimportable, as on a GPU box that lacks them
    blocker = tmp_path / "noray"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nfor m in ('ray', 'optuna'):\n    sys.modules[m] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])}
    local = tmp_path / "local"
    p = _replay("--grid", str(local), *grid, "--workers", "2", env=env)
    assert p.returncode == 0, p.stderr
    assert "training the grid: 2 cells x 2 seeds = 4 runs" in p.stdout, p.stdout
    assert "grid run 4/4 done" in p.stdout and "target: the best cell's mean" in p.stdout

    def curves(d: Path) -> pd.DataFrame:
        c = pd.read_csv(d / "curves.csv")
        return c.sort_values(["cell", "seed", "epoch"], ignore_index=True)

    assert len(curves(local)) == 2 * 2 * 2
    pd.testing.assert_frame_equal(curves(local), curves(tmp_path / "tune"))
    # cut short: one run's curve and the table lost; the next call trains only that run
    first = curves(local)
    (local / "curves.csv").unlink()
    sorted((local / "local").glob("seed1-*.json"))[0].unlink()
    p = _replay("--grid", str(local), *grid, "--workers", "2", env=env)
    assert p.returncode == 0, p.stderr
    assert "3 of 4 grid runs already done" in p.stdout and "grid run 4/4 done" in p.stdout
    pd.testing.assert_frame_equal(curves(local), first)


GRIDS = ROOT / "results" / "grids"
# Every shipped grid: the replay flags that describe it, its cells and its best cell's mean
# (results/search-efficiency.md).
SHIPPED = {
    "adamw-h200": (["--cells", "optim.lr=8", "--cells", "optim.weight_decay=3",
                    "--cells", "model.dropout=2"], 96, 0.751),
    "dsm-h200": (["--space", str(GRIDS / "dsm-h200" / "space.yaml"),
                  *[a for k in ("tau", "eta", "ib_weight", "alpha", "beta")
                    for a in ("--cells", f"loss.{k}=2")],
                  "--fix", "loss.dsc_variant=figure"], 64, 0.462),
}


def _shipped_cli(name: str = "adamw-h200") -> list[str]:
    """The replay CLI's flags that open a shipped grid."""
    return ["--grid", str(GRIDS / name), *SHIPPED[name][0]]


def _shipped_args(*extra: str, name: str = "adamw-h200"):
    """The replay CLI's arguments for a shipped grid, plus `extra`."""
    import argparse

    from bench.hpo import replay

    ap = argparse.ArgumentParser()
    replay.add_arguments(ap)
    return ap.parse_args([*_shipped_cli(name), *extra])


def test_every_shipped_grid_is_listed_here():
    assert sorted(d.name for d in GRIDS.iterdir() if d.is_dir()) == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_grid_is_still_the_grid_of_its_space_and_complete(name):
    """The study's replay numbers come from these grids: a change to a space must show here."""
    from bench.hpo.grid_folder import open_grid

    args = _shipped_args(name=name)
    _, study, grid, seeds = open_grid(args, GRIDS / name)  # refuses another grid
    curves = pd.read_csv(GRIDS / name / "curves.csv")
    scores = cell_scores(curves, study.epochs, seeds)
    n_cells, target = SHIPPED[name][1:]
    assert len(grid.cells()) == n_cells and len(scores) == n_cells
    assert scores["mean"].notna().all() and len(seeds) >= 2
    assert set(scores.index) == {grid.snap(c) for c in grid.cells()}
    assert scores["mean"].max() == pytest.approx(target, abs=5e-4)  # the write-up's target


@pytest.mark.parametrize("name, early", [
    ("adamw-h200", "k=1 +0.29, k=2 +0.65, k=3 +0.84, k=4 +0.95, k=5 +0.98 (the space's ASHA "
                   "grace period: 3)"),
    ("dsm-h200", "k=1 -0.11, k=2 +0.52, k=3 +0.93 (the space's ASHA grace period: 1)")])
def test_a_grid_says_how_well_early_epochs_rank_its_runs(name, early, capsys):
    """What ASHA's grace period stops on: on the DSM grid epoch 1 ranks the runs at chance."""
    assert main(["replay", *_shipped_cli(name), "--train-only"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if ln.startswith("early epochs:"))
    assert line.endswith(early), line


def _shipped(*extra: str, name: str = "adamw-h200"):
    """(raw, study, grid, curves by cell, args) of a shipped grid, parsed as the CLI does."""
    from bench.hpo.grid_folder import open_grid
    from bench.hpo.replay import curves_by_cell

    args = _shipped_args(*extra, name=name)
    raw, study, grid, _ = open_grid(args, GRIDS / name)
    curves = curves_by_cell(pd.read_csv(GRIDS / name / "curves.csv"))
    return raw, study, grid, curves, args


def _by_trial_order(reports: pd.DataFrame) -> pd.DataFrame:
    """Trials renamed 0, 1, ... in the order they first report; the clock dropped."""
    order = {t: i for i, t in enumerate(dict.fromkeys(reports["trial"]))}
    return reports.assign(trial=reports["trial"].map(order)).drop(columns="t") \
        .reset_index(drop=True)


@pytest.mark.parametrize("name", sorted(SHIPPED))
@pytest.mark.parametrize("sampler, scheduler", [("tpe", "asha"), ("random", "fifo")])
def test_a_simulated_sweep_is_a_function_of_its_seed_and_keeps_the_sweep_rules(
        sampler, scheduler, name):
    from bench.hpo.engines import replay_sweep

    raw, study, grid, curves, args = _shipped("--engine", "sim", "--trials", "30", name=name)
    a = replay_sweep(raw, grid, curves, sampler, scheduler, 5, args)
    b = replay_sweep(raw, grid, curves, sampler, scheduler, 5, args)
    pd.testing.assert_frame_equal(a, b)
    assert a["trial"].nunique() == 30
    for t in sorted(set(a["t"])):  # never more trials at once than the space's concurrency
        assert ((a["t"] == t).sum()) <= study.concurrency
    last = a.groupby("trial")["epoch"].agg(["max", "count"])
    assert (last["max"] == last["count"]).all()  # epochs 1..k, none skipped
    if scheduler == "fifo":
        assert (last["max"] == study.epochs).all() and len(a) == 30 * study.epochs
    else:  # ASHA: a trial stops at a rung (grace period x reduction factor^k) or runs to the end
        rungs, r = {study.epochs}, study.scheduler.grace_period
        while r < study.epochs:
            rungs.add(r)
            r *= study.scheduler.reduction_factor
        assert set(last["max"]) <= rungs and study.epochs in set(last["max"])
        assert len(set(last["max"])) > 1  # some trials were stopped early
    c = replay_sweep(raw, grid, curves, sampler, scheduler, 6, args)
    assert not a[["cell", "value"]].equals(c[["cell", "value"]])  # another seed, another sweep


@pytest.mark.slow
def test_one_trial_at_a_time_the_simulated_sweep_is_the_tune_sweep_report_for_report():
    """At concurrency 1 timing decides nothing, so the virtual clock must give exactly what
    Tune's controller does: same suggestions, same ASHA stops, same values told to TPE."""
    import ray

    from bench.hpo.engines import replay_sweep
    from bench.search.run import init_ray

    init_ray(address=None, num_cpus=2, num_gpus=None)
    try:
        for sampler, scheduler in (("tpe", "asha"), ("random", "fifo")):
            out = {}
            for engine in ("tune", "sim"):
                raw, _, grid, curves, args = _shipped("--engine", engine, "--trials", "12",
                                                   "--concurrency", "1", "--epoch-s", "0")
                out[engine] = _by_trial_order(
                    replay_sweep(raw, grid, curves, sampler, scheduler, 3, args))
            pd.testing.assert_frame_equal(out["tune"], out["sim"])
            if scheduler == "asha":  # the comparison covered early stops
                assert (out["sim"].groupby("trial")["epoch"].max() == 3).any()
    finally:
        ray.shutdown()


def test_replaying_seeds_in_parallel_gives_the_serial_counts():
    args = [*_shipped_cli(), "--engine", "sim", "--seeds", "0-1",
            "--trials", "12"]

    def per_seed(p: subprocess.CompletedProcess) -> list[str]:
        assert p.returncode == 0, p.stderr
        return [line.rsplit(" (", 1)[0] for line in p.stdout.splitlines() if " seed " in line]

    serial, parallel = per_seed(_replay(*args)), per_seed(_replay(*args, "--jobs", "2"))
    assert len(serial) == 4 and serial == parallel


# Replay printouts pinned on the shipped grids: the study's numbers must not move when its code
# does. (name, grid, extra flags); the pinned text is tests/pins/replay-NAME.txt.
PINNED = [
    ("adamw", "adamw-h200", []),
    ("dsm", "dsm-h200", []),
    ("adamw-holdout", "adamw-h200", ["--holdout", "--tolerance", "0.01,0.05",
                                     "--budgets", "30,90"]),
    ("dsm-fresh", "dsm-h200", ["--draws", "fresh", "--tolerance", "0.01,0.05"]),
]
PINS = ROOT / "tests" / "pins"


def replay_printout(grid: str, extra: list[str], capsys, cli=main) -> str:
    """What `replay --engine sim --seeds 0-3 --trials 30` prints on a shipped grid, each sweep's
    wall time (the one thing that is not a function of the seeds) cut off."""
    assert cli(["replay", *_shipped_cli(grid), "--engine", "sim", "--seeds", "0-3",
                 "--trials", "30", *extra]) == 0
    out = capsys.readouterr().out
    return "".join(re.sub(r" \(\d+ s\)$", "", ln) + "\n" for ln in out.splitlines())


@pytest.mark.parametrize("name, grid, extra", PINNED, ids=[p[0] for p in PINNED])
def test_a_replay_on_a_shipped_grid_prints_the_pinned_numbers(name, grid, extra, capsys):
    assert replay_printout(grid, extra, capsys) == (PINS / f"replay-{name}.txt").read_text()


def test_bench_perf_replay_is_an_alias_printing_the_same_numbers(capsys):
    from bench.perf.__main__ import main as perf_main

    out = replay_printout("adamw-h200", [], capsys, cli=perf_main)
    assert out == (PINS / "replay-adamw.txt").read_text()
