"""Applying a trained network: any size, padded to a multiple of 4, large images in tiles.

A :class:`.TransformerNet` runs large images in exact tiles (``exact.py``: the whole picture's
normalisation statistics first, then each tile with a halo), equal to the whole picture. A runtime running an
export cannot be given outside statistics, so there instance normalisation sees each tile's own and tiles
overlap and are blended with linear ramps. Either way memory stays bounded by the tile size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .. import images
from .exact import stylise_exactly
from .net import TransformerNet


class _OnDevice(Protocol):
    """A callable network that says where its results come back (a RuntimeNet)."""

    @property
    def device(self) -> torch.device: ...

    def __call__(self, image: torch.Tensor, /) -> torch.Tensor: ...


#: A TransformerNet, or anything that maps (N, 3, H, W) to the same and says its ``device`` (a RuntimeNet).
Network = nn.Module | _OnDevice


def _device(net: Network) -> torch.device:
    return next(net.parameters()).device if isinstance(net, nn.Module) else net.device


def _padded(net: Network | Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """Run ``net`` on an image of any size: reflect-pad to a multiple of 4, then crop back."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % 4, (-width) % 4
    if pad_h or pad_w:
        mode = "reflect" if height > pad_h and width > pad_w else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    result: torch.Tensor = net(image)
    return result[..., :height, :width]


def _ramp(length: int, overlap: int, start: bool, end: bool) -> torch.Tensor:
    weights = torch.ones(length)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1]
    if start and overlap:
        weights[:overlap] = ramp
    if end and overlap:
        weights[-overlap:] = ramp.flip(0)
    return weights


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def stylise(net: Network, image: torch.Tensor, tile: int = 1024, overlap: int = 64) -> torch.Tensor:
    """Stylise a (N, 3, H, W) batch in [0, 1]; images larger than ``tile`` go through tiles: exact ones for a
    :class:`.TransformerNet` (``exact.py``), overlapping blended ones for a runtime running an export."""
    device = _device(net)
    height, width = image.shape[-2:]
    with torch.no_grad():
        if height <= tile and width <= tile:
            return _padded(net, image.to(device)).float().cpu().clamp(0, 1)
        if isinstance(net, TransformerNet):
            return _padded(lambda padded: stylise_exactly(net, padded, tile), image).clamp(0, 1)
        out = torch.zeros(image.shape[0], 3, height, width)
        total = torch.zeros(1, 1, height, width)
        step = tile - overlap
        for top in _starts(height, tile, step):
            for left in _starts(width, tile, step):
                piece = image[..., top:top + tile, left:left + tile].to(device)
                result = _padded(net, piece).float().cpu()
                h, w = result.shape[-2:]
                weight = (_ramp(h, overlap, top > 0, top + h < height)[:, None]
                          * _ramp(w, overlap, left > 0, left + w < width)[None, :])
                out[..., top:top + h, left:left + w] += result * weight
                total[..., top:top + h, left:left + w] += weight
        return (out / total).clamp(0, 1)


def apply(net: Network, image: torch.Tensor, *, size: int | None = None, preserve_color: bool = False,
          tile: int = 1024, overlap: int = 64) -> torch.Tensor:
    """Resize (``size`` = long side, optional), stylise, and optionally keep the photo's colours."""
    if size is not None:
        image = images.resize_long_side(image, size)
    result = stylise(net, image, tile=tile, overlap=overlap)
    if preserve_color:
        result = images.restore_colour(result, image)
    return result
