"""The perceptual objective: content, Gram style and total-variation losses on a feature network, weighted.

One module for the optimisation loop (``optimize``) and the training of real-time networks (``feedforward``),
used the same way by both, so that a "style weight" means the same in both. Its targets are computed apart
(:meth:`Objective.content_targets`, :meth:`Objective.style_targets`), so a caller can keep the style's while
the content changes (a batch of photos, a video frame). Tensors in, tensors out; nothing here synchronises
with the device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn

from . import losses
from .errors import ImageError
from .features import VGG, canonical_layer


def normalised(values: Sequence[float] | None, count: int) -> list[float]:
    """Relative weights divided by their sum (equal weights when None)."""
    chosen = list(values) if values is not None else [1.0] * count
    total = sum(chosen)
    return [v / total for v in chosen]


def check_size(image: torch.Tensor, net: VGG, what: str) -> None:
    """An ImageError if ``image`` is too small for the deepest layer of ``net``."""
    height, width = image.shape[-2:]
    if min(height, width) < net.min_size:
        raise ImageError(f"the {what} is {width} x {height} px at this size, too small for layer "
                         f"{net.names[-1]} (it needs at least {net.min_size} px per side); "
                         "use a larger `size` or shallower layers")


def inner(pictures: torch.Tensor, margin: int) -> torch.Tensor:
    """``pictures`` without ``margin`` pixels at each side."""
    return pictures[..., margin:pictures.shape[-2] - margin, margin:pictures.shape[-1] - margin]


@dataclass
class Targets:
    """Content activations and blended style Gram matrices to compare against."""

    content: dict[str, torch.Tensor] = field(default_factory=dict)
    grams: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """content_weight * content + style_weight * style + tv_weight * TV, each term's layers weighted.

    A layer list is switched off by a weight of 0. ``autocast`` is a context factory for the feature
    network's forward pass (mixed precision); Gram matrices and losses are always computed in float32.
    """

    def __init__(self, net: VGG, *, content_layers: Sequence[str] = (),
                 content_layer_weights: Sequence[float] | None = None, style_layers: Sequence[str] = (),
                 style_layer_weights: Sequence[float] | None = None, content_weight: float = 1.0,
                 style_weight: float = 1.0, tv_weight: float = 0.0,
                 autocast: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext) -> None:
        super().__init__()
        self.net, self.autocast, self.tv_weight = net, autocast, tv_weight
        self.content_weight, self.style_weight = content_weight, style_weight
        self.content_layers = [canonical_layer(n, net.model) for n in content_layers] if content_weight else []
        self.style_layers = [canonical_layer(n, net.model) for n in style_layers] if style_weight else []
        self.content_weights = normalised(content_layer_weights, len(content_layers))
        self.style_weights = normalised(style_layer_weights, len(style_layers))
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))

    def content_targets(self, content: torch.Tensor | None, margin: int = 0) -> dict[str, torch.Tensor]:
        """The content layers' activations of ``content`` (one per batch item) without ``margin`` pixels at
        each side; none without ``content``."""
        if not self.content_layers or content is None:
            return {}
        cropped = inner(content, margin)
        check_size(cropped, self.net, "content image")
        with torch.no_grad(), self.autocast():
            return {k: v.float() for k, v in self.net(cropped, self.content_layers).items()}

    def style_targets(self, styles: Sequence[torch.Tensor], blend: Sequence[float]) -> dict[str, torch.Tensor]:
        """The style layers' Gram matrices of ``styles``, blended by ``blend``."""
        grams: dict[str, torch.Tensor] = {}
        with torch.no_grad(), self.autocast():
            for style, share in zip(styles, blend, strict=True):
                if not self.style_layers or not share:
                    continue
                check_size(style, self.net, "style image")
                for name, feats in self.net(style, self.style_layers).items():
                    gram = losses.gram_matrix(feats.float()) * share
                    grams[name] = grams[name] + gram if name in grams else gram
        return grams

    def targets(self, content: torch.Tensor | None, styles: Sequence[torch.Tensor] = (),
                blend: Sequence[float] = ()) -> Targets:
        """Both kinds of target at once."""
        return Targets(self.content_targets(content), self.style_targets(styles, blend))

    def forward(self, pixels: torch.Tensor, targets: Targets, margin: int = 0) -> dict[str, torch.Tensor]:
        """Every term of the loss for ``pixels`` ("content:relu4_2", "style", "tv", ...); "total" is their sum.

        ``margin`` pixels at each side are left out of the content and style terms (where a feature
        network's zero padding would reward artefacts); total variation covers the whole picture.
        """
        cropped = inner(pixels, margin)
        with self.autocast():
            feats = self.net(cropped, self.layers) if self.layers else {}
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
    # ``parts`` is never empty, so the sum is a tensor, never sum()'s start value 0
    return cast(torch.Tensor, sum(w * v for v, w in zip(parts.values(), weights, strict=True)))
