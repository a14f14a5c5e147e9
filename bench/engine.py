"""The training loop: one `Trainer` per (config, fold), no file I/O.

`Trainer.train_epoch()` runs one epoch and returns plain numbers; callers (the
train CLI, the Tune trainable) decide what to write. The whole state needed to
resume (model, optimizer, schedule, epoch, DSM's gradient norm) round-trips
through `state_dict()` as tensors and plain types, so checkpoints load with
`torch.load(weights_only=True)`.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.config import DEVICE_NAME, Config
from bench.data import build_dataset
from bench.data.labels import EMOTIONS
from bench.errors import ConfigError, TrainingDiverged
from bench.losses import build_loss
from bench.metrics import confusion_matrix, score
from bench.models import build_model
from bench.optim import SAM, bn_running_stats, build_optimizer, build_scheduler
from bench.registry import check_kwargs

__all__ = ["Trainer", "EvalResult", "build_split", "model_from_config", "seed_everything",
           "resolve_device", "predict", "evaluate", "train"]

Progress = Callable[[int, int], None]  # (batches done, batches total)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """The torch device `name` (auto, cpu, cuda, cuda:N) names, if this machine has it.

    Checked here, before data or model are built, so a config written for a GPU
    box fails in one line on a CPU machine instead of deep inside the first `.to()`.
    """
    if not isinstance(name, str) or DEVICE_NAME.fullmatch(name) is None:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        return torch.device("cuda" if cuda else "cpu")
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        have = ", ".join(["cpu"] + [f"cuda:{i}" for i in range(cuda)])
        if not cuda:
            why = "torch is built without CUDA" if torch.version.cuda is None else "no GPU found"
            raise ConfigError(f"device {name}: CUDA is not available on this machine ({why}); "
                              f"available devices: {have}")
        if index >= cuda:
            raise ConfigError(f"device {name}: this machine has {cuda} CUDA device(s); "
                              f"available devices: {have}")
    return torch.device(name)


@dataclass
class EvalResult:
    metrics: dict[str, float]  # war, uar, recall_<class>
    confusion: np.ndarray  # (K, K), rows = true class
    y_true: np.ndarray
    y_pred: np.ndarray


@torch.no_grad()
def predict(model: torch.nn.Module, loader: DataLoader, device: torch.device,
            progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels and argmax predictions over a loader, in loader order."""
    model.eval()
    ys, ps = [], []
    for i, (x, y) in enumerate(loader):
        logits, _ = model(x.to(device, non_blocking=True))  # (B, K)
        ps.append(logits.argmax(1).cpu())
        ys.append(torch.as_tensor(y))
        if progress:
            progress(i + 1, len(loader))
    return torch.cat(ys).numpy(), torch.cat(ps).numpy()


def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device,
             progress: Progress | None = None) -> EvalResult:
    y, p = predict(model, loader, device, progress)
    return EvalResult(score(y, p, EMOTIONS), confusion_matrix(y, p, len(EMOTIONS)), y, p)


