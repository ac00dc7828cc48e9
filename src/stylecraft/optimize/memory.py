"""How much memory an optimisation run needs, and how it fits the device: whole, or tile by tile with the
optimiser's history sized to what is left; refused, before any work, only when even that cannot fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..features import VGG
from ..runtime import Runtime
from ..tiling import Tiling
from .settings import TransferConfig

#: Peak memory of one step over the activations its forward pass keeps: 1.3-1.5 measured by
#: benchmarks/scaling.py at 512-1024 px on the CPU (gradients and oneDNN workspaces come on top); 2 leaves
#: room for the targets, the image copies and the Python process itself.
MEMORY_FACTOR = 2.0
#: L-BFGS keeps this many pairs of image-sized vectors when memory allows (torch's own default).
HISTORY = 100
#: With fewer pairs than this L-BFGS steers badly; a run that cannot afford them uses Adam instead.
MIN_HISTORY = 5
#: Tile sides tried, largest first: larger tiles repeat less of their halo's work.
TILE_SIDES = (1024, 768, 512, 384, 256)
#: Image-sized tensors a tiled run holds besides the optimiser's: the picture, its gradient, the content and
#: style images, the guard's copies and L-BFGS's working vectors.
TILED_IMAGES = 10


def amount(size: float) -> str:
    """Bytes for a person: GiB, or MiB below one GiB."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def _image_bytes(size: tuple[int, int]) -> int:
    return 3 * 4 * size[0] * size[1]


def estimate_memory(net: VGG, size: tuple[int, int], optimizer: str, history: int = HISTORY) -> float:
    """Bytes a whole (untiled) run at ``size`` is expected to need at its peak: activations and the
    optimiser's state (L-BFGS keeps ``history`` pairs of image-sized vectors; Adam keeps two)."""
    images_kept = 2 * history if optimizer == "lbfgs" else 2
    return MEMORY_FACTOR * net.activation_bytes(*size) + images_kept * _image_bytes(size)


def _content_target_bytes(net: VGG, size: tuple[int, int], layers: tuple[str, ...]) -> int:
    width, height = size
    total, channels = 0, 3
    for name, module in net.layers.items():
        channels = getattr(module, "out_channels", channels)
        if name.startswith("pool"):
            width, height = width // 2, height // 2
        if name in layers:
            total += 4 * channels * width * height
    return total


Scale = tuple[tuple[int, int], int]


def _pairs(history: int, count: int) -> int:
    """The L-BFGS pairs a scale of ``count`` iterations keeps: one per iteration, at most ``history``."""
    return min(history, count)


@dataclass(frozen=True)
class MemoryPlan:
    """How a run fits: the scales in ``tiled`` go tile by tile (``tile`` px), the optimiser is ``optimizer``
    with ``history`` L-BFGS pairs at those scales, and the run's peak is about ``needed`` of ``available``
    bytes (None where the device cannot tell)."""

    tile: int | None
    tiled: tuple[tuple[int, int], ...]
    optimizer: str
    history: int
    needed: float
    available: int | None

    def history_for(self, size: tuple[int, int]) -> int:
        """The L-BFGS history of a scale of ``size``: all of it where the scale runs whole."""
        return self.history if size in self.tiled else HISTORY

    def tiling(self, net: VGG, size: tuple[int, int]) -> Tiling | None:
        """The tiles for a scale of ``size``, or None to run it whole."""
        return Tiling.for_net(net, self.tile) if self.tile is not None and size in self.tiled else None

    def describe(self, net: VGG, plan: list[Scale]) -> str:
        """One line for a person: the estimate, the optimiser, and how each scale runs."""
        available = f" of {amount(self.available)} free" if self.available is not None else ""
        pairs = _pairs(self.history, plan[-1][1])
        optimizer = "Adam" if self.optimizer == "adam" else (
            f"L-BFGS with {pairs} pair{'' if pairs == 1 else 's'} at full size")
        scales = []
        for size, count in plan:
            tiling = self.tiling(net, size)
            how = f"{tiling.count(*size)} tiles of {tiling.tile} px" if tiling else "whole"
            scales.append(f"{size[0]}x{size[1]} {count} it. {how}")
        return f"about {amount(self.needed)}{available}; {optimizer}; " + ", ".join(scales)


def plan_memory(net: VGG, plan: list[Scale], runtime: Runtime, config: TransferConfig,
                budget: int | None = None) -> MemoryPlan:
    """The plan for a run of ``plan``'s scales ((width, height), iterations) within ``budget`` bytes
    (default: what the device has free).

    A run whose every scale fits whole runs as it always has. Otherwise (or where ``config.tile`` asks for
    tiles) the scales that do not fit go tile by tile, with the largest tile and the longest L-BFGS history
    that fit, or Adam when L-BFGS cannot keep even a few pairs. A scale keeps at most one pair per iteration,
    so a full-size scale of a few iterations needs few. A ConfigError when nothing fits.
    """
    available = budget if budget is not None else runtime.available_memory()
    size, count = plan[-1]

    def whole(scale: Scale) -> float:
        return estimate_memory(net, scale[0], config.optimizer, _pairs(HISTORY, scale[1]))

    needed = max(whole(scale) for scale in plan)
    if config.tile is None and (available is None or needed <= available):
        return MemoryPlan(None, (), config.optimizer, HISTORY, needed, available)
    if config.tile is not None:
        tiled = tuple(s for s, _ in plan if max(s) > config.tile)
    else:
        tiled = tuple(s for s, c in plan if available is not None and whole((s, c)) > available)
    image = _image_bytes(size)
    largest_whole = max((whole(scale) for scale in plan if scale[0] not in tiled), default=0.0)
    fixed = TILED_IMAGES * image + _content_target_bytes(net, size, config.content_layers)
    for side in (config.tile,) if config.tile else TILE_SIDES:
        tiling = Tiling.for_net(net, side)
        base = fixed + MEMORY_FACTOR * net.activation_bytes(*_crop(tiling.crop_side(), size))
        room = math.inf if available is None else available - base
        history = HISTORY if available is None else min(HISTORY, int(room // (2 * image)))
        if config.optimizer == "lbfgs" and history >= min(MIN_HISTORY, count):
            return MemoryPlan(tiling.tile, tiled, "lbfgs", history,
                              max(largest_whole, base + 2 * _pairs(history, count) * image), available)
        if room >= 2 * image:
            return MemoryPlan(tiling.tile, tiled, "adam", 0, max(largest_whole, base + 2 * image), available)
    assert available is not None  # an unknown budget always fits
    smallest = fixed + MEMORY_FACTOR * net.activation_bytes(*_crop(TILE_SIDES[-1], size)) + 2 * image
    fits = int(max(size) * math.sqrt(available / smallest) / 16) * 16
    remedy = f"use `size` {fits} or less" if fits >= 16 else "free some memory or give a larger `max_memory`"
    raise ConfigError(f"a {size[0]} x {size[1]} image needs about {amount(smallest)} on {runtime.device.type} "
                      f"even tile by tile, but only {amount(available)} is free; {remedy}")


def _crop(side: int, size: tuple[int, int]) -> tuple[int, int]:
    """The largest crop a tile of ``side`` pixels (with its halo) runs on, in a picture of ``size``."""
    return min(side, size[0]), min(side, size[1])
