"""How long a run will take, told before it starts: one step of the feature network measured at two small
sizes gives a fixed cost and a cost per pixel, which the plan's scales and iterations multiply out.

A step's cost is mostly the feature network's forward and backward pass (the loss terms and the optimiser
add a measured ``OVERHEAD``), nearly proportional to the pixels it sees; a tiled scale sees each tile with its
halo, and each scale's targets cost about one step more. Measured, not guessed from the device's name, so a
busy machine gets a longer estimate.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import torch

from .. import images
from ..features import VGG
from ..tiling import Tiling

Scale = tuple[tuple[int, int], int]
#: The long sides the step is measured at (each at most the picture's own, at least the network's smallest
#: input): small enough to cost a fraction
#: of a second on a CPU, two of them to tell a step's fixed cost from its cost per pixel.
PROBES = (128, 192)
#: Timed passes at each probe size, after one pass that warms the caches up; their median counts.
REPEATS = 2
#: A run's time over its network passes alone (the loss terms, the optimiser, the guard and the progress
#: events): the draft preset's run of chicago.jpg took 107 s against 82 s of passes on this project's two
#: CPU cores, shared and busy (one measurement; smaller runs before the estimate's last form gave 1.3-1.5).
OVERHEAD = 1.3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _step_seconds(net: VGG, size: tuple[int, int], autocast: Callable[[], AbstractContextManager[None]]) -> float:
    """The median seconds of one forward and backward pass of ``net`` over a ``size`` picture."""
    device = next(net.parameters()).device
    picture = torch.rand(1, 3, size[1], size[0], device=device, requires_grad=True)
    times = []
    for _ in range(REPEATS + 1):
        began = time.perf_counter()
        with autocast():
            features = net(picture, [net.names[-1]])
        sum(f.float().mean() for f in features.values()).backward()
        _sync(device)
        times.append(time.perf_counter() - began)
    return statistics.median(times[1:])


def _seen(size: tuple[int, int], tiling: Tiling | None) -> int:
    """The pixels a step at ``size`` passes through the network: the picture, or its tiles with their halos."""
    if tiling is None:
        return size[0] * size[1]
    return sum((box.crop[2] - box.crop[0]) * (box.crop[3] - box.crop[1]) for box in tiling.boxes(*size))


def expected_seconds(net: VGG, plan: Sequence[Scale], tiling: Callable[[tuple[int, int]], Tiling | None],
                     autocast: Callable[[], AbstractContextManager[None]]) -> float:
    """The seconds ``plan``'s iterations should take on ``net``'s device, from steps measured at ``PROBES``
    (``tiling`` says how each scale runs, ``autocast`` is the run's precision)."""
    width, height = plan[-1][0]
    least = math.ceil(net.min_size * max(width, height) / min(width, height))  # the network's smallest input
    sizes = sorted({images.fit_long_side(width, height, max(least, min(side, max(width, height))))
                    for side in PROBES})
    measured = [(size[0] * size[1], _step_seconds(net, size, autocast)) for size in sizes]
    (small, fixed), (large, slow) = measured[0], measured[-1]
    per_pixel = (slow - fixed) / (large - small) if large > small else 0.0
    if per_pixel <= 0:  # one probe, or noise that made the larger step the faster: all of it scales
        per_pixel, fixed = slow / large, 0.0
    else:
        fixed = max(0.0, fixed - per_pixel * small)
    # Each scale first computes its targets: forward passes of the content and the styles, about a step.
    return OVERHEAD * sum((count + 1) * (fixed + per_pixel * _seen(size, tiling(size))) for size, count in plan)


def duration(seconds: float) -> str:
    """Seconds for a person: s below two minutes, min below two hours, h above."""
    if seconds < 120:
        return f"{max(1, math.ceil(seconds))} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
