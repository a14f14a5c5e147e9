"""The training loop: one `Trainer` per (config, fold), no file I/O.

`Trainer.train_epoch()` runs one epoch and returns plain numbers; callers (the
train CLI, the Tune trainable) decide what to write. The whole state needed to
resume (model, optimizer, schedule, epoch, DSM's gradient norm and the
gradient probe's last measurement) round-trips through `state_dict()` as
tensors and plain types, so checkpoints load with `torch.load(weights_only=True)`.

An epoch's numbers: the loss and its parts averaged over clips (for DSM: ce,
dsc, ib, lambda_ce, lambda_sc, g and the `figure` weights' effective pairs),
and each loss term's gradient share and cosine with the first term averaged
over the probed steps (`train.diag_every`).
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

from bench.config import DEVICE_NAME, PRECISIONS, Config
from bench.data import build_dataset
from bench.data.clips import model_input
from bench.data.workers import resolve_workers
from bench.data.labels import EMOTIONS
from bench.errors import ConfigError
from bench.losses import build_loss
from bench.losses.term_grads import GradientProbe
from bench.metrics import confusion_matrix, score
from bench.models import build_model
from bench.optim import build_optimizer, build_scheduler
from bench.step import Stepper, autocast

__all__ = ["Trainer", "EvalResult", "build_split", "model_from_config", "optimizer_from_config",
           "stepper_from_config", "channels_last_3d", "seed_everything", "cuda_count", "resolve_device", "resolve_precision",
           "predict", "evaluate", "test_due", "train"]

Progress = Callable[[int, int], None]  # (batches done, batches total)
CHECK_EVERY = 25  # steps between divergence checks when the gradient probe is off


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cuda_count() -> int:
    """CUDA devices this machine has (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(name: str) -> torch.device:
    """The torch device `name` (auto, cpu, cuda, cuda:N) names, if this machine has it.

    Checked here, before data or model are built, so a config written for a GPU
    box fails in one line on a CPU machine instead of deep inside the first `.to()`.
    """
    if not isinstance(name, str) or DEVICE_NAME.fullmatch(name) is None:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    cuda = cuda_count()
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


def resolve_precision(name: str, device: torch.device) -> str:
    """bf16, fp16 or fp32 for train.precision `name` on `device`, or a one-line ConfigError.

    auto: bf16 autocast on a CUDA device that supports it, fp32 otherwise (on
    CPUs bf16 is usually slower than fp32). fp16 needs CUDA (its loss scaling is
    a GPU technique); bf16 runs anywhere autocast does.
    """
    if name not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    cuda = device.type == "cuda"
    if name == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if name == "fp16" and not cuda:
        raise ConfigError(f"train.precision fp16 needs a CUDA device, training runs on {device}; "
                          "use bf16 or fp32 on CPU")
    if name == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision bf16: {torch.cuda.get_device_name(device)} does not "
                          "support bfloat16; use fp16 or fp32")
    return name


def channels_last_3d(model: torch.nn.Module) -> torch.nn.Module:
    """Lay the model's 5-D weights (3-D convolutions) out as channels_last_3d, in place.

    `Module.to(memory_format=...)` would also try DAM's lower-rank weights and fail.
    """
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 5:
                p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def test_due(cfg: Config, epoch: int) -> bool:
    """Whether the test split is scored after `epoch` (1-based): the last epoch, and
    every train.eval_every epochs when that is > 0 (nothing is chosen by it)."""
    k = cfg.train.eval_every
    return epoch == cfg.train.epochs or bool(k and epoch % k == 0)


@dataclass
class EvalResult:
    metrics: dict[str, float]  # war, uar, recall_<class>
    confusion: np.ndarray  # (K, K), rows = true class
    y_true: np.ndarray
    y_pred: np.ndarray


