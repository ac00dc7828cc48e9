"""Applying a trained network: any size, padded to a multiple of 4, large images in exact tiles.

Large images run in tiles (``exact.py``: the whole picture's normalisation statistics first, then each tile
with a halo), equal to the whole picture, for a :class:`.TransformerNet` and for an export run by an inference
runtime (``graph.py``) alike. Memory stays bounded by the tile size.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F

from .. import colour, images
from ..runtime import Runtime
from .exact import Stages, stylise_exactly, torch_stages
from .loaded import Network
from .net import TransformerNet
from .settings import TILE


def _device(net: Network) -> torch.device:
    return next(net.parameters()).device if isinstance(net, TransformerNet) else net.device


def _stages(net: Network) -> AbstractContextManager[Stages]:
    return torch_stages(net) if isinstance(net, TransformerNet) else nullcontext(net.stages())


def _padded(net: Network | Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """Run ``net`` on an image of any size: reflect-pad to a multiple of 4, then crop back."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % 4, (-width) % 4
    if pad_h or pad_w:
        mode = "reflect" if height > pad_h and width > pad_w else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    result: torch.Tensor = net(image)
    return result[..., :height, :width]


def stylise(net: Network, image: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """Stylise a (N, 3, H, W) batch in [0, 1]; an image with a side over ``tile`` pixels runs in exact tiles of
    ``tile`` pixels (the rule of the optimiser's ``tile`` too: ``TransferConfig``). A network on CUDA computes
    in IEEE fp32 (:meth:`.Runtime.work`)."""
    with torch.no_grad(), Runtime(_device(net)).work():
        if image.shape[-2] <= tile and image.shape[-1] <= tile:
            return _padded(net, image.to(_device(net))).float().cpu().clamp(0, 1)
        with _stages(net) as stages:
            return _padded(lambda padded: stylise_exactly(stages, padded, tile), image).clamp(0, 1)


def apply(net: Network, image: torch.Tensor, *, size: int | None = None, preserve_color: bool = False,
          tile: int = TILE) -> torch.Tensor:
    """Resize (``size`` = long side, optional), stylise, and optionally keep the photo's colours."""
    if size is not None:
        image = images.resize_long_side(image, size)
    result = stylise(net, image, tile=tile)
    if preserve_color:
        result = colour.restore_colour(result, image)
    return result
