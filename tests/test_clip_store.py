"""The clip store (decode once, one shared uint8 memmap) and the options around it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bench.config import load_config
from bench.data import build_dataset
from bench.data.clips import ClipDataset, model_input, to_tensor
from bench.data.records import ClipRecord, list_frames
from bench.data.store import open_store
from bench.data.video import jpeg_side, reduced_flag
from bench.data.workers import resolve_workers
from bench.errors import ConfigError

SIDE = 136  # frames on disk: >= 4x the 32 px training size, so reduced decoding applies
LENGTHS = {1: 10, 2: 23, 3: 5, 4: 17, 5: 9, 6: 14}  # variable clip lengths: offsets index
LABELS = {1: 1, 2: 4, 3: 6, 4: 7, 5: 3, 6: 2}
REPO = Path(__file__).resolve().parents[1]


def _frame(rng: np.random.Generator, k: int) -> np.ndarray:
    """Smooth content plus texture, different per frame.  # (SIDE, SIDE, 3) BGR"""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    base = np.stack([128 + 100 * np.sin(3 * xx + k), 128 + 100 * np.cos(2 * yy - k), 60 + 120 * xx * yy], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def dfew_big(tmp_path: Path) -> Path:
    """A DFEW-layout folder of SIDE px frames, clips 5 and 6 in the test split of fold 1."""
    root = tmp_path / "DFEW"
    rng = np.random.default_rng(0)
    for cid, n in LENGTHS.items():
        folder = root / "Clip" / "clip_224x224" / f"{cid:05d}"
        folder.mkdir(parents=True)
        for k in range(n):
            assert cv2.imwrite(str(folder / f"{k + 1:05d}.jpg"), _frame(rng, k))
    for split in ("train", "test"):
        folder = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
        folder.mkdir(parents=True)
        ids = [c for c in LENGTHS if (c >= 5) == (split == "test")]
        (folder / "set_1.csv").write_text("video_name,label\n" + "".join(f"{c},{LABELS[c]}\n" for c in ids))
    return root


def _records(root: Path) -> list[ClipRecord]:
    return [ClipRecord(clip_id=f"{c:05d}", label=LABELS[c] - 1,
                       frames=list_frames(root / "Clip" / "clip_224x224" / f"{c:05d}")) for c in LENGTHS]


@pytest.mark.parametrize("split", ["train", "test"])
def test_store_gives_the_jpeg_paths_tensors_at_full_size_decoding(dfew_big: Path, split: str) -> None:
    def make(store: bool) -> ClipDataset:
        return build_dataset("dfew", root=dfew_big, split=split, num_frames=8, size=32, augment=True,
                             seed=5, store=store, reduced_decode=False, cache=False)

    stored, jpeg = make(True), make(False)
    assert stored.store is not None and jpeg.store is None
    for epoch in (0, 1):
        stored.set_epoch(epoch)
        jpeg.set_epoch(epoch)
        for i in range(len(stored)):
            x, y = stored[i]
            assert x.dtype == torch.uint8 and x.shape == (8, 32, 32, 3)
            assert torch.equal(x, jpeg[i][0]) and y == jpeg[i][1]
    # the train and test splits of a fold share one store, which holds every clip
    other = build_dataset("dfew", root=dfew_big, split="test" if split == "train" else "train",
                          num_frames=8, size=32, store=True, reduced_decode=False)
    assert other.store.folder == stored.store.folder
    assert sorted(np.diff(stored.store.offsets).tolist()) == sorted(LENGTHS.values())
    # batches cross as uint8 and are normalised on the device exactly as to_tensor does
    batch = torch.utils.data.default_collate([stored[0], stored[1]])[0]  # (2, T, H, W, 3)
    assert torch.equal(model_input(batch, torch.device("cpu"))[1], to_tensor(stored[1][0].numpy()))


def test_store_is_shared_read_only_by_dataloader_workers(dfew_big: Path) -> None:
    ds = build_dataset("dfew", root=dfew_big, split="train", num_frames=4, size=32, augment=True)
    ds.store.clip(0)  # mapped here; a worker must not receive the mapping's bytes
    state = ds.store.__getstate__()
    assert state["_frames"] is None
    assert not ds.store.clip(0).flags.writeable
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    assert torch.equal(torch.cat([x for x, _ in loader]), torch.stack([ds[i][0] for i in range(len(ds))]))