def _grad_norm(params: list[torch.Tensor]) -> float:
    norms = [p.grad.detach().norm(2) for p in params if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def check_components(cfg: Config) -> None:
    """Fail on a bad model name or loss option before data is generated or read.

    Both are built after the data (the loss needs its class counts); data set
    options are already checked by DATASETS.build before its builder runs.
    """
    from bench.losses import LOSSES
    from bench.models import MODELS

    MODELS.get(cfg.model.name)
    check_kwargs(LOSSES.get(cfg.loss.name), {"class_counts": None, **cfg.loss.options},
                 f"loss '{cfg.loss.name}'")


def build_split(cfg: Config, split: str, *, fold: int | None = None):
    """The configured data set's train or test split (augmentation on train only)."""
    d = cfg.data
    options = dict(d.options)
    if fold is not None:
        options["fold"] = fold
    return build_dataset(d.name, split=split, augment=d.augment and split == "train",
                         num_frames=d.num_frames, size=d.size, seed=cfg.train.seed,
                         cache=d.cache, on_error=d.on_error, **options)


def holdout(train_set: Any, fraction: float) -> Any:
    """Move `fraction` of the training clips into an evaluation-only "val" set.

    Whole subjects move when the metadata knows them (no identity leaks into
    val). The draw uses a fixed seed, not train.seed, so every trial and seed
    of a sweep is scored on the same clips.
    """
    records = train_set.records
    groups = [str(r.meta.get("subject", r.clip_id)) for r in records]
    uniq = sorted(set(groups))
    rng = np.random.default_rng(20251)
    n_val = min(len(uniq) - 1, max(1, round(fraction * len(uniq))))
    val_groups = set(rng.permutation(len(uniq))[:n_val].tolist())
    chosen = {uniq[i] for i in val_groups}
    return train_set.split_off(g in chosen for g in groups)


def model_from_config(cfg: Config) -> torch.nn.Module:
    """The network a config describes, built for its clip size."""
    m, d = cfg.model, cfg.data
    return build_model(m.name, num_classes=len(EMOTIONS), num_frames=d.num_frames,
                       crop_size=d.size, preset=m.preset, dam_stages=list(m.dam_stages),
                       dam_temporal=m.dam_temporal, dam_frequency=m.dam_frequency,
                       dropout=m.dropout)


class Trainer:
    """Builds data, model, loss and optimizer from a Config and trains epoch by epoch."""

    def __init__(self, cfg: Config, *, fold: int | None = None,
                 select: Callable[[Any], Any] | None = None) -> None:
        """`select(train_set)` -> indices of the training clips to keep (held-out sources,
        long-tailed subsets); everything that depends on the training set is built after it."""
        self.cfg = cfg
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = resolve_device(cfg.train.device)
        check_components(cfg)
        seed_everything(cfg.train.seed)
        d = cfg.data
        self.train_set = build_split(cfg, "train", fold=fold)
        self.test_set = build_split(cfg, "test", fold=fold)
        self.val_set = holdout(self.train_set, cfg.train.val_fraction) \
            if cfg.train.val_fraction > 0 else None
        if select is not None:
            keep = set(np.asarray(select(self.train_set), dtype=np.int64).tolist())
            self.train_set.split_off(i not in keep for i in range(len(self.train_set)))
        self.class_counts = list(self.train_set.class_counts(len(EMOTIONS)))
        pin = self.device.type == "cuda"
        self._gen = torch.Generator()
        self.train_loader = DataLoader(self.train_set, batch_size=d.batch_size, shuffle=True,
                                       drop_last=len(self.train_set) > d.batch_size,
                                       num_workers=d.workers, generator=self._gen, pin_memory=pin,
                                       persistent_workers=d.workers > 0)
        self.test_loader = DataLoader(self.test_set, batch_size=d.batch_size, shuffle=False,
                                      num_workers=d.workers, pin_memory=pin)
        self.val_loader = None if self.val_set is None else DataLoader(
            self.val_set, batch_size=d.batch_size, shuffle=False, num_workers=d.workers,
            pin_memory=pin)
        self.model = model_from_config(cfg).to(self.device)
        self.loss_fn = build_loss(cfg.loss.name, class_counts=self.class_counts,
                                  **cfg.loss.options).to(self.device)
        o = cfg.optim
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, name=o.name, lr=o.lr,
                                         weight_decay=o.weight_decay, sam=o.sam, rho=o.rho,
                                         asam=o.asam, momentum=o.momentum)
        self.scheduler = build_scheduler(self.optimizer, epochs=cfg.train.epochs,
                                         steps_per_epoch=max(1, len(self.train_loader)),
                                         warmup_epochs=o.warmup_epochs)
        self.epoch = 0  # epochs completed
        self.grad_norm: float | None = None  # DSM's g from the previous step (None: first step)

    # -- one optimisation step -------------------------------------------------
    def _loss(self, x: torch.Tensor, y: torch.Tensor, g: float | None):
        logits, z = self.model(x)  # (B, K), (B, D)
        out = self.loss_fn(logits, z, y, grad_norm=g)
        if not torch.isfinite(out.total):
            raise TrainingDiverged(
                f"loss became {out.total.item()} at epoch {self.epoch + 1} "
                f"(parts: {', '.join(f'{k}={v:.4g}' for k, v in out.parts.items())})")
        return out

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        opt = self.optimizer
        out = self._loss(x, y, self.grad_norm)
        out.total.backward()
        if isinstance(opt, SAM):
            # Ascent pass gives g; DSM's scaling in the descent pass uses it (spec section 3).
            g = opt.first_step(zero_grad=True)
            bn_running_stats(self.model, False)  # BN statistics: first pass only
            try:
                out = self._loss(x, y, g)
                out.total.backward()
            finally:
                bn_running_stats(self.model, True)
            if self.cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip)
            opt.second_step(zero_grad=True)
            self.grad_norm = g
        else:
            if self.loss_fn.uses_grad_norm:
                self.grad_norm = _grad_norm(self.params)
            if self.cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        self.scheduler.step()
        return {"loss": float(out.total.detach()), **out.parts}

    def train_epoch(self, progress: Progress | None = None) -> dict[str, float]:
        """One pass over the training set; returns mean loss parts and timing."""
        self.model.train()
        self.train_set.set_epoch(self.epoch)
        self._gen.manual_seed(self.cfg.train.seed * 1_000_003 + self.epoch)
        sums: dict[str, float] = {}
        n = 0
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(self.train_loader):
            x = x.to(self.device, non_blocking=True)  # (B, C, T, H, W)
            y = torch.as_tensor(y).to(self.device, non_blocking=True)
            parts = self._step(x, y)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(y)
            n += len(y)
            if progress:
                progress(i + 1, len(self.train_loader))
        seconds = time.perf_counter() - t0
        self.epoch += 1
        stats = {k: v / max(n, 1) for k, v in sums.items()}
        stats.update(seconds=seconds, clips_per_s=n / seconds if seconds > 0 else math.nan,
                     lr=float(self.optimizer.param_groups[0]["lr"]))
        return stats

    def evaluate(self, progress: Progress | None = None, *, split: str = "test") -> EvalResult:
        """Score the test split, or the held-out "val" part of train (train.val_fraction)."""
        if split == "val":
            if self.val_loader is None:
                raise ValueError("no val split: set train.val_fraction > 0")
            return evaluate(self.model, self.val_loader, self.device, progress)
        return evaluate(self.model, self.test_loader, self.device, progress)

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                "grad_norm": self.grad_norm, "config": self.cfg.to_dict(),
                "class_names": list(EMOTIONS), "rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.grad_norm = state["grad_norm"]
        torch.set_rng_state(state["rng"])


def train(cfg: Config, *, fold: int | None = None) -> dict[str, float]:
    """Train for cfg.train.epochs and return the last epoch's test metrics."""
    trainer = Trainer(cfg, fold=fold)
    for _ in range(cfg.train.epochs):
        trainer.train_epoch()
    return trainer.evaluate().metrics
