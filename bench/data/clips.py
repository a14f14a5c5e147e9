"""Frame sampling and the clip Dataset every loader shares.

    records -> clip store (uint8 memmap, decoded once per node)  \
            -> or JPEG decode + resize (sampled frames, cached)  -> uniform_indices
            -> augment (uint8, per item) -> item uint8 (T, H, W, 3)
    loader batch uint8 (B, T, H, W, 3) -> model_input on the device -> (B, 3, T, H, W) float

Randomness (segment offsets, augmentation) comes from a generator seeded by
(seed, epoch, index), so an item is the same whatever the worker count or the
order it is asked for; call `set_epoch` before each epoch. Evaluation draws no
random numbers at all.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.data.device_augment import ClipParams, apply_params
from bench.data.labels import EMOTIONS, NUM_CLASSES
from bench.data.frames import read_or_neighbour
from bench.data.records import ClipRecord, check_on_error
from bench.data.video import decode_video
from bench.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from bench.data.store import ClipStore

__all__ = ["ClipDataset", "uniform_indices", "to_tensor", "model_input", "MEAN", "STD"]

log = logging.getLogger(__name__)

# X3D's Kinetics statistics, the same for every channel.
MEAN = 0.45
STD = 0.225

ClipTransform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def uniform_indices(
    n_frames: int,
    num_frames: int,
    *,
    rng: np.random.Generator | None = None,
    pad: str = "last",
) -> np.ndarray:
    """`num_frames` indices into a clip of `n_frames`: index i*N/T (floored).

    With `rng`, each index moves to a random frame of its segment
    [i*N/T, (i+1)*N/T) (TSN-style). Clips shorter than `num_frames` keep every
    frame and pad by repeating the last one (`pad="last"`, as Former-DFER
    does) or by looping from the start (`pad="loop"`).
    """
    if n_frames < 1 or num_frames < 1:
        raise ValueError(f"need n_frames >= 1 and num_frames >= 1, got {n_frames}, {num_frames}")
    if n_frames < num_frames:
        if pad == "last":
            return np.minimum(np.arange(num_frames), n_frames - 1)
        if pad == "loop":
            return np.arange(num_frames) % n_frames
        raise ValueError(f"pad must be 'last' or 'loop', got {pad!r}")
    i = np.arange(num_frames)
    starts = i * n_frames // num_frames
    if rng is None:
        return starts
    ends = (i + 1) * n_frames // num_frames  # > starts because n_frames >= num_frames
    return rng.integers(starts, ends)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> normalised float32 (3, T, H, W)."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    # numpy, not torch: torch's intra-op threads cost more than they save on a
    # clip this small, and stall badly when the cores are busy.
    x = np.empty((3, *frames.shape[:3]), np.float32)  # (3, T, H, W)
    np.multiply(frames.transpose(3, 0, 1, 2), np.float32(1.0 / (255.0 * STD)), out=x, casting="unsafe")
    x -= np.float32(MEAN / STD)
    return torch.from_numpy(x)


def model_input(x: "torch.Tensor | Sequence[torch.Tensor]", device: torch.device, *,
                channels_last: bool = False) -> torch.Tensor:
    """A loader batch on `device`, as the model takes it.  # (B, 3, T, H, W) float32

    uint8 batches (B, T, H, W, 3) cross to the device at a quarter of float32's
    bytes and are normalised there; a pair (uint8 clips, params (B, 8)) is
    augmented there first (`bench.data.device_augment`); float batches
    (B, 3, T, H, W) are taken as already normalised. The uint8 layout permuted
    to (B, 3, T, H, W) is channels_last_3d already, so `channels_last` costs no
    copy for them.
    """
    if isinstance(x, (list, tuple)):
        frames, params = x
        frames = _uint8_clips(frames.to(device, non_blocking=True))
        x = apply_params(frames, params.to(device, non_blocking=True), size=frames.shape[2])
        x = x.mul_(1.0 / (255.0 * STD)).sub_(MEAN / STD)  # (B, 3, T, H, W)
    else:
        x = x.to(device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = _uint8_clips(x).permute(0, 4, 1, 2, 3).float()  # (B, 3, T, H, W)
            x = x.mul_(1.0 / (255.0 * STD)).sub_(MEAN / STD)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt)


def _uint8_clips(x: torch.Tensor) -> torch.Tensor:
    if x.dtype != torch.uint8 or x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 batches (B, T, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    return x


class ClipDataset(Dataset):
    """Labelled clips as uint8 (T, H, W, 3) items; see the module docstring for seeding.

    Items stay uint8 across the loader's process boundary (a quarter of
    float32's bytes); `model_input` normalises the batch on the device, giving
    exactly `to_tensor`'s values.

    Frames come from, in order of preference:
    - `store` (a `bench.data.store.ClipStore`): every clip decoded once per node
      into one read-only memory map that all workers and trials share;
    - cache=True: each decoded, resized frame is kept (uint8) after its first
      use; only the sampled frames are decoded. Each DataLoader worker fills its
      own copy: use num_workers=0, persistent_workers=True, or `preload()`;
    - cache=False: the sampled frames are decoded for every item.
    `reduced_decode` lets libjpeg decode large JPEGs at 1/2, 1/4 or 1/8 scale
    before the INTER_AREA resize (`bench.data.video.read_frame`).

    on_error="skip": an unreadable frame is replaced by its nearest readable
    neighbour in the clip and listed in `.skipped`; a clip with no readable
    frame (or an undecodable video) still raises, unless `preload()` dropped it.
    Skips noted inside DataLoader workers stay in the workers.

    `transform` is applied only when train=True: evaluation is deterministic.
    With `device_params` instead, a training item is ((frames, params (8,)), label)
    and `model_input` augments the batch on the device.
    """

    def __init__(
        self,
        records: Iterable[ClipRecord],
        *,
        # sampling
        num_frames: int,
        size: int,
        # training-time randomness; off when train=False
        transform: ClipTransform | None = None,
        train: bool,
        seed: int = 0,
        # decoding
        cache: bool = True,
        on_error: str = "raise",
        reduced_decode: bool = False,
        store: ClipStore | None = None,
        device_params: "ClipParams | None" = None,
    ) -> None:
        self.records: list[ClipRecord] = list(records)
        self.skipped: list[tuple[str, str]] = list(getattr(records, "skipped", []))
        if num_frames < 1 or size < 1:
            raise ValueError(f"num_frames and size must be >= 1, got {num_frames}, {size}")
        if store is not None and store.size != size:
            raise ValueError(f"the clip store holds {store.size} px frames, the data set wants {size}")
        self.num_frames = num_frames
        self.size = size
        self.transform = transform
        self.device_params = device_params if train else None
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.cache = cache
        self.on_error = check_on_error(on_error)
        self.reduced_decode = reduced_decode
        self.store = store
        self._cache: dict[int, np.ndarray] = {}  # index -> (N, H, W, 3), filled lazily
        self._have: dict[int, np.ndarray] = {}  # index -> (N,) bool: frames decoded so far
        self._bad_frames: dict[str, str] = {}  # path -> reason
        self._warned = False
        if cache and store is None:
            n = sum(len(r.frames) for r in self.records if r.frames is not None)
            log.info("frame cache will hold up to %.2f GB (%d frames at %dx%d)", n * size * size * 3 / 1e9, n, size, size)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)

    def class_counts(self, num_classes: int = NUM_CLASSES) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()

    @property
    def meta(self) -> pd.DataFrame:
        """One row per clip, in dataset order: clip_id, label, emotion, then record meta."""
        import pandas as pd

        rows = []
        for r in self.records:
            row = {"clip_id": r.clip_id, "label": r.label, "emotion": EMOTIONS[r.label]}
            row.update({k: v for k, v in r.meta.items() if k not in row})
            rows.append(row)
        return pd.DataFrame(rows, columns=None if rows else ["clip_id", "label", "emotion"])

    def split_off(self, move: "Iterable[bool]") -> "ClipDataset":
        """Remove the flagged clips from this set and return them as an evaluation set."""
        move = list(move)
        if len(move) != len(self.records):
            raise ValueError(f"need one flag per clip ({len(self.records)}), got {len(move)}")
        moved = [r for r, m in zip(self.records, move) if m]
        self.records = [r for r, m in zip(self.records, move) if not m]
        self._cache.clear()
        self._have.clear()
        return ClipDataset(moved, num_frames=self.num_frames, size=self.size, train=False,
                           seed=self.seed, cache=self.cache, on_error=self.on_error,
                           reduced_decode=self.reduced_decode, store=self.store)

    # -- items ---------------------------------------------------------------

    def rng(self, index: int) -> np.random.Generator:
        """The generator of one item in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def get_frames(self, index: int) -> np.ndarray:
        """Evaluation sampling, no augmentation, uint8.  # (T, H, W, 3)"""
        return self._sample(index, None)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """uint8 (T, H, W, 3) and the label; batches collate to (B, T, H, W, 3)."""
        if not self.train:
            return torch.from_numpy(self._sample(index, None)), self.records[index].label
        rng = self.rng(index)
        frames = self._sample(index, rng)  # (T, H, W, 3)
        if self.device_params is not None:  # pixels move on the device (model_input)
            params = self.device_params(rng, frames.shape[1], frames.shape[2])  # (8,)
            return (torch.from_numpy(np.ascontiguousarray(frames)), torch.from_numpy(params)), \
                self.records[index].label
        if self.transform is not None:
            frames = self.transform(frames, rng)
        return torch.from_numpy(np.ascontiguousarray(frames)), self.records[index].label

    def preload(self) -> int:
        """Decode every clip now (into the cache if on); in skip mode drop unusable clips.

        With a store nothing is decoded: clips the store could not read are dropped.
        Returns the number of clips dropped.
        """
        kept: list[ClipRecord] = []
        cache: dict[int, np.ndarray] = {}
        for i, rec in enumerate(self.records):
            try:
                clip = self._stored(rec) if self.store is not None else self._cache_full(i, rec)
            except DataError as e:
                if self.on_error == "raise":
                    raise
                self.skipped.append((rec.clip_id, str(e)))
                continue
            if self.cache and self.store is None:
                cache[len(kept)] = clip
            kept.append(rec)
        dropped = len(self.records) - len(kept)
        if dropped:
            log.warning("dropped %d unreadable clip(s) of %d", dropped, len(self.records))
        self.records, self._cache = kept, cache
        self._have = {i: np.ones(len(c), bool) for i, c in cache.items()}
        return dropped

    def _cache_full(self, index: int, rec: ClipRecord) -> np.ndarray:
        """Every frame of a clip, from the cache where decoded already.  # (N, H, W, 3)"""
        if rec.video is not None:
            return self._cache.get(index) if index in self._cache else self._video(rec)
        return self._cached_frames(index, rec, np.arange(len(rec.frames or [])))

    def _sample(self, index: int, rng: np.random.Generator | None) -> np.ndarray:
        rec = self.records[index]
        if self.store is not None:
            clip = self._stored(rec)  # (N, H, W, 3) read-only map
            return clip[uniform_indices(len(clip), self.num_frames, rng=rng)]  # a copy
        if rec.video is not None:
            clip = self._cache.get(index)
            if clip is None:
                clip = self._video(rec)  # (N, H, W, 3)
                if self.cache:
                    self._cache[index] = clip
            return clip[uniform_indices(len(clip), self.num_frames, rng=rng)]
        assert rec.frames is not None
        idx = uniform_indices(len(rec.frames), self.num_frames, rng=rng)
        if self.cache:
            return self._cached_frames(index, rec, idx)
        wanted, inverse = np.unique(idx, return_inverse=True)
        return np.stack([self._read(rec, i) for i in wanted.tolist()])[inverse]

    def _cached_frames(self, index: int, rec: ClipRecord, idx: np.ndarray) -> np.ndarray:
        """Frames `idx` of a frame-folder clip, decoding only those not cached yet."""
        assert rec.frames is not None
        clip, have = self._cache.get(index), self._have.get(index)
        if clip is None or have is None:
            clip = np.empty((len(rec.frames), self.size, self.size, 3), np.uint8)  # (N, H, W, 3)
            have = np.zeros(len(rec.frames), bool)
        wanted = np.unique(idx)
        for i in wanted[~have[wanted]].tolist():
            clip[i] = self._read(rec, i)
            have[i] = True
        if self.cache:
            self._cache[index], self._have[index] = clip, have
        return clip[idx]

    def _stored(self, rec: ClipRecord) -> np.ndarray:
        """A clip from the store, with its bad frames raised or noted.  # (N, H, W, 3)"""
        assert self.store is not None
        row = self.store.row(rec)
        problems = self.store.problems(row)
        clip = self.store.clip(row)
        if problems and (self.on_error == "raise" or len(clip) == 0):
            raise DataError(problems[0][1] if self.on_error == "raise" else problems[-1][1])
        for path, reason in problems:
            self._note_bad_frame(path, reason)
        return clip

    def _video(self, rec: ClipRecord) -> np.ndarray:
        assert rec.video is not None
        return decode_video(rec.video, size=self.size)  # (N, H, W, 3)

    def _read(self, rec: ClipRecord, i: int) -> np.ndarray:
        """Frame i (or, in skip mode, its nearest readable neighbour).  # (H, W, 3)"""
        known = len(self._bad_frames)
        try:
            return read_or_neighbour(rec, i, size=self.size, reduced=self.reduced_decode,
                                     skip=self.on_error == "skip", bad=self._bad_frames)
        finally:
            for path, reason in list(self._bad_frames.items())[known:]:
                self._note_bad_frame(path, reason, new=True)

    def _note_bad_frame(self, path: str, reason: str, *, new: bool = False) -> None:
        if new or path not in self._bad_frames:
            self._bad_frames[path] = reason
            self.skipped.append((path, reason))
            # One warning, then quiet: `.skipped` holds the full list.
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "replacing unreadable frame by a neighbour (see .skipped): %s", reason)