def test_store_key_follows_size_decode_mode_and_file_changes(dfew_big: Path) -> None:
    def folder(**kw) -> Path:
        opts = dict(root=dfew_big, split="train", num_frames=4, size=32, reduced_decode=True) | kw
        return build_dataset("dfew", **opts).store.folder

    first = folder()
    assert folder() == first
    assert folder(size=64) != first and folder(reduced_decode=False) != first
    frame = dfew_big / "Clip/clip_224x224/00003/00002.jpg"
    frame.write_bytes(cv2.imencode(".jpg", np.zeros((SIDE, SIDE, 3), np.uint8))[1].tobytes())
    assert folder() != first  # a changed file: a new store


def test_reduced_decode_has_the_right_shape_and_close_values(dfew_big: Path) -> None:
    data = (dfew_big / "Clip/clip_224x224/00001/00001.jpg").read_bytes()
    assert jpeg_side(data) == SIDE
    assert reduced_flag(SIDE, 32) == cv2.IMREAD_REDUCED_COLOR_4  # 136 >= 4 * 32, < 8 * 32
    assert reduced_flag(SIDE, 64) == cv2.IMREAD_REDUCED_COLOR_2
    assert reduced_flag(SIDE, 112) == cv2.IMREAD_COLOR
    full, reduced = (build_dataset("dfew", root=dfew_big, split="test", num_frames=8, size=32,
                                   reduced_decode=r) for r in (False, True))
    assert full.store.folder != reduced.store.folder
    for i in range(len(full)):
        a, b = full.get_frames(i), reduced.get_frames(i)
        assert a.shape == b.shape == (8, 32, 32, 3) and b.dtype == np.uint8
        diff = np.abs(a.astype(int) - b.astype(int))
        assert 0 < diff.mean() < 4, diff.mean()  # decoded differently, but the same picture
    jpeg = build_dataset("dfew", root=dfew_big, split="test", num_frames=8, size=32, store=False,
                         reduced_decode=True)  # the JPEG path decodes the same way
    assert all(np.array_equal(jpeg.get_frames(i), reduced.get_frames(i)) for i in range(len(jpeg)))


_SLOW_BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import bench.data.frames as frames
    import bench.data.store as store
    from bench.data.records import ClipRecord, list_frames
    decode = frames.decode_clip
    done = []
    def slow(rec, **kw):
        out = decode(rec, **kw)
        done.append(rec)
        print("decoded", len(done), flush=True)
        time.sleep(float(sys.argv[3]))
        return out
    store.decode_clip = slow
    root = Path(sys.argv[1])
    recs = [ClipRecord(clip_id=p.name, label=0, frames=list_frames(p))
            for p in sorted((root / "Clip" / "clip_224x224").iterdir())]
    s = store.open_store(recs, size=32, reduced=False, root=Path(sys.argv[2]))
    print("store", s.folder, flush=True)
