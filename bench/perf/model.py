"""Model cost: ms per clip forward+backward for X3D, X3D+DAM and a full HDF step.

Three ratios decide the goals: X3D+DAM / X3D (goal <= 1.10), a full HDF step
(DAM + DSM + SAM: two forward/backward passes) / a plain AdamW step (goal
<= 2.2), and the HDF step with the gradient probe every `--diag-every` steps /
without it (goal <= 1.05). The probe's ratio is the step time averaged over
k steps, one of them probed: 1 + (probed - plain) / (k * plain), from a probed
and a plain step timed alike. All variants are timed round-robin in one process.

Then a throughput table (`bench.perf.throughput`): training clips/s of the
HDF and AdamW steps and inference clips/s, per preset x batch size x
precision x layout, with the peak memory; on CUDA, the line for the GPU goal
(HDF training of X3D-S at 16x112x112 >= 1,000 clips/s on one H100).

    python -m bench.perf model                               # cpu: ratios + tiny/S at batch 8, 16
    python -m bench.perf model --device cuda --no-ratios --presets s --batches 8,16,32,64
"""
from __future__ import annotations

import argparse
from typing import Callable

import torch
import torch.nn.functional as F

from bench.cli import positive_int
from bench.config import TrainConfig
from bench.engine import resolve_device
from bench.errors import ConfigError
from bench.data.labels import NUM_CLASSES
from bench.losses import build_loss
from bench.losses.term_grads import GradientProbe
from bench.models import build_model
from bench.optim import build_optimizer
from bench.perf.throughput import format_rows, measure
from bench.perf.timing import interleaved, median
from bench.step import Stepper

LAYOUTS = ("contiguous", "channels_last", "compiled")
# HDF training of X3D-S at 16x112x112 on one H100 (the GPU goal).
GPU_GOAL = ("s", 1000.0)
# preset -> (frames, crop, batch): the CPU preset at its training size, X3D-S at DFEW's.
SHAPES = {"tiny": (8, 64, 8), "xs": (8, 112, 2), "s": (16, 112, 2), "m": (16, 224, 1)}


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"{what} must be a comma-separated list of "
                                         f"{', '.join(allowed)}; got {text!r}")
    return items


def _batches(text: str) -> list[int]:
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 2:
        raise argparse.ArgumentTypeError(f"--batches must be integers >= 2, e.g. 8,16; got {text!r}")
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--presets", default="tiny,s", help="comma-separated X3D presets (tiny,xs,s,m)")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds per variant")
    ap.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=_batches, default=None,
                    help="throughput: batch sizes (default 8,16 on cpu, 8,16,32,64 on cuda)")
    ap.add_argument("--precisions", default="fp32,bf16",
                    type=lambda t: _names(t, ("fp32", "bf16", "fp16"), "--precisions"),
                    help="throughput: precisions (fp32,bf16,fp16; fp16 on cuda only)")
    ap.add_argument("--layouts", default="contiguous",
                    type=lambda t: _names(t, LAYOUTS, "--layouts"),
                    help=f"throughput: memory layouts ({', '.join(LAYOUTS)}: channels_last_3d, "
                         "torch.compile)")
    ap.add_argument("--steps", type=positive_int, default=3, help="throughput: timed steps per row")
    ap.add_argument("--no-ratios", action="store_true", help="skip the cost ratios")
    ap.add_argument("--no-throughput", action="store_true", help="skip the clips/s table")
    ap.add_argument("--diag-every", type=int, default=TrainConfig.diag_every,
                    help="gradient probe period k the probe's ratio is averaged over "
                         "(default: train.diag_every's default)")


