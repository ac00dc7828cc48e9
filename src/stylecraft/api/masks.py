"""Masks at the API boundary: pictures (paths, bytes, PIL) in, checked (R, 1, H, W) tensors out, for
:class:`~stylecraft.objective.Regions`. White is a style's region, black is not, grey a partial weight.

Also masks without painting by hand: :func:`region_masks` reads a picture whose flat colours name the regions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageColor

from .. import images
from ..errors import ConfigError
from ..images import ImageInput
from ..objective import Regions

#: A flat colour of a region picture covers at least this share of it; rarer colours are edges or noise.
MIN_SHARE = 0.005
#: Colours of a region picture closer than this (RGB, 0-255) to a flat colour, or to a mix of two (the edges
#: between regions, blurred or anti-aliased), are no region of their own.
MERGE_DISTANCE = 64.0
#: A region picture is read at most this large (its masks are resized to the photo's size anyway).
MAX_SIDE = 2048
#: A named colour must be this close (RGB, 0-255) to one of the picture's flat colours.
NAME_DISTANCE = 100.0


def _name(source: ImageInput) -> str:
    return str(source) if not isinstance(source, (Image.Image, bytes)) else "the picture"


def _mask(source: ImageInput, size: tuple[int, int], what: str, owner: str,
          note: Callable[[str], None] | None) -> torch.Tensor:
    """One mask as a (1, 1, H, W) tensor at ``size`` (width, height), with a ``note`` if it was resized."""
    picture = images.load_image(source)
    found = torch.from_numpy(np.asarray(picture.convert("L"), dtype=np.float32) / 255.0)[None, None]
    if not bool((found > 0).any()):
        raise ConfigError(f"{what} ({_name(source)}) is black everywhere: it gives its style nowhere")
    if picture.size != size and note is not None:
        note(f"{what} ({_name(source)}) is {picture.size[0]} x {picture.size[1]} px, {owner} "
             f"{size[0]} x {size[1]}: resized to fit")
    return images.resize(found, size)


def load_regions(masks: Sequence[ImageInput], style_masks: Sequence[ImageInput | None] | None,
                 content: Image.Image, styles: Sequence[torch.Tensor], size: tuple[int, int],
                 note: Callable[[str], None] | None = None) -> Regions:
    """The :class:`Regions` of ``masks`` (one per style, over the photo ``content``) and ``style_masks`` (one
    per style or None, over its painting; a None entry: all of it), at the run's ``size`` (width, height) and
    the paintings' sizes. A ConfigError, naming the mask, for a count that does not match the styles or a mask
    that is black everywhere; an ImageError for one that cannot be read. ``note`` hears of masks resized."""
    if len(masks) != len(styles):
        raise ConfigError(f"`masks`: {len(masks)} mask(s) for {len(styles)} style(s); give one mask per style, "
                          "in the styles' order")
    sources = list(style_masks) if style_masks is not None else [None] * len(styles)
    if len(sources) != len(styles):
        raise ConfigError(f"`style_masks`: {len(sources)} mask(s) for {len(styles)} style(s); give one per style "
                          "(None for all of a painting)")
    found = [images.resize(_mask(m, content.size, f"mask {i + 1}", "the photo", note), size)
             for i, m in enumerate(masks)]
    painted = tuple(None if m is None else _mask(m, (s.shape[-1], s.shape[-2]), f"style mask {i + 1}",
                                                 f"style {i + 1}", note)
                    for i, (m, s) in enumerate(zip(sources, styles, strict=True)))
    return Regions(torch.cat(found), painted)


def _to_mix(colour: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """How far ``colour`` is from every mix of colours ``a`` and ``b`` (the segment between them)."""
    span = b - a
    share = float(np.clip(np.dot(colour - a, span) / max(float(np.dot(span, span)), 1e-9), 0, 1))
    return float(np.linalg.norm(colour - a - share * span))


def _owners(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The flat colour (an index into ``table``) of each of (P, 3) ``pixels``: of the mixes of two flat colours
    (the segments between them), the one nearest the pixel, and of its two colours the one it is nearer. So a
    soft edge goes to one of the two regions it lies between, never to a third colour that happens to be nearer
    (the middle of an edge between yellow and black is nearer red than either)."""
    if len(table) == 1:
        return np.zeros(len(pixels), dtype=np.int64)
    best = np.full(len(pixels), np.inf, dtype=np.float32)
    owner = np.zeros(len(pixels), dtype=np.int64)
    for i, j in itertools.combinations(range(len(table)), 2):
        start, span = table[i].astype(np.float32), (table[j] - table[i]).astype(np.float32)
        share = np.clip((pixels - start) @ span / max(float(span @ span), 1e-9), 0, 1)
        distance = np.linalg.norm(pixels - start - share[:, None] * span, axis=1)
        closer = distance < best
        best[closer] = distance[closer]
        owner[closer] = np.where(share[closer] < 0.5, i, j)
    return owner


