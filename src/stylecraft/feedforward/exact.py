"""Exact tiles for a real-time network: a tiled picture equal to the whole one.

Instance normalisation is the only operation of the network that looks at the whole picture: each layer
normalises by its channels' mean and variance over all positions. So each normalisation layer's statistics
are gathered first, in order, tile by tile (pass k runs the tiles up to layer k, with the statistics of the
layers before it fixed), and then every tile runs through the whole network with all of them fixed. Every
other operation is local, so a tile run with a halo as wide as the network's receptive field gives its
interior exactly as the whole picture would. Memory stays that of one tile; the price is one pass per
normalisation layer (each shorter than a whole pass).

:func:`stylise_exactly` does this for any :class:`Stages`: a :class:`.TransformerNet` (:func:`torch_stages`)
or an exported graph run by an inference runtime (``graph.py``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
from torch import nn

from .net import TransformerNet

#: The network's total stride: tiles and halos are multiples of it.
ALIGN = 4

#: A tile's interior inside the piece that is run: top, left, height, width, in pixels, multiples of ALIGN.
Window = tuple[int, int, int, int]


class Stages(Protocol):
    """A network whose instance normalisations can take the statistics of the whole picture from outside."""

    #: How far (pixels, each side, a multiple of ALIGN) an output pixel sees: a tile's halo.
    halo: int
    #: Where pieces are run.
    device: torch.device

    def __len__(self) -> int:
        """The number of normalisation layers."""

    def measure(self, index: int, piece: torch.Tensor, window: Window) -> torch.Tensor:
        """(3, N, C) float64: the sum, the sum of squares and the count of the input of normalisation ``index``
        over ``window`` of ``piece``, the layers before it normalised with their fixed statistics."""

    def fix(self, index: int, mean: torch.Tensor, variance: torch.Tensor) -> None:
        """Normalise layer ``index`` by these (N, C) statistics from now on."""

    def run(self, piece: torch.Tensor) -> torch.Tensor:
        """The network's output for ``piece``, every layer normalised by its fixed statistics."""


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
        self.measured: torch.Tensor | None = None
        self.stride = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:
            assert self.window is not None
            inside = x[..., self.window[0], self.window[1]].double()
            self.measured = torch.stack([inside.sum((2, 3)), inside.pow(2).sum((2, 3)),
                                         torch.full_like(inside[:, :, 0, 0], inside[0, 0].numel())])
            raise _Stop
        y = (x - self.mean[..., None, None]) / self.std[..., None, None]
        return y * self.norm.weight[:, None, None] + self.norm.bias[:, None, None]


class _TorchStages:
    """:class:`Stages` for a :class:`.TransformerNet` whose normalisations are :class:`_Norm` for now."""

    def __init__(self, net: TransformerNet, norms: list[_Norm]) -> None:
        self.net, self.norms = net, norms
        self.device = next(net.parameters()).device
        self.halo = halo(net)

    def __len__(self) -> int:
        return len(self.norms)

    def measure(self, index: int, piece: torch.Tensor, window: Window) -> torch.Tensor:
        norm, (top, left, height, width) = self.norms[index], window
        s = norm.stride
        norm.window = (slice(top // s, (top + height) // s), slice(left // s, (left + width) // s))
        with contextlib.suppress(_Stop):  # the pass ends at the layer it measures
            self.net(piece)
        assert norm.measured is not None
        return norm.measured

    def fix(self, index: int, mean: torch.Tensor, variance: torch.Tensor) -> None:
        norm = self.norms[index]
        norm.mean = mean.float()
        norm.std = (variance + norm.norm.eps).sqrt().float()

    def run(self, piece: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.net(piece)
        return result


@contextmanager
def torch_stages(net: TransformerNet) -> Iterator[Stages]:
    """``net`` as :class:`Stages`: each instance normalisation replaced by a :class:`_Norm` for as long as the
    block lasts."""
    swapped: list[tuple[nn.Module, str, nn.InstanceNorm2d, _Norm]] = []
    for parent in net.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                swapped.append((parent, name, child, _Norm(child)))
    for parent, name, _, norm in swapped:
        setattr(parent, name, norm)
    try:
        yield _TorchStages(net, _order(net, [norm for *_, norm in swapped]))
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


def halo(net: TransformerNet) -> int:
    """A tile's halo for ``net``: its receptive radius, rounded up to a multiple of ALIGN."""
    return math.ceil(receptive_radius(net) / ALIGN) * ALIGN


def stylise_exactly(stages: Stages, image: torch.Tensor, tile: int) -> torch.Tensor:
    """The network's output for an image whose sides are multiples of 4, computed in tiles of about ``tile``
    pixels (plus a halo) with the whole picture's normalisation statistics; equal to the whole run up to
    rounding."""
    height, width = image.shape[-2:]
    tile = max(ALIGN, math.ceil(tile / ALIGN) * ALIGN)
    halo = stages.halo
    boxes = [(top, left, min(height, top + tile), min(width, left + tile))
             for top in range(0, height, tile) for left in range(0, width, tile)]

    def crop(box: tuple[int, int, int, int]) -> tuple[torch.Tensor, Window]:
        top, left, bottom, right = box
        y0, x0 = max(0, top - halo), max(0, left - halo)
        piece = image[..., y0:min(height, bottom + halo), x0:min(width, right + halo)].to(stages.device)
        return piece, (top - y0, left - x0, bottom - top, right - left)

    out = torch.empty(image.shape[0], 3, height, width)
    with torch.no_grad():
        for index in range(len(stages)):
            total, squares, count = torch.stack([stages.measure(index, *crop(box)) for box in boxes]).sum(0)
            mean = total / count
            stages.fix(index, mean, (squares / count - mean.pow(2)).clamp_min(0))
        for box in boxes:
            piece, (dy, dx, h, w) = crop(box)
            out[..., box[0]:box[2], box[1]:box[3]] = stages.run(piece)[..., dy:dy + h, dx:dx + w].float().cpu()
    return out
