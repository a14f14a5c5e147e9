"""Data loading on small real-layout fixtures: JPEG folders, CSVs, mp4/avi files."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch

from bench.data import (
    DATASETS,
    EMOTIONS,
    ClipDataset,
    ClipRecord,
    build_dataset,
    build_train_transform,
    join_metadata,
    read_dfew_split,
    read_ferv39k_split,
    read_video_list,
    to_tensor,
    uniform_indices,
)
from bench.data.clips import model_input
from bench.data.records import list_frames
from bench.errors import ConfigError, DataError

FRAME = 24  # side of the fixture frames on disk


# -- fixture builders (real layouts) -----------------------------------------

def gray(k: int) -> int:
    """Frame k of a clip is a flat gray whose level identifies k after JPEG."""
    return 8 + 12 * k


def write_frames(folder: Path, n: int, *, names: Callable[[int], str] = lambda k: f"{k + 1:05d}.jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        img = np.full((FRAME, FRAME, 3), gray(k), np.uint8)
        img[:, : FRAME // 2, 2] = 0  # left half has no red (BGR) -> detect channel order
        assert cv2.imwrite(str(folder / names(k)), img)


def write_dfew(root: Path, clips: dict[int, tuple[int, int]], *, test_ids: tuple[int, ...] = ()) -> Path:
    """clips: id -> (DFEW label 1..7, frame count); fold 1 only."""
    for cid, (_, n) in clips.items():
        write_frames(root / "Clip" / "clip_224x224" / f"{cid:05d}", n)
    for split in ("train", "test"):
        folder = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
        folder.mkdir(parents=True, exist_ok=True)
        ids = [c for c in clips if (c in test_ids) == (split == "test")]
        # mix plain ints and zero-padded names, as the real files do
        lines = ["video_name,label"] + [
            f"{c if i % 2 else f'{c:05d}'},{clips[c][0]}" for i, c in enumerate(ids)
        ]
        (folder / "set_1.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def dfew_root(tmp_path: Path) -> Path:
    clips = {1: (1, 10), 2: (4, 20), 3: (6, 5), 4: (7, 12), 5: (3, 9)}
    return write_dfew(tmp_path / "DFEW", clips, test_ids=(5,))


FERV_ROWS = [  # alphabetical index != DFEW index for every one of these
    ("Crime/Angry/0063", "Angry", 9),
    ("Crime/Disgust/0001", "Disgust", 12),
    ("Daily/Fear/0002", "Fear", 8),
    ("Daily/Surprise/0010", "Surprise", 4),
    ("Crime/Happy/0003", "happy", 10),
]


@pytest.fixture
def ferv_root(tmp_path: Path) -> Path:
    root = tmp_path / "FERV39k"
    for rel, _, n in FERV_ROWS:
        write_frames(root / "2_ClipsforFaceCrop" / rel, n)
    setup = root / "4_setups" / "All_scenes"
    setup.mkdir(parents=True)
    (setup / "train_All.csv").write_text("".join(f"{r} {name}\n" for r, name, _ in FERV_ROWS))
    (setup / "test_All.csv").write_text(f"{FERV_ROWS[0][0]} {FERV_ROWS[0][1]}\n")
    return root


def write_video(path: Path, n: int, codec: str) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width = stream.height = FRAME
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for k in range(n):
            rgb = np.full((FRAME, FRAME, 3), gray(k), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def video_list(tmp_path: Path) -> Path:
    write_video(tmp_path / "vids" / "a.mp4", 12, "mpeg4")
    write_video(tmp_path / "vids" / "b.avi", 6, "mjpeg")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("path,label\nvids/a.mp4,Angry\nvids/b.avi,7\n")
    return csv_path


def levels(frames: np.ndarray) -> list[int]:
    """Recover frame indices k from the gray levels of (T, H, W, 3) RGB frames."""
    return [round((float(f[:, :, 1].mean()) - 8) / 12) for f in frames]


# -- sampling and normalisation ----------------------------------------------

@pytest.mark.parametrize("n, t", [(16, 16), (77, 16), (10, 8), (847, 16), (9, 8)])
def test_uniform_indices_follow_i_n_over_t(n: int, t: int) -> None:
    assert uniform_indices(n, t).tolist() == [i * n // t for i in range(t)]


@pytest.mark.parametrize("n, t", [(16, 16), (77, 16), (10, 8), (9, 8)])
def test_uniform_offsets_stay_in_their_segment(n: int, t: int) -> None:
    rng = np.random.default_rng(0)
    draws = np.stack([uniform_indices(n, t, rng=rng) for _ in range(200)])  # (200, t)
    for i in range(t):
        seg = set(range(i * n // t, (i + 1) * n // t))
        assert set(draws[:, i].tolist()) == seg  # every frame of the segment, nothing else
    again = uniform_indices(n, t, rng=np.random.default_rng(5))
    assert again.tolist() == uniform_indices(n, t, rng=np.random.default_rng(5)).tolist()


def test_short_clips_are_padded() -> None:
    assert uniform_indices(3, 8).tolist() == [0, 1, 2, 2, 2, 2, 2, 2]
    assert uniform_indices(3, 8, pad="loop").tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert uniform_indices(3, 8, rng=np.random.default_rng(0)).tolist() == [0, 1, 2, 2, 2, 2, 2, 2]
    with pytest.raises(ValueError):
        uniform_indices(0, 8)


def test_to_tensor_layout_and_normalisation() -> None:
    frames = np.zeros((4, 5, 6, 3), np.uint8)
    frames[2, :, :, 1] = 255
    x = to_tensor(frames)
    assert x.shape == (3, 4, 5, 6) and x.dtype == torch.float32 and x.is_contiguous()
    assert torch.allclose(x[0], torch.tensor(-0.45 / 0.225))
    assert torch.allclose(x[1, 2], torch.tensor((1 - 0.45) / 0.225))
    with pytest.raises(ValueError):
        to_tensor(frames.astype(np.float32))


def test_frames_sort_numerically(tmp_path: Path) -> None:
    write_frames(tmp_path / "c", 12, names=lambda k: f"img_{k + 1}.jpg")
    assert [p.name for p in list_frames(tmp_path / "c")][8:11] == ["img_9.jpg", "img_10.jpg", "img_11.jpg"]


# -- readers ------------------------------------------------------------------

def test_read_dfew_split(dfew_root: Path) -> None:
    train = read_dfew_split(dfew_root, fold=1, split="train")
    assert [r.clip_id for r in train] == ["00001", "00002", "00003", "00004"]
    assert [r.label for r in train] == [0, 3, 5, 6]  # 1-based CSV labels minus one
    assert [len(r.frames or []) for r in train] == [10, 20, 5, 12]
    test = read_dfew_split(dfew_root, fold=1, split="test")
    assert [(r.clip_id, r.label) for r in test] == [("00005", 2)]


@pytest.mark.parametrize("fold", [0, 6, "1"])
def test_dfew_fold_outside_1_to_5_is_a_config_error(dfew_root: Path, fold: object) -> None:
    with pytest.raises(ConfigError, match="fold"):
        read_dfew_split(dfew_root, fold=fold, split="train")  # type: ignore[arg-type]


def test_read_ferv39k_maps_names_to_dfew_order(ferv_root: Path) -> None:
    records = read_ferv39k_split(ferv_root, split="train")
    assert [r.label for r in records] == [EMOTIONS.index(name.lower()) for _, name, _ in FERV_ROWS]
    alphabetical = sorted(EMOTIONS)
    assert all(r.label != alphabetical.index(EMOTIONS[r.label]) for r in records[:4])
    assert records[0].clip_id == "Crime/Angry/0063" and records[0].meta["scene"] == "Crime"


def test_read_video_list(video_list: Path) -> None:
    records = read_video_list(video_list)
    assert [(r.clip_id, r.label) for r in records] == [("vids/a.mp4", 3), ("vids/b.avi", 6)]
    assert records[0].video == video_list.parent / "vids" / "a.mp4"


def _break(root: Path, rel: str, text: str | None) -> Path:
    """Overwrite (or delete when text is None) a file or folder under root."""
    path = root / rel
    if text is None:
        if path.is_dir():
            for p in path.iterdir():
                p.unlink()
            path.rmdir()
        else:
            path.unlink()
    else:
        path.write_text(text)
    return path


DFEW_TRAIN = "EmoLabel_DataSplit/train(single-labeled)/set_1.csv"
DFEW_BAD = [  # (what to break, new content, substrings the one-line message must hold)
    (DFEW_TRAIN, "video,label\n1,1\n", ["set_1.csv:1", "header"]),
    (DFEW_TRAIN, "video_name,label\n1,1\n2,happy\n", ["set_1.csv:3", "happy"]),
    (DFEW_TRAIN, "video_name,label\n1,8\n", ["set_1.csv:2", "1..7"]),
    (DFEW_TRAIN, "video_name,label\n1,0\n", ["set_1.csv:2", "1..7"]),
    (DFEW_TRAIN, "video_name,label\nabc,1\n", ["set_1.csv:2", "abc"]),
    (DFEW_TRAIN, "video_name,label\n1,1,3\n", ["set_1.csv:2", "2 fields"]),
    (DFEW_TRAIN, "video_name,label\n99,1\n", ["set_1.csv:2", "00099", "does not exist"]),
    (DFEW_TRAIN, None, ["set_1.csv", "does not exist"]),
    ("EmoLabel_DataSplit/train(single-labeled)", None, ["train(single-labeled)", "does not exist"]),
]


@pytest.mark.parametrize("rel, text, needles", DFEW_BAD)
def test_dfew_bad_input_names_the_file(dfew_root: Path, rel: str, text: str | None, needles: list[str]) -> None:
    if rel.endswith("(single-labeled)"):
        _break(dfew_root, DFEW_TRAIN, None)
    _break(dfew_root, rel, text)
    with pytest.raises(DataError) as err:
        read_dfew_split(dfew_root, fold=1, split="train")
    msg = str(err.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg


def test_missing_roots_and_empty_clip_folder(tmp_path: Path, dfew_root: Path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        read_dfew_split(tmp_path / "nowhere", fold=1, split="train")
    with pytest.raises(DataError, match="nowhere"):
        read_ferv39k_split(tmp_path / "nowhere", split="train")
    with pytest.raises(DataError, match="nowhere.csv"):
        read_video_list(tmp_path / "nowhere.csv")
    _break(dfew_root, "Clip/clip_224x224/00002", None)
    (dfew_root / "Clip/clip_224x224/00002").mkdir()
    with pytest.raises(DataError, match=r"set_1.csv:3: clip folder .*00002 has no"):
        read_dfew_split(dfew_root, fold=1, split="train")


def test_skip_mode_counts_bad_rows(dfew_root: Path) -> None:
    _break(dfew_root, DFEW_TRAIN, "video_name,label\n1,1\n2,9\n77,2\n4,x\n3,6\n")
    records = read_dfew_split(dfew_root, fold=1, split="train", on_error="skip")
    assert [r.clip_id for r in records] == ["00001", "00003"]
    assert [item.rsplit(":", 1)[1] for item, _ in records.skipped] == ["3", "4", "5"]
    ds = ClipDataset(records, num_frames=4, size=16, train=False)
    assert len(ds.skipped) == 3
    with pytest.raises(ConfigError, match="on_error"):
        read_dfew_split(dfew_root, fold=1, split="train", on_error="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize("line, needle", [
    ("Crime/Angry/0063 Furious", "'Furious'"),
    ("Crime/Angry/0063 3", "'3'"),  # integer orders differ between code bases: names only
    ("Crime/Angry/0063", "expected"),
    ("Crime/Angry/9999 Angry", "does not exist"),
])
def test_ferv39k_bad_rows(ferv_root: Path, line: str, needle: str) -> None:
    csv_path = ferv_root / "4_setups/All_scenes/test_All.csv"
    csv_path.write_text(f"{FERV_ROWS[1][0]} Disgust\n{line}\n")
    with pytest.raises(DataError, match="test_All.csv:2") as err:
        read_ferv39k_split(ferv_root, split="test")
    assert needle in str(err.value)
    assert len(read_ferv39k_split(ferv_root, split="test", on_error="skip").skipped) == 1


@pytest.mark.parametrize("text, needle", [
    ("file,label\nvids/a.mp4,1\n", "list.csv:1"),
    ("path,label\nvids/a.mp4,grumpy\n", "list.csv:2"),
    ("path,label\nvids/missing.mp4,1\n", "missing.mp4"),
    ("path,label\nvids/a.mp4,1,extra\n", "list.csv:2: expected 2 fields 'path,label', got 3"),
])
def test_video_list_bad_rows(video_list: Path, text: str, needle: str) -> None:
    video_list.write_text(text)
    with pytest.raises(DataError, match=needle):
        read_video_list(video_list)


# -- datasets end to end ------------------------------------------------------

def _has_synth() -> bool:
    try:
        return hasattr(importlib.import_module("bench.data.synth"), "ensure_synthetic")
    except ImportError:
        return False


HAS_SYNTH = _has_synth()


@pytest.fixture
def options(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], dict]:
    """Per-dataset options pointing at a fixture in the real layout."""
    def make(name: str) -> dict:
        if name == "dfew":
            return {"root": request.getfixturevalue("dfew_root")}
        if name == "ferv39k":
            return {"root": request.getfixturevalue("ferv_root")}
        if name == "video":
            return {"list": request.getfixturevalue("video_list")}
        if not HAS_SYNTH:
            pytest.skip("bench.data.synth.ensure_synthetic not available yet")
        small = {"num_clips": 20, "num_subjects": 5, "size": 32, "min_frames": 8, "max_frames": 12}
        return {"root": tmp_path / "synth", "preset": "ci", "synth_options": small}
    return make


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_end_to_end(name: str, options: Callable[[str], dict]) -> None:
    ds = build_dataset(name, split="train", num_frames=6, size=16, augment=True, seed=3, **options(name))
    x, y = ds[0]
    assert x.shape == (6, 16, 16, 3) and x.dtype == torch.uint8  # normalised on the device
    assert isinstance(y, int) and y == ds.labels[0]
    assert ds.labels.dtype == np.int64 and sum(ds.class_counts()) == len(ds) and len(ds.class_counts()) == 7
    assert torch.equal(ds[0][0], x)  # same (seed, epoch, index) -> same item
    meta = ds.meta
    assert list(meta["clip_id"]) == [r.clip_id for r in ds.records] and list(meta["label"]) == list(ds.labels)
    if name == "synthetic":  # metadata.csv joined, for grouping by source/subject
        assert {"source", "subject", "intensity"} <= set(meta.columns)
    frames = ds.get_frames(0)
    assert frames.shape == (6, 16, 16, 3) and frames.dtype == np.uint8
    ev = build_dataset(name, split="test", num_frames=6, size=16, augment=True, **options(name))
    assert ev.transform is None and not ev.train  # augmentation is for training only
    assert torch.equal(ev[0][0], torch.from_numpy(ev.get_frames(0)))
    batch = torch.utils.data.default_collate([ev[0], ev[0]])[0]  # (2, T, H, W, 3) uint8
    assert torch.equal(model_input(batch, torch.device("cpu"))[0], to_tensor(ev.get_frames(0)))


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_rejects_bad_options(name: str) -> None:
    with pytest.raises(ConfigError, match="num_frame"):
        build_dataset(name, split="train", num_frame=8)
    if name != "synthetic":
        with pytest.raises(ConfigError, match="root|list"):
            build_dataset(name, split="train")


def test_frames_are_sampled_uniformly_in_rgb_order(dfew_root: Path) -> None:
    ds = build_dataset("dfew", root=dfew_root, split="train", num_frames=4, size=FRAME)
    assert levels(ds.get_frames(1)) == [0, 5, 10, 15]  # clip 2 has 20 frames
    assert levels(ds.get_frames(2)) == [0, 1, 2, 3]  # 5 frames -> 4 of them
    left, right = ds.get_frames(1)[0, :, 2:8], ds.get_frames(1)[0, :, -8:-2]
    assert left[..., 0].mean() < 3 and right[..., 0].mean() > 3  # red removed left: RGB, not BGR


def test_video_frames_decode_in_order(video_list: Path) -> None:
    ds = build_dataset("video", list=video_list, split="test", num_frames=4, size=FRAME)
    assert levels(ds.get_frames(0)) == [0, 3, 6, 9]
    assert levels(ds.get_frames(1)) == [0, 1, 3, 4]  # 6 frames: i*6//4


def test_training_randomness_depends_on_seed_epoch_index_only(dfew_root: Path) -> None:
    def make(seed: int) -> ClipDataset:
        return build_dataset("dfew", root=dfew_root, split="train", num_frames=4, size=16, augment=True, seed=seed)

    a, b = make(0), make(0)
    first = [a[i][0] for i in range(len(a))]
    assert all(torch.equal(b[i][0], first[i]) for i in reversed(range(len(b))))  # order does not matter
    a.set_epoch(1)
    assert not all(torch.equal(a[i][0], first[i]) for i in range(len(a)))
    a.set_epoch(0)
    assert all(torch.equal(a[i][0], first[i]) for i in range(len(a)))
    assert not all(torch.equal(make(1)[i][0], first[i]) for i in range(len(a)))
    loader = torch.utils.data.DataLoader(make(0), batch_size=2, num_workers=2)
    assert torch.equal(torch.cat([x for x, _ in loader]), torch.stack(first))


def test_cache_avoids_decoding_again(dfew_root: Path) -> None:
    cached = build_dataset("dfew", root=dfew_root, split="test", num_frames=4, size=16, store=False)
    uncached = build_dataset("dfew", root=dfew_root, split="test", num_frames=4, size=16,
                             cache=False, store=False)
    x, _ = cached[0]
    assert torch.equal(uncached[0][0], x)
    _break(dfew_root, "Clip/clip_224x224/00005", None)
    assert torch.equal(cached[0][0], x)
    with pytest.raises(DataError, match="00005"):
        uncached[0]


# -- augmentation -------------------------------------------------------------

def test_augmentation_uses_one_draw_per_clip() -> None:
    aug = build_train_transform(32)
    t = np.arange(8)[:, None, None, None]
    frames = np.zeros((8, 32, 32, 3), np.uint8) + (20 + 5 * t).astype(np.uint8)  # (T, H, W, 3)
    frames[:, :, 16:] += 150  # bright right half, darker each frame
    flips = []
    for seed in range(12):
        out = aug(frames, np.random.default_rng(seed))
        assert out.shape == frames.shape and out.dtype == np.uint8
        flipped = out[:, :, :8].mean(axis=(1, 2, 3)) > out[:, :, -8:].mean(axis=(1, 2, 3))  # (T,)
        assert flipped.all() or not flipped.any()
        flips.append(bool(flipped[0]))
        same = aug(np.repeat(frames[:1], 8, axis=0), np.random.default_rng(seed))
        assert (same == same[:1]).all()  # same crop, flip and colour on every frame
        assert np.array_equal(aug(frames, np.random.default_rng(seed)), out)
    assert 0 < sum(flips) < len(flips)


# -- corrupt data at load time ------------------------------------------------

DAMAGE = {
    "garbage": lambda data: b"\x00garbage" * 10,
    "empty": lambda data: b"",
    # libjpeg decodes the first half (grey below), warns without the file name, returns an image
    "truncated": lambda data: data[: len(data) // 2],
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_corrupt_jpeg_raises_or_is_replaced(dfew_root: Path, damage: str) -> None:
    bad = dfew_root / "Clip/clip_224x224/00002/00006.jpg"  # frame 5 of 20: sampled at T=4
    bad.write_bytes(DAMAGE[damage](bad.read_bytes()))
    ds = build_dataset("dfew", root=dfew_root, split="train", num_frames=4, size=FRAME)
    with pytest.raises(DataError, match="00002/00006.jpg") as err:
        ds.get_frames(1)
    assert "\n" not in str(err.value)
    for cache, store in ((True, False), (False, False), (True, True)):
        skip = build_dataset("dfew", root=dfew_root, split="train", num_frames=4, size=FRAME,
                             cache=cache, on_error="skip", store=store)
        assert levels(skip.get_frames(1)) == [0, 4, 10, 15]  # nearest readable neighbour
        assert [item for item, _ in skip.skipped] == [str(bad)]
        skip.get_frames(1)
        assert len(skip.skipped) == 1  # counted once


@pytest.mark.parametrize("store", [False, True])
def test_preload_drops_unreadable_clips_in_skip_mode(dfew_root: Path, store: bool) -> None:
    for p in (dfew_root / "Clip/clip_224x224/00003").iterdir():
        p.write_bytes(b"not a jpeg")
    ds = build_dataset("dfew", root=dfew_root, split="train", num_frames=4, size=16,
                       on_error="skip", store=store)
    with pytest.raises(DataError, match="00003"):
        ds[2]
    assert ds.preload() == 1
    assert [r.clip_id for r in ds.records] == ["00001", "00002", "00004"]
    assert len(ds._cache) == (0 if store else 3)  # the store needs no per-process copy
    strict = build_dataset("dfew", root=dfew_root, split="train", num_frames=4, size=16, store=store)
    with pytest.raises(DataError, match="00003"):
        strict.preload()


@pytest.mark.parametrize("name, data, ok", [
    ("f.jpg", None, True),
    ("f.jpg", lambda d: d + b"\x00" * 16, True),      # padding after the end marker is harmless
    ("f.jpg", lambda d: d[:-2], False),                # end marker cut off
    ("f.png", lambda d: d[: len(d) // 2], False),
])
def test_read_frame_refuses_truncated_images(tmp_path: Path, name: str, data, ok: bool) -> None:
    from bench.data.video import read_frame

    path = tmp_path / name
    img = np.random.default_rng(0).integers(0, 255, (FRAME, FRAME, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)
    if data is not None:
        path.write_bytes(data(path.read_bytes()))
    if ok:
        assert read_frame(path, 16).shape == (16, 16, 3)
    else:
        with pytest.raises(DataError, match=name):
            read_frame(path, 16)


def test_skip_mode_leaves_out_files_that_are_not_videos(video_list: Path) -> None:
    (video_list.parent / "notes.txt").write_text("not a video\n")
    (video_list.parent / "vids" / "b.avi").write_bytes(b"RIFF" + bytes(100))  # header, no frames
    video_list.write_text("path,label\nnotes.txt,angry\nvids/a.mp4,happy\nvids/b.avi,sad\n")
    records = read_video_list(video_list, on_error="skip")
    assert [r.clip_id for r in records] == ["vids/a.mp4"]
    assert [item.rsplit(":", 1)[1] for item, _ in records.skipped] == ["2", "4"]
    ds = build_dataset("video", list=video_list, split="train", num_frames=4, size=16,
                       on_error="skip")
    assert len(ds) == 1 and ds[0][0].shape == (4, 16, 16, 3)


@pytest.mark.parametrize("rel", ["../outside.mp4", "vids/../../outside.mp4", "ABSOLUTE"])
def test_video_paths_stay_in_the_list_folder_unless_allowed(tmp_path: Path, rel: str) -> None:
    write_video(tmp_path / "outside.mp4", 4, "mpeg4")
    folder = tmp_path / "lists"
    folder.mkdir()
    rel = str(tmp_path / "outside.mp4") if rel == "ABSOLUTE" else rel
    (folder / "list.csv").write_text(f"path,label\n{rel},angry\n")
    with pytest.raises(DataError, match="points outside .*data.allow_outside=true"):
        read_video_list(folder / "list.csv")
    ds = build_dataset("video", list=folder / "list.csv", split="test", allow_outside=True,
                       num_frames=2, size=16)
    assert ds.records[0].video.resolve() == (tmp_path / "outside.mp4").resolve()


def test_ferv39k_clip_paths_stay_under_the_clip_folder(ferv_root: Path) -> None:
    (ferv_root / "4_setups/All_scenes/test_All.csv").write_text("../../4_setups Angry\n")
    with pytest.raises(DataError, match="points outside"):
        read_ferv39k_split(ferv_root, split="test")


def test_undecodable_video_names_the_file(video_list: Path) -> None:
    (video_list.parent / "vids" / "a.mp4").write_bytes(b"garbage" * 50)
    ds = build_dataset("video", list=video_list, split="test", num_frames=4, size=16)
    with pytest.raises(DataError, match="a.mp4"):
        ds[0]


def test_join_metadata_checks_labels(dfew_root: Path) -> None:
    records = read_dfew_split(dfew_root, fold=1, split="train")
    meta = dfew_root / "metadata.csv"
    meta.write_text("video_name,label,source,subject\n1,1,webcam,s1\n2,4,film,s2\n3,6,film,s1\n4,7,webcam,s3\n")
    join_metadata(records, meta)
    ds = ClipDataset(records, num_frames=4, size=16, train=False)
    assert ds.meta.groupby("source").size().to_dict() == {"film": 2, "webcam": 2}
    meta.write_text("video_name,label,source\n1,2,webcam\n")
    with pytest.raises(DataError, match="metadata.csv:2"):
        join_metadata(read_dfew_split(dfew_root, fold=1, split="train"), meta)


def test_clip_record_needs_one_source() -> None:
    with pytest.raises(ValueError):
        ClipRecord("x", 0)
    with pytest.raises(ValueError):
        ClipRecord("x", 7, video=Path("a.mp4"))