def _variants(preset: str, t: int, s: int, b: int, device: torch.device) -> dict[str, Callable[[], None]]:
    x = torch.randn(b, 3, t, s, s, device=device)  # (B, C, T, H, W)
    y = torch.arange(b, device=device) % NUM_CLASSES
    counts = [10] * NUM_CLASSES

    def net(dam: bool) -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model("x3d", num_frames=t, crop_size=s, preset=preset,
                           dam_stages=[dam] * 4).to(device).train()

    plain, with_dam = net(False), net(True)

    def fwd_bwd(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            logits, _ = model(x)
            F.cross_entropy(logits, y).backward()
            model.zero_grad(set_to_none=True)
        return run

    base_model = net(False)
    base_opt = build_optimizer(base_model.parameters(), name="adamw", lr=1e-3)
    ce = build_loss("ce", class_counts=counts).to(device)

    def adamw_step() -> None:
        logits, z = base_model(x)
        ce(logits, z, y).total.backward()
        base_opt.step()
        base_opt.zero_grad(set_to_none=True)

    def hdf_step(probe: bool) -> Callable[[], None]:
        model = net(True)
        params = [p for p in model.parameters() if p.requires_grad]
        stepper = Stepper(model=model, loss_fn=build_loss("dsm", class_counts=counts).to(device),
                          optimizer=build_optimizer(params, name="adamw", lr=1e-3, sam=True,
                                                    rho=0.05),
                          params=params, probe=GradientProbe(1))

        def run() -> None:
            stepper.step(x, y, probe=probe)
        return run

    return {"x3d fwd+bwd": fwd_bwd(plain), "x3d+dam fwd+bwd": fwd_bwd(with_dam),
            "adamw step (x3d, ce)": adamw_step, "hdf step (dam+dsm+sam)": hdf_step(False),
            "hdf step, probed": hdf_step(True)}


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    for preset in presets:
        if preset not in SHAPES:
            raise ConfigError(f"unknown preset '{preset}'. Known: {', '.join(SHAPES)}")
    if "fp16" in args.precisions and device.type != "cuda":
        raise ConfigError(f"--precisions fp16 needs a CUDA device, got --device {args.device}")
    print(f"device {_device_name(device)}, torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}")
    if not args.no_ratios:
        _ratios(args, presets, device)
    if not args.no_throughput:
        _throughput(args, presets, device)
    return 0


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _throughput(args: argparse.Namespace, presets: list[str], device: torch.device) -> None:
    batches = args.batches or ([8, 16, 32, 64] if device.type == "cuda" else [8, 16])
    print(f"\nthroughput, clips/s ({args.steps} timed steps after 2 warm-up steps; "
          "random clips already on the device)")
    rows: list = []
    for preset in presets:
        t, s, _ = SHAPES[preset]
        for b in batches:
            for prec in args.precisions:
                for layout in args.layouts:
                    rows.append(measure(preset=preset, frames=t, size=s, batch=b, precision=prec,
                                        layout=layout, device=device, steps=args.steps))
                    lines = format_rows(rows[-1:], device)
                    print("\n".join(lines if len(rows) == 1 else lines[-1:]), flush=True)
    goal_preset, goal = GPU_GOAL
    best = max((r for r in rows if r.preset == goal_preset), key=lambda r: r.hdf_train, default=None)
    if device.type == "cuda" and best is not None:
        print(f"  HDF training, X3D-S 16x112x112: best {best.hdf_train:.0f} clips/s (batch "
              f"{best.batch}, {best.precision}, {best.layout}) on {_device_name(device)}; goal >= "
              f"{goal:.0f} on one H100: {'met' if best.hdf_train >= goal else 'missed'}")


def _ratios(args: argparse.Namespace, presets: list[str], device: torch.device) -> None:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"{args.repeats} rounds, median ms per clip")
    for preset in presets:
        t, s, b = SHAPES[preset]
        fns = _variants(preset, t, s, b, device)
        timed = {k: (lambda f=f: (f(), sync())) for k, f in fns.items()}
        times = interleaved(timed, repeats=args.repeats)
        ms = {k: 1000 * median(v) / b for k, v in times.items()}
        print(f"\n{preset}: clip {t}x{s}x{s}, batch {b}")
        for k, v in ms.items():
            print(f"  {k:<24} {v:9.1f} ms/clip")
        dam_ratio = ms["x3d+dam fwd+bwd"] / ms["x3d fwd+bwd"]
        hdf_ratio = ms["hdf step (dam+dsm+sam)"] / ms["adamw step (x3d, ce)"]
        print(f"  ratio DAM / plain X3D       {dam_ratio:5.2f}x  (goal <= 1.10: "
              f"{'met' if dam_ratio <= 1.10 else 'missed'})")
        print(f"  ratio HDF step / AdamW step {hdf_ratio:5.2f}x  (goal <= 2.20: "
              f"{'met' if hdf_ratio <= 2.20 else 'missed'})")
        k = max(1, args.diag_every)
        once = ms["hdf step, probed"] / ms["hdf step (dam+dsm+sam)"]
        every = 1 + (once - 1) / k
        print(f"  ratio HDF step with probe every {k} / without {every:5.3f}x  (one probed step "
              f"{once:.2f}x; goal <= 1.05: {'met' if every <= 1.05 else 'missed'})")
