"""stylecraft: neural style transfer for PyTorch.

Public API (re-exports only; nothing here reads files or probes devices at import time)::

    import stylecraft
    picture = stylecraft.transfer("photo.jpg", "painting.jpg", size=512)
    picture.save("out.png")
"""

from .api import reconstruct, run, texture, transfer
from .errors import ConfigError, ImageError, RunError, StylecraftError, UsageError, WeightsError
from .features import FeatureNetwork
from .optimize import Mode, Progress, Result, TransferConfig
from .runtime import Runtime

__all__ = ["ConfigError", "FeatureNetwork", "ImageError", "Mode", "Progress", "Result", "RunError", "Runtime",
           "StylecraftError", "TransferConfig", "UsageError", "WeightsError", "reconstruct", "run", "texture",
           "transfer"]
