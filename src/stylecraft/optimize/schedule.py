"""Coarse to fine: the sizes of a run's scales, the iterations each gets, and the style image's size."""

from __future__ import annotations

import math

from .. import images
from ..errors import ConfigError
from .settings import TransferConfig

#: Fewer iterations than this at the full size leave a picture soft (its fine detail barely starts).
FINEST_MINIMUM = 5


def style_canvas(config: TransferConfig, content_size: tuple[int, int] | None,
                 style_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) to resize a style image to: ``style_size``, or ``style_scale`` times the canvas."""
    if config.style_size is not None:
        long_side = config.style_size
    else:
        canvas = max(content_size) if content_size else config.size
        long_side = max(1, round(canvas * config.style_scale))
    return images.fit_long_side(*style_size, long_side)


def schedule(config: TransferConfig, full: tuple[int, int]) -> list[tuple[tuple[int, int], int]]:
    """The coarse-to-fine plan: [((width, height), iterations), ...] from the smallest scale to ``full``.

    Sides grow by sqrt(2) from about ``min_size`` to the full size (``scales`` fixes their number). The
    ``iterations`` are shared out so that small, cheap scales get the most: weights n, n-1, ..., 1 from the
    coarsest to the finest. At 512 px that is 5 scales and about a quarter of the work of the same number of
    full-size steps. ``single_scale`` or an image no larger than ``min_size`` gives one scale.
    """
    width, height = full
    long_side = max(full)
    if config.single_scale:
        count = 1
    elif config.scales is not None:
        count = config.scales
    elif config.scale_iterations is not None:
        count = len(config.scale_iterations)
    else:
        count = 1 + max(0, int(math.floor(2 * math.log2(long_side / config.min_size) + 0.05)))
    sides = [long_side / math.sqrt(2) ** k for k in reversed(range(count))]
    if count > 1 and (config.scales is not None or config.scale_iterations is not None):
        ratio = (long_side / config.min_size) ** (1 / (count - 1))
        sides = [long_side / ratio**k for k in reversed(range(count))]
    sizes = [images.fit_long_side(width, height, round(side)) for side in sides[:-1]] + [full]
    if config.scale_iterations is not None:
        counts = list(config.scale_iterations)
        if len(counts) != count:
            raise ConfigError(f"`scale_iterations`: {len(counts)} numbers for {count} scales")
    else:
        shares = list(range(count, 0, -1))
        counts = [max(1, round(config.iterations * share / sum(shares))) for share in shares]
    return list(zip(sizes, counts, strict=True))


def soft_warning(plan: list[tuple[tuple[int, int], int]]) -> str | None:
    """A line for a person when the full size gets too few of a coarse-to-fine run's iterations to be sharp
    (a print's long run of scales leaves the finest one little): how many would give it enough."""
    (width, height), finest = plan[-1]
    if len(plan) == 1 or finest >= FINEST_MINIMUM:
        return None
    total = sum(count for _, count in plan)
    needed = math.ceil(FINEST_MINIMUM * sum(range(1, len(plan) + 1)))
    return (f"warning: the full size ({width}x{height}) gets {finest} of {total} iterations and will come out "
            f"soft; `iterations` {needed} or more gives it {FINEST_MINIMUM} (or set `scale_iterations`)")
