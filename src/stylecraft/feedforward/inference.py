"""Exact rewrites of a trained :class:`.TransformerNet` that compute the same pictures with less work.

The exported ONNX graph is built from :class:`InferenceNet`, not from the training network. Two layers are
rewritten; the weights are rearranged once, and the results agree with the original to float rounding:

* **Upsampling stages.** Nearest-neighbour x2 followed by a 3x3 convolution repeats each input pixel four
  times, so each of the four output phases (even/odd row and column) is a 2x2 convolution of the small input
  with summed taps: 4 instead of 9 multiply-adds per output pixel and channel, and no upsampled copy. The
  reflection padding of the upsampled picture is an edge (replicate) padding of the small one.
* **The final 9x9 convolution to 3 channels.** A convolution with 3 outputs keeps a CPU's vector units
  mostly idle. Folding 2x2 pixel blocks into channels (space-to-depth) turns it into a 5x5 convolution from
  4x the channels to 12 outputs at half the resolution, followed by depth-to-space.

What this gains with each runtime is measured in docs/performance.md (``benchmarks/realtime.py``).
"""

from __future__ import annotations

import copy
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .net import TransformerNet, _ConvLayer, _Upsample, picture

#: For an output phase of a nearest x2 upsampling, which of a 3-tap kernel's taps land on each of the two
#: small-picture pixels it reads: phase 0 reads (i-1, i), phase 1 reads (i, i+1).
_PHASE_TAPS = (torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


class _SubPixelUpsample(nn.Module):
    """``_Upsample`` (nearest x2, reflection pad 1, 3x3 convolution, then norm and ReLU) computed as four
    2x2 convolutions of the small picture, one per output phase, interleaved by depth-to-space."""

    def __init__(self, stage: _Upsample) -> None:
        super().__init__()
        layer = cast(_ConvLayer, stage[1])
        conv = cast(nn.Conv2d, layer[1])
        kernel = conv.weight.detach()
        self.channels = kernel.shape[0]
        self.weight = nn.Parameter(torch.cat([
            torch.einsum("ia,ocab,jb->ocij", _PHASE_TAPS[r], kernel, _PHASE_TAPS[s]) for r, s in _PHASES]))
        assert conv.bias is not None  # every _ConvLayer's convolution has a bias
        self.bias = nn.Parameter(conv.bias.detach().repeat(4))
        self.after = nn.Sequential(*list(layer)[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        out = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight, self.bias)
        c = self.channels
        phases = [out[:, k * c:(k + 1) * c, r:r + height, s:s + width] for k, (r, s) in enumerate(_PHASES)]
        stylised: torch.Tensor = self.after(F.pixel_shuffle(torch.stack(phases, 2).flatten(1, 2), 2))
        return stylised


class _SpaceToDepthConv(nn.Module):
    """A reflection-padded, stride-1 convolution with an odd kernel k on pictures of even size, computed on 2x2
    pixel blocks folded into channels: a ceil(k/2)-wide kernel, 4x the inputs and outputs, half the size."""

    def __init__(self, layer: _ConvLayer) -> None:
        super().__init__()
        conv = cast(nn.Conv2d, layer[1])
        kernel = conv.weight.detach()
        cout, cin, k, _ = kernel.shape
        n = (k + 1) // 2
        blocks = []
        for r, s in _PHASES:
            # output phase (r, s) reads padded input pixel 2u+v at kernel tap 2u+v-r: shift the kernel by r, s
            shifted = F.pad(kernel, (s, 2 * n - k - s, r, 2 * n - k - r)).reshape(cout, cin, n, 2, n, 2)
            blocks.append(shifted.permute(0, 1, 3, 5, 2, 4))
        self.weight = nn.Parameter(torch.stack(blocks, 1).reshape(cout * 4, cin * 4, n, n))
        assert conv.bias is not None  # every _ConvLayer's convolution has a bias
        self.bias = nn.Parameter(conv.bias.detach().repeat_interleave(4))
        self.padding = k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = F.pixel_unshuffle(F.pad(x, (self.padding,) * 4, mode="reflect"), 2)
        return F.pixel_shuffle(F.conv2d(blocks, self.weight, self.bias), 2)


class InferenceNet(nn.Module):
    """The same function as the :class:`.TransformerNet` it was made from, for pictures whose sides are
    multiples of 4 (which :func:`.apply.stylise` pads to), on the CPU; for inference and export only."""

    def __init__(self, net: TransformerNet) -> None:
        super().__init__()
        layers = list(copy.deepcopy(net).cpu().body)
        self.body = nn.Sequential(*[_SubPixelUpsample(layer) if isinstance(layer, _Upsample) else layer
                                    for layer in layers[:-1]], _SpaceToDepthConv(cast(_ConvLayer, layers[-1])))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The stylised image, (N, 3, H, W) in [0, 1]."""
        return picture(self.body(image * 2 - 1))