""")


def _builder(dfew: Path, cache: Path, pause: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SLOW_BUILDER, str(dfew), str(cache), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def test_a_builder_killed_mid_build_leaves_a_partial_store_that_is_rebuilt(dfew_big: Path,
                                                                          tmp_path: Path, caplog) -> None:
    cache = tmp_path / "cache"
    proc = _builder(dfew_big, cache, 0.5)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until it is half-way through the clips
        if line.startswith("decoded 3"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    clips = cache / "clips"
    left = [p for p in clips.iterdir() if ".tmp-" in p.name]
    assert len(left) == 1 and (left[0] / "frames.u8").is_file()  # the killed build's leftovers
    assert not [p for p in clips.iterdir() if not p.name.startswith(".")]  # no store in place
    recs = _records(dfew_big)
    with caplog.at_level("WARNING", logger="bench.data.store"):
        store = open_store(recs, size=32, reduced=False, root=cache)
    assert "partial clip store" in caplog.text
    assert not [p for p in clips.iterdir() if ".tmp-" in p.name]
    jpeg = ClipDataset(recs, num_frames=8, size=32, train=False, reduced_decode=False)
    stored = ClipDataset(recs, num_frames=8, size=32, train=False, store=store)
    assert all(np.array_equal(jpeg.get_frames(i), stored.get_frames(i)) for i in range(len(recs)))
    # a store damaged in place (frames cut short) is detected too; the old mapping is not read again
    del stored
    with open(store.folder / "frames.u8", "r+b") as f:
        f.truncate(1000)
    with caplog.at_level("WARNING", logger="bench.data.store"):
        again = open_store(recs, size=32, reduced=False, root=cache)
    assert "incomplete or damaged" in caplog.text
    assert all(np.array_equal(jpeg.get_frames(i), ClipDataset(recs, num_frames=8, size=32, train=False,
                                                              store=again).get_frames(i))
               for i in range(len(recs)))


def test_concurrent_builders_build_once(dfew_big: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    procs = [_builder(dfew_big, cache, 0.05) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    decoded = [sum(line.startswith("decoded") for line in o.splitlines()) for o, _ in outs]
    assert sorted(decoded) == [0, len(LENGTHS)]  # one built it, the other waited and read it
    folders = {line for o, _ in outs for line in o.splitlines() if line.startswith("store")}
    assert len(folders) == 1


def _read_only_cmd(folder: Path, argv: list[str]) -> list[str] | None:
    """`argv` run with `folder` read-only: chmod for a normal user; for root (whom chmod
    does not stop), a read-only bind mount in a private mount namespace."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return argv
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-r", "-m", "sh", "-c",
                            f"mount --bind -o ro '{folder}' '{folder}' && ! touch '{folder}/x'"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    script = f"mount --bind -o ro '{folder}' '{folder}' && exec \"$@\""
    return ["unshare", "-r", "-m", "sh", "-c", script, "sh", *argv]


def test_a_read_only_cache_is_one_line_and_exit_2(dfew_big: Path, tmp_path: Path) -> None:
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "bench.train", "--method", "x3d_ce", "--out", str(runs), "--quiet",
            "--set", "data.name=dfew", "--set", f"data.root={dfew_big}", "--set", "data.size=32",
            "--set", "train.epochs=1"]
    cmd = _read_only_cmd(cache, argv)
    if cmd is None:
        pytest.skip("running as root without user namespaces: no way to make a folder read-only")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                           env={**os.environ, "HDF_BENCH_CACHE": str(cache)})
    finally:
        cache.chmod(0o755)
    err = p.stderr.strip()
    assert p.returncode == 2, p.stderr[-2000:]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(cache) in err and "HDF_BENCH_CACHE" in err, err
    assert not any(cache.iterdir())  # nothing half-written
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("value", [-1, -3])
def test_negative_workers_are_refused_in_one_line(value: int) -> None:
    with pytest.raises(ConfigError, match="data.workers must be >= 0 or 'auto'") as err:
        load_config(overrides=[f"data.workers={value}"])
    assert "\n" not in str(err.value)


def test_auto_workers_follow_the_device() -> None:
    cfg = load_config(overrides=["data.workers=auto"])
    assert cfg.data.workers == "auto"
    assert resolve_workers("auto", device=torch.device("cpu")) == 0
    assert resolve_workers(3, device=torch.device("cpu")) == 3
    assert 0 <= resolve_workers("auto", device=torch.device("cuda")) <= len(os.sched_getaffinity(0)) - 1
    with pytest.raises(ConfigError, match="data.workers"):
        load_config(overrides=["data.workers=many"])


def test_the_frame_cache_decodes_only_the_sampled_frames(dfew_big: Path, monkeypatch) -> None:
    import bench.data.frames as frames

    calls: list[str] = []
    real = frames.read_frame

    def counting(path, size=None, **kw):
        calls.append(Path(path).name)
        return real(path, size, **kw)

    monkeypatch.setattr(frames, "read_frame", counting)
    recs = _records(dfew_big)
    ds = ClipDataset(recs, num_frames=4, size=32, train=True, cache=True)
    n = len(recs[1].frames)  # 23 frames, 4 sampled
    ds[1]
    assert len(calls) == 4 < n
    ds[1]  # the same item again: all cached
    assert len(calls) == 4
    ds.set_epoch(1)
    ds[1]  # other offsets: only the new frames are decoded
    assert 4 <= len(calls) <= 8
    assert len(set(calls)) == len(calls)  # no frame decoded twice
    lazy = ds.get_frames(1)
    uncached = ClipDataset(recs, num_frames=4, size=32, train=True, cache=False)
    assert np.array_equal(lazy, uncached.get_frames(1))
