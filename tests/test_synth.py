"""The synthetic DFER generator: determinism, DFEW layout, class prior, heterogeneity, CLI."""
from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.data.labels import EMOTIONS
from bench.data.synth import __main__ as synth_cli
from bench.data.synth import (
    ACTIONS, GENERATOR_VERSION, PRESETS, clip_rng, ensure_synthetic, generate, make_options,
    parse_class_prior, render_clip, sample_table,
)
from bench.errors import ConfigError, DataError, UnknownNameError

# Smaller than "ci" so the whole file runs in a few seconds.
TINY = dict(num_clips=40, num_subjects=10, duration_s=(0.6, 0.8), min_frames=6, max_frames=16, size=48)
SPLIT = Path("EmoLabel_DataSplit")


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "a", preset="ci", seed=3, workers=1, **TINY)


@pytest.fixture(scope="module")
def meta(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "metadata.csv")


@pytest.fixture(scope="module")
def default_table() -> pd.DataFrame:
    return sample_table(make_options("default"), 0)


def test_same_seed_is_byte_identical_and_other_seed_differs(root: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "b", preset="ci", seed=3, workers=1, **TINY)
    assert _same_tree(root, again)
    other = generate(tmp_path / "c", preset="ci", seed=4, workers=1, **TINY)
    assert not _same_tree(root, other)


def test_table_is_independent_of_worker_count_and_round_trips(meta: pd.DataFrame) -> None:
    table = sample_table(make_options("ci", **TINY), 3)
    pd.testing.assert_frame_equal(table.sort_index(axis=1), meta.sort_index(axis=1), check_dtype=False)
    row = meta.iloc[0].to_dict()  # a re-read row renders the same clip as the in-memory one
    a = render_clip(row, clip_rng(3, row["video_name"]))
    b = render_clip(table.iloc[0].to_dict(), clip_rng(3, row["video_name"]))
    assert a.shape == (row["num_frames"], 48, 48, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_layout_matches_dfew(root: Path, meta: pd.DataFrame) -> None:
    ids = set(meta["video_name"])
    assert sorted(ids) == list(range(1, len(meta) + 1)) and len(meta) == TINY["num_clips"]
    tests = []
    for k in range(1, 6):
        tr = pd.read_csv(root / SPLIT / "train(single-labeled)" / f"set_{k}.csv")
        te = pd.read_csv(root / SPLIT / "test(single-labeled)" / f"set_{k}.csv")
        for part in (tr, te):
            assert list(part.columns) == ["video_name", "label"]
            assert part["label"].between(1, len(EMOTIONS)).all()
        assert set(tr["video_name"]).isdisjoint(te["video_name"])
        assert set(tr["video_name"]) | set(te["video_name"]) == ids
        subjects = meta.set_index("video_name")["subject"]
        assert set(subjects[tr["video_name"]]).isdisjoint(subjects[te["video_name"]])
        tests.append(set(te["video_name"]))
    assert sum(len(t) for t in tests) == len(ids) and set().union(*tests) == ids
    assert (meta["emotion"] == [EMOTIONS[i - 1] for i in meta["label"]]).all()
    te = pd.read_csv(root / SPLIT / "test(single-labeled)" / "set_2.csv")
    assert (meta.set_index("video_name").loc[te["video_name"], "label"].values == te["label"].values).all()
    for row in meta.itertuples():
        folder = root / "Clip" / "clip_224x224" / f"{row.video_name:05d}"
        files = sorted(folder.iterdir())
        assert [f.name for f in files] == [f"{i:05d}.jpg" for i in range(1, row.num_frames + 1)]
    img = cv2.imread(str(files[-1]))
    assert img is not None and img.shape == (48, 48, 3)
    rec = json.loads((root / "synth.json").read_text())
    assert rec["version"] == GENERATOR_VERSION and rec["seed"] == 3 and rec["preset"] == "ci"
    assert rec["options"]["num_clips"] == TINY["num_clips"]
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_dfew_prior_makes_disgust_rare_and_prior_is_configurable(default_table: pd.DataFrame) -> None:
    share = default_table["label"].value_counts(normalize=True).reindex(range(1, 8), fill_value=0)
    expected = parse_class_prior("dfew")
    assert np.abs(share.values - expected).max() < 0.01
    assert 0.005 < share[6] < 0.02  # disgust
    uni = sample_table(make_options("ci", class_prior="uniform", **TINY), 0)
    counts = uni["label"].value_counts()
    assert counts.max() - counts.min() <= 1
    custom = sample_table(make_options("ci", class_prior="1,0,1,0,0,0,0", **TINY), 0)
    assert set(custom["emotion"]) == {"happy", "neutral"}


def test_folds_are_stratified(default_table: pd.DataFrame) -> None:
    per_fold = pd.crosstab(default_table["fold"], default_table["label"], normalize="index")
    assert (per_fold.max() - per_fold.min()).max() < 0.05


@pytest.mark.parametrize("prior", ["", "dfew,uniform", "1,2,3", "1,1,1,1,1,1,-1", "0,0,0,0,0,0,0", "a,b"])
def test_bad_class_prior_is_a_config_error(prior: str) -> None:
    with pytest.raises(ConfigError, match="class_prior"):
        make_options("ci", class_prior=prior)


def test_bad_option_and_preset_are_named() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'default'"):
        make_options("defualt")
    with pytest.raises(ConfigError, match="noise_scale"):
        make_options("ci", noise_scal=2.0)
    with pytest.raises(ConfigError, match="confusability"):
        make_options("ci", confusability=2.0)
    assert {"ci", "default", "large"} <= set(PRESETS.names())


def test_sources_differ_in_style(root: Path, meta: pd.DataFrame) -> None:
    """Mean colour and high-frequency noise of the first frame differ between sources."""
    stats = []
    for row in meta.itertuples():
        img = cv2.imread(str(root / "Clip" / "clip_224x224" / f"{row.video_name:05d}" / "00001.jpg"))
        img = img[..., ::-1].astype(np.float32)
        hf = np.abs(img - cv2.GaussianBlur(img, (0, 0), 1.5)).mean()
        stats.append((row.source, *img.reshape(-1, 3).mean(0), hf))
    df = pd.DataFrame(stats, columns=["source", "r", "g", "b", "hf"])
    by_source = df.groupby("source").mean()
    assert len(by_source) >= 4
    brightness = by_source[["r", "g", "b"]].mean(axis=1)
    assert brightness.max() - brightness.min() > 20
    assert by_source["hf"].max() > 1.5 * by_source["hf"].min()
    assert meta.groupby("source")["fps"].nunique().eq(1).all() and meta["fps"].nunique() >= 4


def test_subjects_stay_mostly_in_one_or_two_sources(default_table: pd.DataFrame) -> None:
    table = default_table
    assert table.groupby("subject")["source"].nunique().max() <= 2
    top = table.groupby("subject")["source"].agg(lambda s: s.value_counts().iloc[0] / len(s))
    assert top.mean() > 0.7


def _motion(emotion: str, intensity: float) -> float:
    """Mean abs difference between apex and onset frames of a clean clip."""
    opts = make_options("ci", num_clips=40, num_subjects=5, noise_scale=0.0, talk_level=0.0,
                        pose_range=0.0, distractor_level=0.0, source_spread=0.0,
                        intensity_range=(intensity, intensity), subtle_fraction=0.0)
    table = sample_table(opts, 1)
    row = table[table["emotion"] == emotion].iloc[0].to_dict()
    row["blink_rate"] = 0.0
    frames = render_clip(row, clip_rng(1, row["video_name"])).astype(np.float32)
    return float(np.abs(frames[row["apex"]] - frames[row["onset"]]).mean())


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "neutral"])
def test_expressions_move_the_face(emotion: str) -> None:
    strong = _motion(emotion, 1.0)
    assert strong > 0.3
    assert strong > 3 * _motion("neutral", 1.0)


