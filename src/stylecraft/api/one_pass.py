"""Any painting in one pass, at the API boundary: a picture given where a network is expected.

``load_one_pass("painting.jpg")`` (or a blend ``"a.jpg:0.7,b.jpg:0.3"``, or pictures as a list) checks the
paintings, takes their statistics once with the universal decoders (the built-in set unless another file is
named) and gives a :class:`OnePass`, which :func:`.realtime.apply_many`, video and batch run as they run a
trained network. Nothing is trained for the painting and nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .. import checks, images, universal
from ..errors import ConfigError, ImageError
from ..images import ImageInput
from ..photos import PHOTO_TYPES
from ..runtime import Runtime

#: A painting's shorter side must have at least this many pixels: its deepest level then still has 4 x 4
#: positions to take statistics from.
MIN_SIDE = 32
#: A painting whose pixels spread less than this (standard deviation, 0..1) is one flat colour: no style.
FLAT = 1.0 / 255


@dataclass
class OnePass:
    """Paintings' statistics with the decoders that paint with them; ``paint`` takes (N, 3, H, W) batches.

    ``weights`` blend the paintings (they sum to 1); with ``masks`` (one picture per painting), each painting
    paints its own region instead. ``metadata`` is what a result records of how it was painted."""

    painter: universal.Painter
    paintings: list[universal.Painting]
    weights: list[float]
    config: universal.PaintConfig
    masks: list[torch.Tensor] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def paint(self, batch: torch.Tensor, *, preserve_color: bool = False, tile: int | None = None) -> torch.Tensor:
        """Paint a (N, 3, H, W) batch in [0, 1]; ``preserve_color`` keeps the photos' colours either way."""
        changes: dict[str, Any] = {"preserve_color": preserve_color or self.config.preserve_color}
        if tile is not None:
            changes["tile"] = tile
        config = self.config.replace(**changes)
        config.validate()
        masks = None
        if self.masks is not None:
            height, width = batch.shape[-2:]
            masks = torch.cat([images.resize(mask, (width, height)) for mask in self.masks])
        return self.painter.paint(batch, self.paintings, self.weights, config, masks)


def _parts(spec: str) -> list[tuple[str, str]]:
    """``a.jpg:0.7,b.jpg`` -> [("a.jpg", "0.7"), ("b.jpg", "")]."""
    found = []
    for part in spec.split(","):
        name, colon, weight = part.strip().rpartition(":")
        found.append((name, weight) if colon and Path(name).suffix.lower() in PHOTO_TYPES else (part.strip(), ""))
    return found


def is_painting(model: object) -> bool:
    """Whether a ``model`` argument names pictures (a painting, or a blend of them) rather than a network: a
    PIL image, or a name whose every part ends in a picture's suffix (.jpg, .png, ...)."""
    if isinstance(model, Image.Image):
        return True
    if not isinstance(model, (str, os.PathLike)):
        return False
    return all(Path(name).suffix.lower() in PHOTO_TYPES for name, _ in _parts(os.fspath(model)))


def parse_paintings(spec: str) -> tuple[list[str], list[float]]:
    """The pictures of ``a.jpg:0.7,b.jpg:0.3`` (a picture alone weighs 1) and their weights, summing to 1
    (:func:`checks.blend` reads them, as it reads a blend of built-in styles)."""
    parts = _parts(spec)
    return [name for name, _ in parts], checks.blend(parts, f"paintings {spec!r}")


def load_painting(source: ImageInput, style_size: int) -> torch.Tensor:
    """A painting as a (1, 3, H, W) tensor with the long side ``style_size`` (16-bit, CMYK, palette and alpha
    pictures converted as every input is); a picture too small or of one flat colour is an ImageError."""
    name = source if isinstance(source, (str, os.PathLike)) else "the painting"
    picture = images.load_image(source)
    if min(picture.size) < MIN_SIDE:
        raise ImageError(f"{name}: {picture.size[0]} x {picture.size[1]} px is too small for a painting (at least "
                         f"{MIN_SIDE} px on each side)")
    target = images.fit_long_side(*picture.size, style_size)
    images.check_pixels(target, str(name), "style_size")
    tensor = images.resize(images.to_tensor(picture), target)
    if float(tensor.std(dim=(-2, -1)).max()) < FLAT:
        raise ImageError(f"{name}: the painting is one flat colour, so it has no style to take")
    return tensor


def load_one_pass(paintings: str | os.PathLike[str] | Image.Image | Sequence[ImageInput], *,
                  weights: Sequence[float] | None = None, masks: Sequence[ImageInput] | None = None,
                  config: universal.PaintConfig | None = None, decoders: str | os.PathLike[str] | None = None,
                  device: str = "auto", precision: str = "auto") -> OnePass:
    """Paintings ready to paint any photo in one pass.

    ``paintings`` is a picture, a blend spec (``a.jpg:0.7,b.jpg:0.3``) or a list of pictures (blended by
    ``weights``, equal by default). ``masks`` gives each painting a region (white: its region), one mask per
    painting. ``config`` sets the strength, levels, transform and the paintings' size; ``decoders`` a decoders
    file other than the built-in set; ``precision`` fp32 (the same picture on every CPU), bf16, or auto: bf16 on
    CUDA and on CPUs that compute it natively (1.5-2x faster there), fp32 elsewhere.
    """
    config = config or universal.PaintConfig()
    config.validate()
    checks.within("style_size", config.style_size)  # the paintings' long side: bounded as the optimiser's
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"`precision` {precision!r}: a painting runs in auto, fp32 or bf16")
    if isinstance(paintings, (str, os.PathLike)):
        sources: list[ImageInput] = []
        names, shares = parse_paintings(os.fspath(paintings))
        sources += names
        if weights is not None:
            raise ConfigError("give the paintings' weights in the spec (a.jpg:0.7,b.jpg:0.3) or as `weights`, "
                              "not both")
    else:
        sources = [paintings] if isinstance(paintings, Image.Image) else list(paintings)
        shares = _shares(weights, len(sources))
    if masks is not None and len(masks) != len(sources):
        raise ConfigError(f"give one mask per painting ({len(sources)} paintings, {len(masks)} masks)")
    runtime = Runtime.resolve(device, precision, cpu_bf16=True)
    painter = universal.load_painter(decoders, runtime)
    pictures = [load_painting(source, config.style_size) for source in sources]
    stats = [painter.painting(picture, config.levels, config.tile) for picture in pictures]
    regions = None if masks is None else [_mask(mask) for mask in masks]
    metadata = {"style": ",".join(map(_name, sources)), "one_pass": {
        "paintings": [_name(s) for s in sources], "weights": shares, "strength": config.strength,
        "levels": list(config.levels), "transform": config.transform, "style_size": config.style_size}}
    return OnePass(painter, stats, shares, config, regions, metadata)


def _shares(weights: Sequence[float] | None, count: int) -> list[float]:
    checks.weights("weights", weights, count)
    return checks.normalised(weights, count)


def _mask(source: ImageInput) -> torch.Tensor:
    picture = images.load_image(source).convert("L")
    tensor = images.to_tensor(picture.convert("RGB"))[:, :1]
    if not bool((tensor > 0).any()):
        raise ConfigError(f"the mask {_name(source)} is black everywhere: it gives its painting nowhere")
    return tensor


def _name(source: ImageInput) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "a picture"
