"""Tiles of a picture for a feature network, so that features computed tile by tile equal the whole picture's.

Each tile has an *interior*, and the tiles' interiors partition the picture; it is run with a *halo* of
surrounding pixels at least as wide as the network's receptive field reaches, so every feature whose position
lies in the interior sees exactly the pixels it sees in the whole picture (the network's zero padding then
falls only on the picture's real borders). Interiors and halos are multiples of the network's total stride,
so the pooling windows of a tile are those of the whole picture. Sums over feature positions (a content
error, a Gram matrix) can then be added up tile by tile, exactly: the memory of a forward and backward pass is
that of one tile, whatever the picture's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from .features import VGG
from .losses import Moments, guided_sums


def receptive_radius(net: VGG, layer: str | None = None) -> int:
    """How far (pixels, each side) ``layer`` (default: the deepest of ``net``) sees beyond its own position."""
    radius, stride = 0, 1
    for name, module in net.layers.items():
        if isinstance(module, nn.Conv2d):
            radius += (module.kernel_size[0] // 2) * stride
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            radius += stride
            stride *= 2
        if name == layer:
            break
    return radius


@dataclass(frozen=True)
class Box:
    """A tile of a ``full`` (width, height) picture: its interior ``(left, top, right, bottom)`` and the crop it
    is run on (the interior and its halo, cut at the picture's borders), in pixels."""

    interior: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]
    full: tuple[int, int]

    def inside(self, stride: int, size: tuple[int, int]) -> tuple[slice, slice, slice, slice]:
        """For a layer of ``stride`` whose whole map is ``size`` (width, height): the rows and columns of the
        tile's interior in the tile's own map, then in the whole map."""
        left, top, right, bottom = self.interior
        crop_left, crop_top = self.crop[:2]
        # Pooling floors odd sizes: the last tiles end where the whole map ends.
        right_f = size[0] if right == self.full[0] else right // stride
        bottom_f = size[1] if bottom == self.full[1] else bottom // stride
        rows = slice(top // stride - crop_top // stride, bottom_f - crop_top // stride)
        cols = slice(left // stride - crop_left // stride, right_f - crop_left // stride)
        return rows, cols, slice(top // stride, bottom_f), slice(left // stride, right_f)


@dataclass(frozen=True)
class Tiling:
    """Square tiles of ``tile`` pixels (the interior) with ``halo`` pixels around them, both multiples of
    ``align`` (the network's total stride)."""

    tile: int
    halo: int
    align: int

    @classmethod
    def for_net(cls, net: VGG, tile: int) -> Tiling:
        """Tiles of about ``tile`` pixels for ``net``: rounded up to its stride, with a halo that covers its
        receptive field."""
        align = 2 ** sum(1 for name in net.names if name.startswith("pool"))
        halo = math.ceil(receptive_radius(net) / align) * align
        return cls(max(align, math.ceil(tile / align) * align), halo, align)

    def boxes(self, width: int, height: int) -> list[Box]:
        """The tiles of a ``width`` x ``height`` picture, row by row."""
        found = []
        for top in range(0, height, self.tile):
            for left in range(0, width, self.tile):
                right, bottom = min(width, left + self.tile), min(height, top + self.tile)
                crop = (max(0, left - self.halo), max(0, top - self.halo), min(width, right + self.halo),
                        min(height, bottom + self.halo))
                found.append(Box((left, top, right, bottom), crop, (width, height)))
        return found

    def count(self, width: int, height: int) -> int:
        """How many tiles a ``width`` x ``height`` picture has."""
        return math.ceil(width / self.tile) * math.ceil(height / self.tile)

    def crop_side(self) -> int:
        """The largest side of a tile's crop (what one pass holds in memory)."""
        return self.tile + 2 * self.halo


def _strides(net: VGG, layers: list[str]) -> dict[str, int]:
    strides, stride = {}, 1
    for name in net.names:
        if name.startswith("pool"):
            stride *= 2
        strides[name] = stride
    return {layer: strides[layer] for layer in layers}


def map_size(net: VGG, layer: str, width: int, height: int) -> tuple[int, int]:
    """The (width, height) of ``layer``'s map for a ``width`` x ``height`` picture (pooling floors odd sides)."""
    for name in net.names:
        if name.startswith("pool"):
            width, height = width // 2, height // 2
        if name == layer:
            break
    return width, height


def tiles(net: VGG, image: torch.Tensor, layers: list[str], tiling: Tiling,
          autocast: Callable[[], AbstractContextManager[None]] = nullcontext, requires_grad: bool = False,
          ) -> Iterator[tuple[Box, torch.Tensor, dict[str, tuple[torch.Tensor, tuple[slice, slice]]]]]:
    """For each tile of ``image``: its box, its crop (with ``requires_grad``, a leaf of its own whose ``grad``
    the caller adds into the picture's), and per layer the tile's interior features (float32) with their rows
    and columns in the whole map."""
    height, width = image.shape[-2:]
    strides = _strides(net, list(layers))
    sizes = {layer: map_size(net, layer, width, height) for layer in layers}
    for box in tiling.boxes(width, height):
        left, top, right, bottom = box.crop
        crop = image[..., top:bottom, left:right]
        if requires_grad:
            crop = crop.detach().requires_grad_(True)
        with autocast():
            feats = net(crop, layers)
        inner = {}
        for layer in layers:
            rows, cols, whole_rows, whole_cols = box.inside(strides[layer], sizes[layer])
            inner[layer] = (feats[layer][..., rows, cols].float(), (whole_rows, whole_cols))
        yield box, crop, inner


def features(net: VGG, image: torch.Tensor, layers: list[str], tiling: Tiling,
             autocast: Callable[[], AbstractContextManager[None]] = nullcontext) -> dict[str, torch.Tensor]:
    """The whole picture's features of ``layers`` (float32), computed tile by tile without gradients."""
    height, width = image.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for _, _, inner in tiles(net, image, layers, tiling, autocast):
            for layer, (feats, (rows, cols)) in inner.items():
                if layer not in out:
                    w, h = map_size(net, layer, width, height)
                    out[layer] = feats.new_zeros((*feats.shape[:2], h, w))
                out[layer][..., rows, cols] = feats
    return out


def moments(net: VGG, image: torch.Tensor, layers: list[str], tiling: Tiling,
            autocast: Callable[[], AbstractContextManager[None]] = nullcontext,
            weights: dict[str, torch.Tensor] | None = None) -> dict[str, Moments]:
    """The whole picture's feature moments of ``layers`` (as :meth:`.losses.Moments.of`, or
    :meth:`.losses.Moments.guided` by each layer's whole-map ``weights``), summed tile by tile without
    gradients."""
    totals: dict[str, Sums] = {}
    with torch.no_grad():
        for _, _, inner in tiles(net, image, layers, tiling, autocast):
            add_sums(totals, inner, layers, weights)
    return {layer: found.moments() for layer, found in totals.items()}


@dataclass(frozen=True)
class Sums:
    """A layer's sums over positions: of the feature vectors (N, C), of their outer products (N, C, C), and
    how many positions they cover. Added tile by tile, they give the whole picture's :class:`.losses.Moments`."""

    first: torch.Tensor
    second: torch.Tensor
    count: int | torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor, weights: torch.Tensor | None = None) -> Sums:
        """The sums of (N, C, H, W) activations, or of (1, C, H, W) ones weighted by each region of (R, H, W)
        ``weights`` (the count is then each region's weight)."""
        if weights is not None:
            return cls(*guided_sums(features, weights))
        flat = features.reshape(*features.shape[:2], -1)
        return cls(flat.sum(-1), torch.bmm(flat, flat.transpose(1, 2)), flat.shape[-1])

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.first + other.first, self.second + other.second, self.count + other.count)

    def moments(self) -> Moments:
        """The moments these sums give (differentiable with respect to ``first`` and ``second``)."""
        return Moments.from_sums(self.first, self.second, self.count)


def add_sums(totals: dict[str, Sums], inner: dict[str, tuple[torch.Tensor, tuple[slice, slice]]],
             layers: Iterable[str], weights: dict[str, torch.Tensor] | None = None) -> None:
    """Add one tile's sums of ``layers`` (its interior features, as :func:`tiles` yields them) to ``totals``;
    with ``weights`` (each layer's (R, H, W) over the whole map), the regions' weighted sums."""
    for layer in layers:
        feats, (rows, cols) = inner[layer]
        found = Sums.of(feats, weights[layer][..., rows, cols] if weights else None)
        totals[layer] = totals[layer] + found if layer in totals else found
