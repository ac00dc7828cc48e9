"""Decoders that invert VGG-19's features at relu1_1 ... relu5_1 back into pictures (Li et al. 2017).

Each decoder mirrors the encoder from its level down to the pixels: the same convolutions in reverse order,
nearest-neighbour upsampling where the encoder pooled (upsample-then-convolve, free of checkerboard artefacts),
reflection padding so that borders are not darkened. ``width`` scales the inner channels: 1.0 is the encoder's
own widths, 0.25 a quarter of them (about 1/16 of the weights and of the work), as in the distilled decoders of
Wang et al. 2020. The input (the encoder's channels) and the output (RGB in [0, 1]) keep their sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..errors import WeightsError
from ..features.layers import BLOCKS
from .settings import LEVELS

#: The encoder's channels in each block.
_CHANNELS = (64, 128, 256, 512, 512)
#: The root mean square of each level's features on photos (the default VGG-19 weights, Caffe's 0-255 input).
#: A decoder divides its input by it, so that every level starts near unit scale: without it the shallow
#: decoders see values in the hundreds and train hundreds of times slower.
FEATURE_SCALE = {"relu1_1": 50.0, "relu2_1": 250.0, "relu3_1": 320.0, "relu4_1": 1100.0, "relu5_1": 170.0}


def level_index(level: str) -> int:
    """The block (1-5) of a level's name."""
    if level not in LEVELS:
        raise WeightsError(f"unknown decoder level {level!r}; use one of {', '.join(LEVELS)}")
    return LEVELS.index(level) + 1


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class Decoder(nn.Module):
    """The inverse of VGG-19 from ``level`` (relu{k}_1) down to RGB; ``width`` scales its inner channels."""

    def __init__(self, level: str, width: float = 1.0) -> None:
        super().__init__()
        self.level, self.width = level, width
        block = level_index(level)
        inner = [max(8, round(c * width)) for c in _CHANNELS]
        layers: list[nn.Module] = []
        channels = _CHANNELS[block - 1]  # the encoder's own channels come in
        for b in range(block, 1, -1):
            # Block b's convolutions after its first, then its first (which changed the width), then the pool.
            convs = BLOCKS["vgg19"][b - 1] - 1 if b < block else 0
            for _ in range(convs):
                layers += _conv(channels, inner[b - 1])
                channels = inner[b - 1]
            layers += _conv(channels, inner[b - 2])
            channels = inner[b - 2]
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        if block > 1:
            layers += _conv(channels, inner[0])  # conv1_2's inverse
            channels = inner[0]
        layers += _conv(channels, 3, relu=False)
        self.body = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """A picture (RGB, about [0, 1]; unclamped so that training sees its errors) from ``features``."""
        out: torch.Tensor = self.body(features / FEATURE_SCALE[self.level])
        return out


class Decoders(nn.ModuleDict):
    """One decoder per level, by level name, all of one ``width``."""

    def __init__(self, levels: Iterable[str] = LEVELS[:4], width: float = 1.0) -> None:
        super().__init__({level: Decoder(level, width) for level in levels})
        self.width = width

    @property
    def levels(self) -> list[str]:
        """The levels that have a decoder, shallow to deep."""
        return sorted(self.keys(), key=level_index)

    def record(self) -> dict[str, Any]:
        """What rebuilds this set: its levels and width."""
        return {"levels": self.levels, "width": self.width}

    @classmethod
    def from_record(cls, record: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> Decoders:
        """The set ``record`` describes, with the weights of ``state``; a mismatch is a clear error."""
        try:
            decoders = cls(list(record["levels"]), float(record["width"]))
            decoders.load_state_dict({k: v.float() for k, v in state.items()})
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise WeightsError(f"not a set of stylecraft decoders ({str(exc).splitlines()[0][:120]})") from exc
        return decoders.eval().requires_grad_(False)