@torch.no_grad()
def predict(model: torch.nn.Module, loader: DataLoader, device: torch.device,
            progress: Progress | None = None, *, precision: str = "fp32",
            channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels and argmax predictions over a loader, in loader order.

    `precision` is a resolved train.precision (autocast for bf16/fp16).
    """
    model.eval()
    ys, ps = [], []
    for i, (x, y) in enumerate(loader):
        x = model_input(x, device, channels_last=channels_last)  # (B, C, T, H, W)
        with autocast(device.type, precision):
            logits, _ = model(x)  # (B, K)
        ps.append(logits.argmax(1).cpu())
        ys.append(torch.as_tensor(y))
        if progress:
            progress(i + 1, len(loader))
    return torch.cat(ys).numpy(), torch.cat(ps).numpy()


def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device,
             progress: Progress | None = None, **kwargs: Any) -> EvalResult:
    """Scores of `predict` (same keyword options)."""
    y, p = predict(model, loader, device, progress, **kwargs)
    return EvalResult(score(y, p, EMOTIONS), confusion_matrix(y, p, len(EMOTIONS)), y, p)


def check_components(cfg: Config) -> None:
    """Fail on a bad model name or loss option before data is generated or read.

    Both are built after the data (the loss needs its class counts), so the
    loss is built once here on placeholder counts to check its option names
    and values; data set options are already checked by DATASETS.build before
    its builder runs.
    """
    from bench.models import MODELS

    MODELS.get(cfg.model.name)
    loss = build_loss(cfg.loss.name, class_counts=[1] * len(EMOTIONS), **cfg.loss.options)
    if loss.uses_grad_norm and loss.scaling_grad == "unscaled" and cfg.train.diag_every < 1:
        raise ConfigError("loss.scaling_grad = unscaled estimates g from the gradient probe; "
                          "set train.diag_every >= 1")


def build_split(cfg: Config, split: str, *, fold: int | None = None):
    """The configured data set's train or test split (augmentation on train only)."""
    d = cfg.data
    options = dict(d.options)
    if fold is not None:
        options["fold"] = fold
    augment: bool | str = d.augment and split == "train"
    if augment and d.augment_on == "device":
        augment = "device"  # parameters drawn per item, pixels moved per batch (model_input)
    return build_dataset(d.name, split=split, augment=augment,
                         num_frames=d.num_frames, size=d.size, seed=cfg.train.seed,
                         cache=d.cache, on_error=d.on_error, store=d.store,
                         reduced_decode=d.reduced_decode, **options)


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
                       dropout=m.dropout,
                       projection=cfg.loss.options.get("features", "pooled") == "projection")


