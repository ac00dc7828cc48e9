"""Painting a photo in any painting's style in one pass: encode, take the painting's statistics, decode.

A :class:`Painter` holds the encoder (VGG-19 to the deepest level) and the decoders. A painting's statistics
(:meth:`Painter.painting`) are computed once and reused for every picture, frame, tile and batch item. Each
level of the cascade needs the whole picture's statistics first; a picture larger than the tile runs in two
passes per level (sums over the tiles' interiors, then each tile encoded, mapped and decoded with a halo wide
enough that its interior equals the whole picture's), so memory stays that of one tile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import colour
from ..features import VGG
from ..runtime import Runtime
from ..tiling import Box, Tiling, receptive_radius
from .decoders import Decoder, Decoders
from .settings import PaintConfig
from .transforms import Stats, apply_map, mixed

#: Picture sides are padded to a multiple of this (the deepest level's stride), so decoding gives back the size.
ALIGN = 16
#: The long side a painting's colours are kept at for ``palette`` (65,536 colours: their quantiles need no more).
COLOURS_SIDE = 256


@dataclass(frozen=True)
class Painting:
    """A painting's statistics at each level and its colours (a small copy of it), computed once
    (:meth:`Painter.painting`)."""

    stats: dict[str, Stats]
    colours: torch.Tensor


def _decoder_radius(decoder: Decoder) -> int:
    stride, radius = _stride(decoder.level), 0
    for module in decoder.body:
        if isinstance(module, nn.Conv2d):
            radius += stride
        elif isinstance(module, nn.Upsample):
            stride //= 2
    return radius


class Painter:
    """The encoder and decoders, on one runtime: :meth:`painting` takes a painting's statistics,
    :meth:`paint` paints photos with one or several of them."""

    def __init__(self, encoder: VGG, decoders: Decoders, runtime: Runtime) -> None:
        self.encoder, self.decoders, self.runtime = encoder, decoders, runtime

    def _features(self, image: torch.Tensor, levels: Sequence[str]) -> dict[str, torch.Tensor]:
        with self.runtime.autocast():
            found: dict[str, torch.Tensor] = self.encoder(image.to(self.runtime.device), list(levels))
        return {level: features.float() for level, features in found.items()}

    def _boxes(self, image: torch.Tensor, levels: Sequence[str], tile: int) -> list[Box]:
        """Tiles whose halo covers the encoder's and the decoder's reach at the deepest of ``levels``."""
        reach = 0
        for level in levels:
            decoder = self.decoders[level]
            assert isinstance(decoder, Decoder)
            reach = max(reach, receptive_radius(self.encoder, level) + _decoder_radius(decoder))
        height, width = image.shape[-2:]
        tiling = Tiling(math.ceil(tile / ALIGN) * ALIGN, math.ceil(reach / ALIGN) * ALIGN, ALIGN)
        return tiling.boxes(width, height)

    def _stats(self, image: torch.Tensor, levels: Sequence[str], boxes: list[Box], masks: torch.Tensor | None,
               whole: dict[str, torch.Tensor] | None = None) -> dict[str, list[Stats]]:
        """The whole picture's statistics at each of ``levels`` (one per mask region, or one), summed over the
        tiles' interiors; ``whole``: the features of a picture that is one tile, already computed."""
        parts: dict[str, list[Stats]] = {}
        size = (image.shape[-2], image.shape[-1])
        grids = {level: _at(masks, size, _stride(level)) for level in levels} if masks is not None else {}
        for box in boxes:
            left, top, right, bottom = box.crop
            feats = whole or self._features(image[..., top:bottom, left:right], levels)
            il, it, ir, ib = box.interior
            for level in levels:
                stride = _stride(level)
                inner = feats[level][..., (it - top) // stride:(ib - top) // stride,
                                     (il - left) // stride:(ir - left) // stride]
                if masks is None:
                    found = [Stats.of(inner)]
                else:
                    window = grids[level][..., it // stride:ib // stride, il // stride:ir // stride]
                    found = [Stats.of(inner, weight) for weight in window[:, 0]]
                parts[level] = [a + b for a, b in zip(parts[level], found, strict=True)] if level in parts else found
        return parts

    def painting(self, picture: torch.Tensor, levels: Sequence[str], tile: int = 1024) -> Painting:
        """A painting's statistics at ``levels``, from a (1, 3, H, W) picture in [0, 1]: one encoder pass a
        tile for all levels."""
        colours = F.interpolate(picture, scale_factor=min(1.0, COLOURS_SIDE / max(picture.shape[-2:])),
                                mode="area") if max(picture.shape[-2:]) > COLOURS_SIDE else picture
        picture = _pad(picture)
        with torch.no_grad():
            stats = self._stats(picture, levels, self._boxes(picture, levels, tile), None)
        return Painting({level: found[0] for level, found in stats.items()}, colours.cpu())

    def paint(self, photo: torch.Tensor, paintings: Sequence[Painting], weights: Sequence[float],
              config: PaintConfig, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Paint a (N, 3, H, W) batch in [0, 1] with a blend of ``paintings`` (``weights`` sum to 1), or with
        each painting in its region of (R, 1, H, W) ``masks`` (R = the paintings; where the masks add up to
        less than 1, the photo's own features keep the rest)."""
        with torch.no_grad():
            pictures = [self._paint_one(photo[i:i + 1], paintings, weights, config, masks)
                        for i in range(photo.shape[0])]
        return torch.cat(pictures)

    def _paint_one(self, photo: torch.Tensor, paintings: Sequence[Painting], weights: Sequence[float],
                   config: PaintConfig, masks: torch.Tensor | None) -> torch.Tensor:
        height, width = photo.shape[-2:]
        picture = _pad(photo.float())
        for level, strength in zip(config.levels, config.level_strengths(), strict=True):
            boxes = self._boxes(picture, [level], config.tile)
            # A picture of one tile is encoded once for its statistics and its decoding; tiles are encoded twice.
            whole = self._features(picture, [level]) if len(boxes) == 1 else None
            contents = self._stats(picture, [level], boxes, masks, whole)[level]
            styles = [painting.stats[level] for painting in paintings]
            if masks is None:
                maps = [mixed(config.transform, contents[0], styles, weights, strength)]
            else:
                maps = [mixed(config.transform, content, [style], [1.0], strength)
                        for content, style in zip(contents, styles, strict=True)]
            picture = self._decode(picture, level, maps, boxes, masks, whole)
        result = picture[..., :height, :width].clamp(0, 1).cpu()
        if config.preserve_color:
            return colour.restore_colour(result, photo)
        if config.palette:
            result = _palette(result, paintings, weights, masks, config.strength)
        return result

    def _decode(self, image: torch.Tensor, level: str, maps: list[tuple[torch.Tensor, torch.Tensor]],
                boxes: list[Box], masks: torch.Tensor | None,
                whole: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """``image`` with its ``level`` features mapped (by region with ``masks``) and decoded, tile by tile."""
        stride = _stride(level)
        weights = None if masks is None else _at(masks, (image.shape[-2], image.shape[-1]), stride)
        out = torch.empty_like(image)
        for box in boxes:
            left, top, right, bottom = box.crop
            feats = (whole or self._features(image[..., top:bottom, left:right], [level]))[level]
            if weights is None:
                mapped = apply_map(feats, *maps[0])
            else:
                region = weights[..., top // stride:bottom // stride, left // stride:right // stride]
                mapped = feats * (1 - region.sum(0, keepdim=True)).clamp_min(0)
                for (matrix, bias), weight in zip(maps, region, strict=True):
                    mapped = mapped + apply_map(feats, matrix, bias) * weight
            with self.runtime.autocast():
                decoded = self.decoders[level](mapped.to(self.runtime.device)).float().cpu()
            il, it, ir, ib = box.interior
            out[..., it:ib, il:ir] = decoded[..., it - top:ib - top, il - left:ir - left]
        return out


def _palette(picture: torch.Tensor, paintings: Sequence[Painting], weights: Sequence[float],
             masks: torch.Tensor | None, strength: float) -> torch.Tensor:
    """``picture`` with its colours moved toward the blend of the paintings' (or each painting's in its region of
    ``masks``), ``strength`` of the way."""
    if masks is None:
        matched = colour.match_palette(picture, [p.colours for p in paintings], weights)
    else:
        regions = masks.float() / masks.float().sum(0, keepdim=True).clamp_min(1.0)
        matched = picture * (1 - regions.sum(0, keepdim=True))
        for painting, region in zip(paintings, regions, strict=True):
            matched = matched + colour.match_palette(picture, [painting.colours]) * region
    return strength * matched + (1 - strength) * picture


def _stride(level: str) -> int:
    """How many pixels one position of ``level``'s features spans."""
    return 1 << (int(level[4]) - 1)


def _pad(image: torch.Tensor) -> torch.Tensor:
    """Reflect-pad the bottom and right to a multiple of :data:`ALIGN`."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % ALIGN, (-width) % ALIGN
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if height > pad_h and width > pad_w else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def _at(masks: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """(R, 1, H, W) masks at the photo's size, padded like the picture and averaged down to a level's grid;
    where they add up to more than 1, scaled to 1."""
    height, width = masks.shape[-2:]
    padded = F.pad(masks.float(), (0, size[1] - width, 0, size[0] - height), mode="replicate")
    down = F.avg_pool2d(padded, stride) if stride > 1 else padded
    return down / down.sum(0, keepdim=True).clamp_min(1.0)
