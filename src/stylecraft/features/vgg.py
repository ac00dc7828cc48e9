"""VGG-16 and VGG-19 with named layers, frozen, truncated after the deepest layer a run needs.

Layer names follow the papers: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``. Keras-style names
are accepted too: ``block{b}_conv{i}`` is the *activated* output in Keras (its convolutions carry their ReLU),
so it means ``relu{b}_{i}``; ``block{b}_pool`` means ``pool{b}``. The network applies its weight set's
preprocessing itself: callers always pass RGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .layers import POOLINGS, canonical_layer, layer_names
from .weights import WeightSet, conv_shapes


class VGG(nn.Module):
    """A frozen VGG feature network that returns the activations of named layers.

    Only the layers up to the deepest one in ``layers`` are built, so no time or memory goes to the rest.
    """

    order: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, weights: WeightSet, layers: Iterable[str], pooling: str = "max") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
        self.model = weights.model
        self.pooling = pooling
        names = layer_names(self.model)
        wanted = [canonical_layer(layer, self.model) for layer in layers]
        if not wanted:
            raise ConfigError("no layers asked for")
        last = max(names.index(layer) for layer in wanted)
        self.names = names[: last + 1]
        pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        modules: dict[str, nn.Module] = {}
        shapes = iter(zip(conv_shapes(self.model), weights.convs, strict=False))
        for name in self.names:
            if name.startswith("conv"):
                (cin, cout), (weight, bias) = next(shapes)
                conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(weight)
                    assert conv.bias is not None  # a Conv2d made with its default bias=True
                    conv.bias.copy_(bias)
                modules[name] = conv
            elif name.startswith("relu"):
                modules[name] = nn.ReLU(inplace=False)
            else:
                modules[name] = pool(kernel_size=2, stride=2)
        self.layers = nn.ModuleDict(modules)
        pre = weights.preprocess
        self.register_buffer("order", torch.tensor(pre.order), persistent=False)
        self.register_buffer("scale", torch.tensor(pre.scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(pre.shift).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()
        # Channels-last convolutions are faster on CPUs (oneDNN) and on tensor-core GPUs.
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stub lacks memory_format

    @property
    def min_size(self) -> int:
        """The smallest image side (pixels) for which the deepest layer still has one position."""
        side: int = 2 ** sum(1 for n in self.names if n.startswith("pool"))
        return side

    def activation_bytes(self, width: int, height: int) -> int:
        """Bytes of float32 activations one forward pass keeps for the backward pass at this image size."""
        total, channels = 3 * width * height, 3
        for name, module in self.layers.items():
            if isinstance(module, nn.Conv2d):
                channels = module.out_channels
            elif name.startswith("pool"):
                width, height = width // 2, height // 2
            total += channels * width * height
        return 4 * total

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> what the weights were trained on."""
        return image[:, self.order] * self.scale - self.shift

    def forward(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` (stylecraft or Keras names) for an RGB [0, 1] batch."""
        wanted: dict[str, list[str]] = {}
        for layer in layers:
            wanted.setdefault(canonical_layer(layer, self.model), []).append(layer)
        missing = [layer for layer in wanted if layer not in self.layers]
        if missing:
            raise ConfigError(f"layer {missing[0]} is deeper than this truncated network ({self.names[-1]})")
        out: dict[str, torch.Tensor] = {}
        remaining = len(wanted)
        x = self.preprocess(image).contiguous(memory_format=torch.channels_last)
        for name, module in self.layers.items():
            x = module(x)
            if name in wanted:
                out.update(dict.fromkeys(wanted[name], x))
                remaining -= 1
                if not remaining:
                    break
        return out
