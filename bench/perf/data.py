"""Input pipeline cost: clips/s of one loader worker, JPEG path against the clip store.

    data set -> (a) JPEG decode per item, no cache
             -> (b) JPEG path, per-process frame cache warm (every frame decoded once)
             -> (c) clip store: cold build (timed apart), then items read from the memmap

Each variant is one worker's throughput (workers=0, in-process) over the same
training items (sampling + augmentation as training does it, uint8 out), timed
in interleaved rounds and compared by the median. Training augments on the
device by default (`data.augment_on: device`: a worker only draws the
parameters, `bench.data.device_augment`); the same items augmented per item on
the CPU (`augment_on: cpu`, albumentations) are timed too, and the device's
share is printed for this machine. Goal: clip store / JPEG path >= 10x per worker. Data
sets: the synthetic default (80 px frames) and a DFEW-layout folder of 112 px
frames written by the synthetic generator (`size=112`). The stores are built in
a temporary folder of the cache, so the cold build is really cold; it is removed
at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import torch

from bench.cli import positive_int
from bench.data import build_dataset
from bench.data.cachedir import cache_root
from bench.data.clips import ClipDataset
from bench.perf.timing import interleaved, median

GOAL = 10.0


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--preset", default="default", help="synthetic preset of the 80 px data set")
    ap.add_argument("--preset-112", default="default",
                    help="synthetic preset written at 112 px frames (the DFEW-layout folder)")
    ap.add_argument("--clips", type=positive_int, default=300, help="training clips timed per data set")
    ap.add_argument("--size", type=positive_int, default=64, help="training frame size (data.size)")
    ap.add_argument("--num-frames", type=positive_int, default=8, help="frames per clip (data.num_frames)")
    ap.add_argument("--repeats", type=positive_int, default=3, help="timed rounds per variant")
    ap.add_argument("--synth-options", default="", metavar="K=V,...",
                    help="extra generator options for both data sets (tests: tiny sizes)")


@dataclass
class Row:
    name: str
    frames_px: int
    clips: int
    jpeg: float  # clips/s
    cached: float
    store: float
    jpeg_cpu: float  # the same items augmented per item on the CPU (augment_on: cpu)
    store_cpu: float
    build_s: float
    build_clips: int


def _options(text: str) -> dict[str, int]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = item.partition("=")
        out[key.strip()] = int(value)
    return out


def _variants(make: Callable[..., ClipDataset], n: int, store_root: Path) -> tuple[dict, float]:
    """The three datasets over the first `n` clips, and the store's cold build in seconds."""
    jpeg = make(store=False, cache=False)
    cached = make(store=False, cache=True)
    t0 = time.perf_counter()
    with _cache_at(store_root):
        stored = make(store=True, cache=False)  # builds the store of every split's clips
    build = time.perf_counter() - t0
    with _cache_at(store_root):
        on_cpu = {"jpeg_cpu": make(store=False, cache=False, augment=True),
                  "store_cpu": make(store=True, cache=False, augment=True)}
    sets = {"jpeg": jpeg, "cached": cached, "store": stored, **on_cpu}
    for ds in sets.values():
        ds.records = ds.records[:n]
    cached.preload()  # warm: every frame of these clips decoded once
    return sets, build


