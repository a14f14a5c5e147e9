"""Video classifiers: X3D backbone with optional DAM after each stage."""
import warnings

from bench.registry import Registry

# pytorchvideo scripts a helper with torch.jit at import; torch 2.14 warns about it on every run.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

MODELS: Registry = Registry("model")

from bench.models import x3d  # noqa: E402,F401  (registers builders)
from bench.models.x3d import build_model  # noqa: E402,F401
