"""libkd: a benchmark harness for LIB-KD distillation ablations into Vision Transformers."""

from harness.errors import LibKDError

__version__ = "0.1.0"
__all__ = ["LibKDError", "__version__"]
