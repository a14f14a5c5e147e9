"""Training objectives: cross-entropy, imbalance baselines and DSM."""
from bench.registry import Registry

LOSSES: Registry = Registry("loss")

from bench.losses import baselines, dsm  # noqa: E402,F401  (registers builders)
from bench.losses.base import LossOutput, Term, build_loss  # noqa: E402,F401