@contextlib.contextmanager
def _cache_at(folder: Path) -> Iterator[None]:
    old = os.environ.get("HDF_BENCH_CACHE")
    os.environ["HDF_BENCH_CACHE"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            del os.environ["HDF_BENCH_CACHE"]
        else:
            os.environ["HDF_BENCH_CACHE"] = old


def _epoch(ds: ClipDataset) -> Callable[[], None]:
    def run() -> None:
        for i in range(len(ds)):
            ds[i]
    return run


def measure(name: str, make: Callable[..., ClipDataset], *, n: int, repeats: int,
            store_root: Path, frames_px: int) -> Row:
    sets, build = _variants(make, n, store_root)
    times = interleaved({k: _epoch(ds) for k, ds in sets.items()}, repeats=repeats)
    rate = {k: len(sets[k]) / median(v) for k, v in times.items()}
    return Row(name, frames_px, len(sets["jpeg"]), rate["jpeg"], rate["cached"], rate["store"],
               rate["jpeg_cpu"], rate["store_cpu"], build, len(sets["store"].store.keys))


def format_rows(rows: list[Row], *, size: int, num_frames: int) -> str:
    """The table and one goal line per data set (training items, augmentation included)."""
    lines = [f"clips/s of one worker (workers=0, in-process), training items "
             f"{num_frames}x{size}x{size}, uint8 out; median of interleaved rounds",
             "| data set | frames on disk | clips timed | JPEG, no cache | JPEG, cache warm "
             "| clip store | store / JPEG | store / cache | JPEG, augmentation on CPU "
             "| store, augmentation on CPU | store / JPEG, augmentation on CPU "
             "| store build (cold) |",
             "| --- " * 12 + "|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.frames_px} px | {r.clips} | {r.jpeg:.0f} | {r.cached:.0f} "
                     f"| {r.store:.0f} | {r.store / r.jpeg:.1f}x | {r.store / r.cached:.2f}x "
                     f"| {r.jpeg_cpu:.0f} | {r.store_cpu:.0f} "
                     f"| {r.store_cpu / r.jpeg_cpu:.1f}x | {r.build_s:.1f} s "
                     f"({r.build_clips} clips, {r.build_clips / r.build_s:.0f} clips/s) |")
    for r in rows:
        ratio = r.store / r.jpeg
        lines.append(f"clip store / JPEG path per worker ({r.name}): {ratio:.1f}x "
                     f"(goal >= {GOAL:.0f}x): {'met' if ratio >= GOAL else 'MISSED'}")
    return "\n".join(lines)


def device_augment_cost(*, size: int, num_frames: int, batch: int = 16,
                        repeats: int = 5) -> float:
    """Seconds per clip that `model_input` spends augmenting a batch here (on this CPU)."""
    import numpy as np

    from bench.data.clips import model_input
    from bench.data.device_augment import ClipParams

    rng = np.random.default_rng(0)
    x = torch.randint(0, 256, (batch, num_frames, size, size, 3), dtype=torch.uint8)
    draw = ClipParams()
    params = torch.from_numpy(np.stack([draw(rng, size, size) for _ in range(batch)]))
    cpu = torch.device("cpu")
    times = interleaved({"augmented": lambda: model_input((x, params), cpu),
                         "plain": lambda: model_input(x, cpu)}, repeats=repeats)
    return max(0.0, median(times["augmented"]) - median(times["plain"])) / batch


def run(args: argparse.Namespace) -> int:
    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # one worker's throughput: one core
    try:
        rows = _measure_all(args)
        aug = device_augment_cost(size=args.size, num_frames=args.num_frames)
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    print(format_rows(rows, size=args.size, num_frames=args.num_frames))
    print(f"augmentation on the device (here the CPU, one thread, batches of 16): "
          f"{aug * 1e3:.3f} ms per clip, paid once per batch where the model runs")
    return 0


def _measure_all(args: argparse.Namespace) -> list[Row]:
    from bench.data.synth import ensure_synthetic

    extra = _options(args.synth_options)
    data = [(f"synthetic {args.preset}", args.preset, {}), (f"DFEW layout ({args.preset_112})",
                                                           args.preset_112, {"size": 112})]
    rows = []
    for name, preset, opts in data:
        options = {**extra, **opts}
        root = ensure_synthetic(preset=preset, **options)
        px = int(options.get("size", 80))

        def make(*, store: bool, cache: bool, augment: bool | str = "device",
                 root: Path = root) -> ClipDataset:
            return build_dataset("dfew", root=root, split="train", num_frames=args.num_frames,
                                 size=args.size, augment=augment, store=store, cache=cache)

        store_root = Path(tempfile.mkdtemp(prefix=".perf-data-", dir=cache_root()))
        try:
            rows.append(measure(name, make, n=args.clips, repeats=args.repeats,
                                store_root=store_root, frames_px=px))
        finally:
            shutil.rmtree(store_root, ignore_errors=True)
    return rows