def test_action_names_are_unique() -> None:
    assert len(set(ACTIONS)) == len(ACTIONS)


def test_ensure_synthetic_caches_by_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HDF_BENCH_CACHE", str(tmp_path))
    small = dict(TINY, num_clips=20, num_subjects=5)
    a = ensure_synthetic(preset="ci", seed=0, workers=1, **small)
    assert a.parent == tmp_path / "synth" and a.name.startswith(f"ci-seed0-v{GENERATOR_VERSION}-")
    stamp = (a / "synth.json").stat().st_mtime_ns
    assert ensure_synthetic(preset="ci", seed=0, **small) == a  # cached: not rewritten
    assert (a / "synth.json").stat().st_mtime_ns == stamp
    b = ensure_synthetic(preset="ci", seed=0, workers=1, **dict(small, noise_scale=2.0))
    assert b != a and (b / "synth.json").is_file()
    with pytest.raises(DataError, match="different data set"):
        ensure_synthetic(preset="ci", seed=1, root=a, **small)


@pytest.mark.parametrize("damage", ["no marker", "corrupt marker", "marker not UTF-8"])
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(damage: str, tmp_path: Path, monkeypatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A cache entry without a readable synth.json is debris of an interrupted write: rebuilt."""
    monkeypatch.setenv("HDF_BENCH_CACHE", str(tmp_path))
    small = dict(TINY, num_clips=20, num_subjects=5)
    entry = ensure_synthetic(preset="ci", seed=0, workers=1, **small)
    marker = entry / "synth.json"
    if damage == "no marker":
        marker.unlink()
    else:
        marker.write_bytes(b'{"version": 3, "pres' if damage == "corrupt marker" else b"\xff\xfe{}")
    assert ensure_synthetic(preset="ci", seed=0, workers=1, **small) == entry
    assert json.loads(marker.read_text())["seed"] == 0
    assert "incomplete or corrupt" in caplog.text and str(entry) in caplog.text
    left = sorted(p.name for p in entry.parent.iterdir() if p.suffix != ".lock")  # the lock stays
    assert left == [entry.name]  # no temp or old folder beside it


def test_sigterm_during_generation_leaves_nothing_and_exits_143(tmp_path: Path) -> None:
    """SIGTERM (kill, SLURM, systemd) stops the render pool, removes the hidden folder, one line."""
    import os
    import signal
    import time

    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "bench.data.synth", "--out", str(out),
                             "--preset", "ci", "--workers", "2", "--set", "num_clips=600",
                             "--set", "num_subjects=30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".o.tmp-*/Clip/*/*/*.jpg")):  # frames are being written
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "terminated (SIGTERM)", err
    assert not any(tmp_path.iterdir()), sorted(p.name for p in tmp_path.iterdir())


def test_generate_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        generate(tmp_path, preset="ci", seed=0, workers=1, **TINY)
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("args, needle", [
    (["--preset", "defualt"], "Did you mean 'default'"),
    (["--class-prior", "1,2"], "class_prior"),
    (["--set", "noise_scal=2"], "noise_scale"),
    (["--seed", "x"], "--seed"),
])
def test_cli_errors_exit_2_with_one_line(args: list[str], needle: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = synth_cli.main(["--out", str(tmp_path / "o"), *args])
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "o").exists()


def test_cli_process_refuses_foreign_folder_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    proc = subprocess.run([sys.executable, "-m", "bench.data.synth", "--out", str(tmp_path), "--preset", "ci"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "not empty" in proc.stderr


def test_cli_writes_and_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--out", str(tmp_path / "o"), "--preset", "ci", "--class-prior", "uniform", "--workers", "1"]
    args += [f"--set={k}={list(v) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    assert synth_cli.main(args) == 0
    out = capsys.readouterr().out
    assert "40 clips" in out and "disgust" in out
    rec = json.loads((tmp_path / "o" / "synth.json").read_text())
    assert rec["options"]["class_prior"] == "uniform" and rec["options"]["duration_s"] == [0.6, 0.8]


def test_head_motion_follows_the_expression_and_can_be_switched_off() -> None:
    table = sample_table(make_options("ci", num_clips=60, num_subjects=6), 2)
    heads = table[[f"head_{k}" for k in ("yaw", "roll", "scale", "tx", "ty")]].abs().sum(axis=1)
    assert (heads[table["emotion"] == "neutral"] == 0).all()
    assert (heads[(table["emotion"] != "neutral") & (table["intensity"] > 0.3)] > 0).all()
    off = sample_table(make_options("ci", num_clips=60, num_subjects=6, head_motion=0.0), 2)
    assert (off.filter(like="head_").to_numpy() == 0).all()


def test_holdout_sources_leave_the_train_split_only(root: Path) -> None:
    from bench.data import build_dataset

    kw = dict(root=str(root), preset="ci", data_seed=3, synth_options=TINY, cache=False)
    full = build_dataset("synthetic", split="train", **kw)
    held = int(full.meta["source"].iloc[0])
    train = build_dataset("synthetic", split="train", holdout_sources=[held], **kw)
    test = build_dataset("synthetic", split="test", holdout_sources=[held], **kw)
    assert held not in set(train.meta["source"])
    assert len(train) == int((full.meta["source"] != held).sum())
    assert len(test) == len(build_dataset("synthetic", split="test", **kw))
    with pytest.raises(ConfigError, match="out of range"):
        build_dataset("synthetic", split="train", holdout_sources=[99], **kw)


def test_accuracy_by_source_is_tidy_and_splits_seen_from_unseen() -> None:
    from bench.data.synth.holdout import accuracy_by_source, seen_unseen

    meta = pd.DataFrame({"source": [0, 0, 1, 1, 1], "source_name": ["a", "a", "b", "b", "b"]})
    y = np.array([1, 2, 3, 4, 5])
    p = np.array([1, 2, 3, 0, 0])
    table = accuracy_by_source(meta, y, p, held_out=[1])
    assert table.to_dict("records") == [
        {"source": 0, "source_name": "a", "seen": True, "clips": 2, "war": 1.0},
        {"source": 1, "source_name": "b", "seen": False, "clips": 3, "war": pytest.approx(1 / 3)}]
    out = seen_unseen(meta, y, p, [1])
    assert out["seen_war"] == 1.0 and out["drop"] == pytest.approx(2 / 3)