def optimizer_from_config(cfg: Config, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """The configured optimizer (SAM-wrapped when optim.sam) over `params`."""
    o = cfg.optim
    return build_optimizer(params, name=o.name, lr=o.lr, weight_decay=o.weight_decay,
                           decay_all=o.decay_all, sam=o.sam, rho=o.rho, asam=o.asam,
                           momentum=o.momentum)


def stepper_from_config(cfg: Config, *, model: torch.nn.Module, loss_fn: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
                        precision: str = "fp32", forward: Callable | None = None) -> Stepper:
    """The training step a config describes (SAM's BN rule, clipping, gradient probe);
    `precision` resolved by `resolve_precision`, `forward` a compiled model."""
    return Stepper(model=model, loss_fn=loss_fn, optimizer=optimizer, params=params,
                   probe=GradientProbe(cfg.train.diag_every),
                   bn_both_passes=cfg.optim.sam_bn_both_passes, grad_clip=cfg.optim.grad_clip,
                   precision=precision, forward=forward)


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
        self.precision = resolve_precision(cfg.train.precision, self.device)
        if cfg.train.channels_last and self.precision == "bf16" and self.device.type == "cpu":
            # measured: CPU bf16 kernels on channels_last_3d clips gave NaN losses in 3 of 4
            # one-epoch runs (each alone trains); see docs/training.md
            raise ConfigError("train.channels_last with bf16 on CPU is refused: the pair gives "
                              "NaN losses on CPU; use one of them (channels_last is for GPUs)")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed clip shapes: pick the fastest kernels once
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
        workers = resolve_workers(d.workers, device=self.device)
        self._gen = torch.Generator()
        self.train_loader = DataLoader(self.train_set, batch_size=d.batch_size, shuffle=True,
                                       drop_last=len(self.train_set) > d.batch_size,
                                       num_workers=workers, generator=self._gen, pin_memory=pin,
                                       persistent_workers=workers > 0)
        self.test_loader = DataLoader(self.test_set, batch_size=d.batch_size, shuffle=False,
                                      num_workers=workers, pin_memory=pin)
        self.val_loader = None if self.val_set is None else DataLoader(
            self.val_set, batch_size=d.batch_size, shuffle=False, num_workers=workers,
            pin_memory=pin)
        self.model = model_from_config(cfg).to(self.device)
        if cfg.train.channels_last:
            channels_last_3d(self.model)
        # compiled for training only; checkpoints and evaluation use the plain module
        forward = torch.compile(self.model) if cfg.train.compile else None
        self.loss_fn = build_loss(cfg.loss.name, class_counts=self.class_counts,
                                  **cfg.loss.options).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = optimizer_from_config(cfg, self.params)
        self.scheduler = build_scheduler(self.optimizer, epochs=cfg.train.epochs,
                                         steps_per_epoch=max(1, len(self.train_loader)),
                                         warmup_epochs=cfg.optim.warmup_epochs)
        self.stepper = stepper_from_config(cfg, model=self.model, loss_fn=self.loss_fn,
                                           optimizer=self.optimizer, params=self.params,
                                           precision=self.precision, forward=forward)
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches of the current epoch done before a mid-epoch checkpoint

    def train_epoch(self, progress: Progress | None = None, *,
                    should_stop: Callable[[], bool] | None = None) -> dict[str, float] | None:
        """One pass over the training set; returns mean loss parts, probe metrics and timing.

        `should_stop()`, asked after every step but the epoch's last, may end the epoch
        early: then it returns None and `self.batch` counts the steps done, which
        `state_dict()` keeps; the next call (after `load_state_dict`) skips that many
        batches of the same loader order and goes on. The loss it returns averages the
        batches trained since that resume.
        """
        self.model.train()
        self.train_set.set_epoch(self.epoch)
        self._gen.manual_seed(self.cfg.train.seed * 1_000_003 + self.epoch)
        sums: dict[str, Any] = {}  # loss parts x clips, summed on the device
        probed: dict[str, list[float]] = {}
        n = 0
        last = len(self.train_loader) - 1
        every = self.cfg.train.diag_every or CHECK_EVERY
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(self.train_loader):
            if i < self.batch:  # done before a mid-epoch checkpoint: same order, skip it
                continue
            x = model_input(x, self.device, channels_last=self.cfg.train.channels_last)
            y = torch.as_tensor(y).to(self.device, non_blocking=True)  # (B,)
            # the loss is read (a host synchronisation) every k steps and at the end only
            parts, diag = self.stepper.step(x, y, probe=self.stepper.probe.due(i),
                                            epoch=self.epoch + 1, check=i % every == 0 or i == last)
            self.scheduler.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(y)
            for k, v in diag.items():
                probed.setdefault(k, []).append(v)
            n += len(y)
            if progress:
                progress(i + 1, len(self.train_loader))
            if should_stop is not None and i + 1 < len(self.train_loader) and should_stop():
                self.batch = i + 1
                return None
        stats = {k: float(v) / max(n, 1) for k, v in sums.items()}  # waits for the device
        seconds = time.perf_counter() - t0
        self.epoch += 1
        self.batch = 0
        stats.update({k: float(np.mean(v)) for k, v in probed.items()})
        stats.update(seconds=seconds, clips_per_s=n / seconds if seconds > 0 else math.nan,
                     lr=float(self.optimizer.param_groups[0]["lr"]))
        return stats

    def evaluate(self, progress: Progress | None = None, *, split: str = "test") -> EvalResult:
        """Score the test split, or the held-out "val" part of train (train.val_fraction)."""
        if split == "val":
            if self.val_loader is None:
                raise ValueError("no val split: set train.val_fraction > 0")
            loader = self.val_loader
        else:
            loader = self.test_loader
        return evaluate(self.model, loader, self.device, progress, precision=self.precision,
                        channels_last=self.cfg.train.channels_last)

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "batch": self.batch,
                "grad_norm": self.stepper.grad_norm, "probe": self.stepper.probe.state_dict(),
                "config": self.cfg.to_dict(),
                "class_names": list(EMOTIONS), "rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.batch = int(state.get("batch", 0))
        self.stepper.grad_norm = state["grad_norm"]
        self.stepper.probe.load_state_dict(state.get("probe"))
        torch.set_rng_state(state["rng"])


def train(cfg: Config, *, fold: int | None = None) -> dict[str, float]:
    """Train for cfg.train.epochs and return the last epoch's test metrics."""
    trainer = Trainer(cfg, fold=fold)
    for _ in range(cfg.train.epochs):
        trainer.train_epoch()
    return trainer.evaluate().metrics
