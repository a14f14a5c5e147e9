"""Optimizers: base optimizers by name, SAM/ASAM around any of them, LR schedule."""
from bench.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")

from bench.optim.build import build_optimizer, build_scheduler  # noqa: E402,F401
from bench.optim.sam import SAM, bn_running_stats  # noqa: E402,F401
