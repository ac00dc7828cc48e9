"""How much memory an optimisation run needs, and refusing, before any work, one that cannot fit."""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..features import VGG
from ..runtime import Runtime

#: Peak memory of one step over the activations its forward pass keeps: 1.3-1.5 measured by
#: benchmarks/scaling.py at 512-1024 px on the CPU (gradients and oneDNN workspaces come on top); 2 leaves
#: room for the targets, the image copies and the Python process itself.
MEMORY_FACTOR = 2.0


def estimate_memory(net: VGG, size: tuple[int, int], optimizer: str) -> float:
    """Bytes a run at ``size`` is expected to need at its peak: activations and the optimiser's state.

    L-BFGS keeps 100 pairs of image-sized vectors, which dominates at large sizes; Adam keeps two.
    """
    images_kept = 2 * 100 if optimizer == "lbfgs" else 2
    return MEMORY_FACTOR * net.activation_bytes(*size) + images_kept * 3 * 4 * size[0] * size[1]


def check_memory(net: VGG, size: tuple[int, int], runtime: Runtime, optimizer: str) -> None:
    """Refuse, before any work, a size whose estimated peak memory exceeds what the device has free."""
    available = runtime.available_memory()
    needed = estimate_memory(net, size, optimizer)
    if available is None or needed <= available:
        return
    fits = int(max(size) * math.sqrt(available / needed) / 16) * 16
    raise ConfigError(f"a {size[0]} x {size[1]} image needs about {needed / 2**30:.1f} GiB on "
                      f"{runtime.device.type}, but only {available / 2**30:.1f} GiB is free; use `size` {fits} or less")
