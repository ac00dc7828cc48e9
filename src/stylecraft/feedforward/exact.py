"""Exact tiles for a :class:`.TransformerNet`: a tiled picture equal to the whole one.

Instance normalisation is the only operation of the network that looks at the whole picture: each layer
normalises by its channels' mean and variance over all positions. So each normalisation layer's statistics
are gathered first, in order, tile by tile (pass k runs the tiles up to layer k, with the statistics of the
layers before it fixed), and then every tile runs through the whole network with all of them fixed. Every
other operation is local, so a tile run with a halo as wide as the network's receptive field gives its
interior exactly as the whole picture would. Memory stays that of one tile; the price is one pass per
normalisation layer (each shorter than a whole pass).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .net import TransformerNet

#: The network's total stride: tiles and halos are multiples of it.
ALIGN = 4


class _Stop(Exception):
    """Ends a statistics pass once the layer it measures has been reached."""


class _Norm(nn.Module):
    """An instance normalisation with fixed statistics, or one that measures its input and stops the pass."""

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.norm = norm
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.window: tuple[slice, slice] | None = None
        self.sums: list[torch.Tensor] = []
        self.stride = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:
            assert self.window is not None
            inside = x[..., self.window[0], self.window[1]].double()
            self.sums.append(torch.stack([inside.sum((2, 3)), inside.pow(2).sum((2, 3)),
                                          torch.full_like(inside[:, :, 0, 0], inside[0, 0].numel())]))
            raise _Stop
        y = (x - self.mean[..., None, None]) / self.std[..., None, None]
        return y * self.norm.weight[:, None, None] + self.norm.bias[:, None, None]

    def settle(self) -> None:
        """Turn the measured sums into the statistics of the whole picture."""
        total, squares, count = torch.stack(self.sums).sum(0)
        mean = total / count
        self.mean = mean.float()
        self.std = (squares / count - mean.pow(2)).clamp_min(0).add(self.norm.eps).sqrt().float()
        self.sums = []


@contextmanager
def _fixed_norms(net: TransformerNet) -> Iterator[list[_Norm]]:
    """The network with each instance normalisation replaced by a :class:`_Norm`, for as long as the block
    lasts; the norms come in the order the forward pass meets them."""
    swapped: list[tuple[nn.Module, str, nn.InstanceNorm2d, _Norm]] = []
    for parent in net.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                swapped.append((parent, name, child, _Norm(child)))
    for parent, name, _, norm in swapped:
        setattr(parent, name, norm)
    try:
        yield _order(net, [norm for *_, norm in swapped])
    finally:
        for parent, name, original, _ in swapped:
            setattr(parent, name, original)


def _order(net: TransformerNet, norms: list[_Norm]) -> list[_Norm]:
    """``norms`` in the order a forward pass meets them, each with its stride (from a small dry run)."""
    seen: list[_Norm] = []
    handles = [norm.register_forward_pre_hook(lambda module, args: seen.append(module)) for norm in norms]
    size = 8 * ALIGN
    probe = torch.zeros(1, 3, size, size, device=next(net.parameters()).device)
    for norm in norms:
        norm.mean = torch.zeros(1, norm.norm.num_features, device=probe.device)
        norm.std = torch.ones_like(norm.mean)
    sizes: dict[int, int] = {}

    def measure(module: nn.Module, args: object, out: torch.Tensor) -> None:
        sizes[id(module)] = out.shape[-1]

    hooks = [norm.register_forward_hook(measure) for norm in norms]
    with torch.no_grad():
        net(probe)
    for handle in [*handles, *hooks]:
        handle.remove()
    for norm in seen:
        norm.stride = size // sizes[id(norm)]
        norm.mean = norm.std = None
    return seen


def receptive_radius(net: TransformerNet) -> int:
    """How far (pixels, each side) an output pixel of ``net`` sees: its convolutions' reach, at their strides."""
    radius, stride = 0, 1
    for module in net.modules():
        if isinstance(module, nn.Upsample):
            stride //= 2
        elif isinstance(module, nn.Conv2d):
            radius += (module.kernel_size[0] // 2) * stride
            stride *= module.stride[0]
    return radius


def stylise_exactly(net: TransformerNet, image: torch.Tensor, tile: int) -> torch.Tensor:
    """``net(image)`` for an image whose sides are multiples of 4, computed in tiles of about ``tile`` pixels
    (plus a halo) with the whole picture's normalisation statistics; equal to the whole run up to rounding."""
    device = next(net.parameters()).device
    height, width = image.shape[-2:]
    tile = max(ALIGN, math.ceil(tile / ALIGN) * ALIGN)
    halo = math.ceil(receptive_radius(net) / ALIGN) * ALIGN
    boxes = [(top, left, min(height, top + tile), min(width, left + tile))
             for top in range(0, height, tile) for left in range(0, width, tile)]

    def crop(box: tuple[int, int, int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        top, left, bottom, right = box
        y0, x0 = max(0, top - halo), max(0, left - halo)
        piece = image[..., y0:min(height, bottom + halo), x0:min(width, right + halo)].to(device)
        return piece, (top - y0, left - x0)

    out = torch.empty(image.shape[0], 3, height, width)
    with torch.no_grad(), _fixed_norms(net) as norms:
        for norm in norms:
            for box in boxes:
                piece, (dy, dx) = crop(box)
                s, (h, w) = norm.stride, (box[2] - box[0], box[3] - box[1])
                norm.window = (slice(dy // s, (dy + h) // s), slice(dx // s, (dx + w) // s))
                with contextlib.suppress(_Stop):  # the pass ends at the layer it measures
                    net(piece)
            norm.settle()
        for box in boxes:
            piece, (dy, dx) = crop(box)
            result = net(piece)
            out[..., box[0]:box[2], box[1]:box[3]] = result[..., dy:dy + box[2] - box[0],
                                                            dx:dx + box[3] - box[1]].float().cpu()
    return out