def _flat_colours(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat colours of (P, 3) ``pixels`` in order of first appearance, and each pixel's one (:func:`_owners`)."""
    bins, first, inverse, counts = np.unique(pixels // 16, axis=0, return_index=True, return_inverse=True,
                                             return_counts=True)
    inverse = inverse.reshape(-1)
    common = [b for b in np.argsort(first) if counts[b] >= MIN_SHARE * len(pixels)]
    colours: list[np.ndarray] = []
    for b in sorted(common, key=lambda b: -counts[b]):  # the largest first, so that merges keep them
        colour = pixels[inverse == b].mean(0)
        if all(_to_mix(colour, c, d) >= MERGE_DISTANCE for c in colours for d in colours):
            colours.append(colour)
    if not colours:
        return np.zeros((0, 3), np.float32), np.zeros(len(pixels), np.int64)
    table = np.array(colours)
    nearest = _owners(pixels.astype(np.float32), table)
    order = np.argsort([int(np.argmax(nearest == i)) for i in range(len(table))])
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return table[order], rank[nearest]


def _hex(colour: np.ndarray) -> str:
    return "#" + "".join(f"{round(float(v)):02x}" for v in colour)


def _read_regions(picture: ImageInput) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """A region ``picture`` (at most MAX_SIDE), its flat colours in order of appearance and each pixel's one; a
    ConfigError for a picture without any (noise, or a photo: no colour covers MIN_SHARE of it)."""
    image = images.load_image(picture, max_side=MAX_SIDE)
    table, owner = _flat_colours(np.asarray(image, dtype=np.float32).reshape(-1, 3))
    if not len(table):
        raise ConfigError(f"{_name(picture)} has no flat colours (none covers {MIN_SHARE:.1%} of it); paint the "
                          "regions in a few flat colours")
    return image, table, owner


def flat_colours(picture: ImageInput) -> list[str]:
    """The flat colours (``#rrggbb``) of a ``picture`` whose flat colours name regions, in order of appearance
    (row by row from the top left), as :func:`region_masks` tells them apart."""
    return [_hex(colour) for colour in _read_regions(picture)[1]]


def region_masks(picture: ImageInput, count: int | None = None,
                 colours: Sequence[str] | None = None) -> list[Image.Image]:
    """Masks (white: the region) from a ``picture`` whose flat colours name regions: its first ``count`` flat
    colours in order of appearance (row by row from the top left), or the regions of ``colours`` (names or
    ``#rrggbb`` as Pillow reads them), in that order. Each pixel goes to the nearer of the two flat colours it
    is nearest a mix of, so blurred or anti-aliased edges are split between their two regions; colours left
    over are no region (the photo is kept there)."""
    image, table, owner = _read_regions(picture)
    shown = ", ".join(_hex(c) for c in table)
    if colours is not None:
        chosen = []
        for name in colours:
            try:
                wanted = np.array(ImageColor.getrgb(name)[:3], dtype=np.float32)
            except ValueError:
                raise ConfigError(f"`regions`: {name!r} is not a colour name or #rrggbb") from None
            distance = np.linalg.norm(table - wanted, axis=1)
            if distance.min() > NAME_DISTANCE:
                raise ConfigError(f"`regions`: {_name(picture)} has no region near {name} (its flat colours: "
                                  f"{shown})")
            chosen.append(int(distance.argmin()))
    else:
        wanted_count = count if count is not None else len(table)
        if wanted_count > len(table):
            raise ConfigError(f"`mask_from`: {_name(picture)} has {len(table)} flat colour(s) ({shown}) for "
                              f"{wanted_count} style(s)")
        chosen = list(range(wanted_count))
    width, height = image.size
    return [Image.fromarray(((owner == index).reshape(height, width) * 255).astype(np.uint8), "L")
            for index in chosen]
