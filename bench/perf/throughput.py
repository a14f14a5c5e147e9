"""Training and inference throughput (clips/s) and peak memory, per preset, batch and precision.

    for preset x batch x precision [x layout]:
        hdf step  (X3D+DAM, DSM, SAM: two forward/backward passes)   -> train clips/s
        adamw step (X3D, CE)                                         -> train clips/s
        x3d+dam forward, eval mode, no grad                          -> infer clips/s
        peak memory: CUDA allocated (reset per row); CPU: the process's RSS high-water mark

The steps are `bench.step.Stepper`, the trainer's own, so a precision or
layout measured here is the one `train.precision` / `train.channels_last` /
`train.compile` train with. Inputs are random clips already on the device:
this is the model's cost, not the input pipeline's (`bench.perf data`).
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Callable

import torch

from bench.data.labels import NUM_CLASSES
from bench.engine import channels_last_3d
from bench.losses import build_loss
from bench.losses.term_grads import GradientProbe
from bench.models import build_model
from bench.optim import build_optimizer
from bench.step import Stepper, autocast

__all__ = ["Row", "measure", "format_rows"]

@dataclass
class Row:
    preset: str
    clip: str  # "TxHxW"
    batch: int
    precision: str
    layout: str  # contiguous | channels_last | compiled
    hdf_train: float  # clips/s
    adamw_train: float
    infer: float
    peak_mib: float


def _timed(fn: Callable[[], None], sync: Callable[[], None], *, steps: int, warmup: int) -> float:
    """Seconds per call, after `warmup` calls (cudnn.benchmark and compilation settle there)."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - t0) / steps


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(*, preset: str, frames: int, size: int, batch: int, precision: str, layout: str,
            device: torch.device, steps: int = 3, warmup: int = 2) -> Row:
    """One row: an HDF step, an AdamW step and inference at this shape, precision and layout."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    fmt = torch.channels_last_3d if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(batch, 3, frames, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.arange(batch, device=device) % NUM_CLASSES  # (B,)
    counts = [10] * NUM_CLASSES

    def net(dam: bool) -> torch.nn.Module:
        torch.manual_seed(0)
        m = build_model("x3d", num_frames=frames, crop_size=size, preset=preset,
                        dam_stages=[dam] * 4).to(device)
        return channels_last_3d(m) if layout == "channels_last" else m

    def stepper(dam: bool, loss: str, sam: bool) -> Callable[[], None]:
        model = net(dam).train()
        params = [p for p in model.parameters() if p.requires_grad]
        st = Stepper(model=model, loss_fn=build_loss(loss, class_counts=counts).to(device),
                     optimizer=build_optimizer(params, name="adamw", lr=1e-3, sam=sam, rho=0.05),
                     params=params, probe=GradientProbe(0), precision=precision,
                     forward=torch.compile(model) if layout == "compiled" else None)
        return lambda: st.step(x, y, check=False)

    infer_model = net(True).eval()
    forward = torch.compile(infer_model) if layout == "compiled" else infer_model
    def infer() -> None:
        with torch.no_grad(), autocast(device.type, precision):
            forward(x)

    def timed(fn: Callable[[], None]) -> float:
        if layout == "compiled":
            torch._dynamo.reset()  # each model compiles afresh, within dynamo's recompile limit
        return _timed(fn, sync, steps=steps, warmup=warmup)

    hdf = timed(stepper(True, "dsm", True))
    adamw = timed(stepper(False, "ce", False))
    inf = timed(infer)
    return Row(preset, f"{frames}x{size}x{size}", batch, precision, layout,
               batch / hdf, batch / adamw, batch / inf, _peak_mib(device))


def format_rows(rows: list[Row], device: torch.device) -> list[str]:
    mem = "peak MiB (allocated)" if device.type == "cuda" else "peak MiB (process RSS)"
    head = (f"  {'preset':<6} {'clip':<10} {'batch':>5} {'prec':<5} {'layout':<13} "
            f"{'hdf train':>10} {'adamw train':>11} {'infer':>9}  {mem}")
    lines = [head, "  " + "-" * (len(head) - 2)]
    for r in rows:
        lines.append(f"  {r.preset:<6} {r.clip:<10} {r.batch:>5} {r.precision:<5} {r.layout:<13} "
                     f"{r.hdf_train:>10.1f} {r.adamw_train:>11.1f} {r.infer:>9.1f}  {r.peak_mib:>8.0f}")
    return lines
