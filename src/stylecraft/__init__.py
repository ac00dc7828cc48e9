"""stylecraft: neural style transfer for PyTorch.

Public API (re-exports only; nothing here reads files or probes devices at import time)::

    import stylecraft
    picture = stylecraft.transfer("photo.jpg", "painting.jpg", size=512)
    picture.save("out.png")
"""

from .api import reconstruct, run, texture, transfer
from .errors import ConfigError, ImageError, RunError, StylecraftError, UsageError, WeightsError
from .optimize import Progress, Result, TransferConfig

__all__ = ["ConfigError", "ImageError", "Progress", "Result", "RunError", "StylecraftError", "TransferConfig",
           "UsageError", "WeightsError", "reconstruct", "run", "texture", "transfer"]
