"""The perceptual objective: content, Gram style and total-variation losses on a feature network, weighted.

Shared by the optimisation loop (``optimize``) and the training of real-time networks (``feedforward``), so
that a "style weight" means the same in both. Tensors in, tensors out; nothing here synchronises with the
device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from . import losses
from .errors import ImageError
from .features import VGG, canonical_layer


def normalised(values: Sequence[float] | None, count: int) -> list[float]:
    """Relative weights divided by their sum (equal weights when None)."""
    values = list(values) if values is not None else [1.0] * count
    total = sum(values)
    return [v / total for v in values]


def check_size(image: torch.Tensor, net: VGG, what: str) -> None:
    """An ImageError if ``image`` is too small for the deepest layer of ``net``."""
    height, width = image.shape[-2:]
    if min(height, width) < net.min_size:
        raise ImageError(f"the {what} is {width} x {height} px at this size, too small for layer "
                         f"{net.names[-1]} (it needs at least {net.min_size} px per side); "
                         "use a larger --size or shallower layers")


@dataclass
class Targets:
    """Content activations and blended style Gram matrices to compare against."""

    content: dict[str, torch.Tensor] = field(default_factory=dict)
    grams: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective:
    """content_weight * content + style_weight * style + tv_weight * TV, each term's layers weighted.

    A layer list is switched off by a weight of 0. ``autocast`` is a context factory for the network's
    forward pass (mixed precision); Gram matrices and losses are always computed in float32.
    """

    def __init__(self, net: VGG, *, content_layers: Sequence[str] = (),
                 content_layer_weights: Sequence[float] | None = None, style_layers: Sequence[str] = (),
                 style_layer_weights: Sequence[float] | None = None, content_weight: float = 1.0,
                 style_weight: float = 1.0, tv_weight: float = 0.0,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        self.net, self.autocast, self.tv_weight = net, autocast, tv_weight
        self.content_weight, self.style_weight = content_weight, style_weight
        self.content_layers = [canonical_layer(n, net.model) for n in content_layers] if content_weight else []
        self.style_layers = [canonical_layer(n, net.model) for n in style_layers] if style_weight else []
        self.content_weights = normalised(content_layer_weights, len(content_layers))
        self.style_weights = normalised(style_layer_weights, len(style_layers))
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))

    def targets(self, content: torch.Tensor | None, styles: Sequence[torch.Tensor] = (),
                blend: Sequence[float] = ()) -> Targets:
        """Content activations (one per batch item; none without ``content``) and the style Grams blended by
        ``blend``."""
        result = Targets()
        with torch.no_grad(), self.autocast():
            if self.content_layers and content is not None:
                check_size(content, self.net, "content image")
                result.content = {k: v.float() for k, v in self.net(content, self.content_layers).items()}
            for style, share in zip(styles, blend, strict=True):
                if not self.style_layers or not share:
                    continue
                check_size(style, self.net, "style image")
                for name, feats in self.net(style, self.style_layers).items():
                    gram = losses.gram_matrix(feats.float()) * share
                    result.grams[name] = result.grams[name] + gram if name in result.grams else gram
        return result

    def __call__(self, pixels: torch.Tensor, targets: Targets) -> dict[str, torch.Tensor]:
        """Every term of the loss for ``pixels`` ("content:relu4_2", "style", ...); "total" is their sum."""
        with self.autocast():
            feats = self.net(pixels, self.layers) if self.layers else {}
        terms: dict[str, torch.Tensor] = {}
        total = pixels.new_zeros(())
        if self.content_layers:
            parts = {n: losses.content_loss(feats[n].float(), targets.content[n]) for n in self.content_layers}
            terms.update({f"content:{n}": v for n, v in parts.items()})
            terms["content"] = self.content_weight * _weighted(parts, self.content_weights)
            total = total + terms["content"]
        if self.style_layers:
            parts = {n: losses.style_loss(feats[n].float(), targets.grams[n]) for n in self.style_layers}
            terms.update({f"style:{n}": v for n, v in parts.items()})
            terms["style"] = self.style_weight * _weighted(parts, self.style_weights)
            total = total + terms["style"]
        if self.tv_weight:
            terms["tv"] = self.tv_weight * losses.total_variation(pixels)
            total = total + terms["tv"]
        terms["total"] = total
        return terms


def _weighted(parts: dict[str, torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    return sum(w * v for v, w in zip(parts.values(), weights, strict=True))
