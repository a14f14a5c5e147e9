"""Which device scores the models: the one they were trained on, where this machine has it.

    checkpoint configs' train.device (auto, cpu, cuda, cuda:N), --device, CUDA devices
        -> choose_device -> DeviceChoice(name, note)     in process: resolve_device(name)
        -> array_device  -> (DeviceChoice, GPUs per task) on a SLURM job array

Pure functions: the caller counts the CUDA devices and reads the checkpoints.
An explicit --device wins (resolve_device refuses a bad one in one line). Without
one, each model's train.device is resolved as training would resolve it here;
models that disagree are all scored on the GPU one of them names, and a model
trained on a GPU this machine lacks is scored where it can be, with a one-line
note. Predictions do not depend on the device beyond float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bench.config import DEVICE_NAME
from bench.errors import ConfigError

__all__ = ["DeviceChoice", "choose_device", "array_device"]


@dataclass(frozen=True)
class DeviceChoice:
    name: str  # "cpu", "cuda", "cuda:N" (or the --device given, checked by resolve_device)
    note: str | None = None  # one line when the models' training device could not be kept


def _check(name: str) -> str:
    if not isinstance(name, str) or DEVICE_NAME.fullmatch(name) is None:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return name


def _index(name: str) -> int:
    return int(name.partition(":")[2] or 0)


def _devices(n: int) -> str:
    return "no CUDA" if n == 0 else f"{n} CUDA device{'s' if n > 1 else ''}"


def _listed(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def choose_device(trained: Sequence[str], *, cuda: int, requested: str | None = None,
                  where: str = "this machine") -> DeviceChoice:
    """The device to score on, given each model's train.device and `cuda` CUDA devices.

    auto -> cuda when there is one, else cpu (as resolve_device); cuda:N beyond the
    devices -> cuda (no CUDA: cpu), noted; models resolving to different devices
    -> all on the first GPU among them, noted. `requested` (--device) is returned
    as given. `where` names the place in the note ("each array task").
    """
    if requested is not None:
        return DeviceChoice(_check(requested))
    if not trained:
        raise ConfigError("no models to choose a device for")
    notes = []
    lost = [d for d in map(_check, trained) if d.startswith("cuda") and _index(d) >= cuda]
    here = [("cuda" if cuda else "cpu") if d == "auto" or d in lost else d for d in trained]
    if lost:
        notes.append(f"models trained on {_listed(lost)}; {where} has {_devices(cuda)}")
    gpus = [h for h in here if h != "cpu"]
    keys = {f"cuda:{_index(h)}" if h != "cpu" else h for h in here}
    name = gpus[0] if gpus else "cpu"
    if len(keys) > 1:
        notes.append(f"models trained on {_listed(trained)}" + (
            f" would run on {_listed(here)} here" if _listed(here) != _listed(trained) else ""))
    if not notes:
        return DeviceChoice(name)
    return DeviceChoice(name, "; ".join(notes) + f": scoring {'all ' if len(keys) > 1 else ''}"
                                                 f"on {name}")


def array_device(trained: Sequence[str], *, gpus: int, requested: str | None = None
                 ) -> tuple[DeviceChoice, int]:
    """(device, GPUs per task) for a SLURM job array, whose tasks have what they ask for.

    `gpus` is --gpus-per-task (0: not given). Without it, a task asks for one GPU
    when a model was trained on cuda or cuda:N (a task's GPUs are its own, so the
    index is dropped), none for cpu and auto, so a CPU cluster needs no flag; auto
    -> cuda when the tasks get a GPU. --device cuda:N asks for N+1. A cpu choice
    asks for no GPU, noting GPUs given with --gpus-per-task.
    """
    if requested is not None:
        need = _index(requested) + 1 if _check(requested).startswith("cuda") else 0
    else:
        trained = ["cuda" if _check(d).startswith("cuda") else d for d in trained]
        need = int("cuda" in trained)
    have = gpus or need
    if requested is not None:
        name = ("cuda" if have else "cpu") if requested == "auto" else requested
        choice = DeviceChoice(name)
    else:
        choice = choose_device(trained, cuda=have, where="each array task")
    if choice.name == "cpu":
        if gpus:
            unused = f"--gpus-per-task {gpus} unused: scoring on cpu (pass --device cuda to use them)"
            choice = DeviceChoice("cpu", f"{choice.note}; {unused}" if choice.note else unused)
        return choice, 0
    return choice, max(have, _index(choice.name) + 1)
