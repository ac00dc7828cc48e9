"""The perceptual objective: content, style and total-variation losses on a feature network, weighted.

One module for the optimisation loop (``optimize``) and the training of real-time networks (``feedforward``),
used the same way by both, so that a "style weight" means the same in both. Its targets are computed apart
(:meth:`Objective.content_targets`, :meth:`Objective.style_targets`), so a caller can keep the style's while
the content changes (a batch of photos, a video frame). Tensors in, tensors out; nothing here synchronises
with the device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from . import checks, losses
from . import tiling as tiled
from .errors import ImageError
from .features import VGG, canonical_layer
from .losses import Moments, StyleTarget
from .tiling import Tiling


def check_size(image: torch.Tensor, net: VGG, what: str) -> None:
    """An ImageError if ``image`` is too small for the deepest layer of ``net``."""
    height, width = image.shape[-2:]
    if min(height, width) < net.min_size:
        raise ImageError(f"the {what} is {width} x {height} px at this size, too small for layer "
                         f"{net.names[-1]} (it needs at least {net.min_size} px per side); "
                         "use a larger `size` or shallower layers")


#: The weight of the term that holds the picture to the photo where no region's mask covers it (a mean squared
#: difference of pixels in [0, 1]): without it, the style terms of nearby regions reach in through the deep
#: layers' receptive fields (hundreds of pixels) and repaint it.
KEEP_WEIGHT = 1000.0

@dataclass(frozen=True)
class Regions:
    """Where each style goes (Gatys et al. 2017's spatial control): ``masks`` (R, 1, H, W) over the picture,
    0..1, one per style in the styles' order; and ``sources``, for each style the part of its painting to take
    the style from ((1, 1, h, w) over the painting, 0..1), or None for all of it. Where no mask covers the
    picture, only the content term, total variation and a term that holds it to the photo act."""

    masks: torch.Tensor
    sources: tuple[torch.Tensor | None, ...]

    def to(self, device: torch.device) -> Regions:
        """The same regions on ``device``."""
        return Regions(self.masks.to(device), tuple(None if m is None else m.to(device) for m in self.sources))


def inner(pictures: torch.Tensor, margin: int) -> torch.Tensor:
    """``pictures`` without ``margin`` pixels at each side."""
    return pictures[..., margin:pictures.shape[-2] - margin, margin:pictures.shape[-1] - margin]


@dataclass
class Targets:
    """Content activations and the blended styles' statistics to compare against (of their features, and of
    their pixels' colours for the colour term); for a video frame, the last frame's result moved by the motion
    (``previous``) and where that motion is ``reliable``; with regions, each style layer's region ``weights``
    ((R, h, w) over its whole map, one region a style) and the ``pixel_weights`` (R, H, W) of the colour
    term, the style targets then holding one batch item a region; where the regions leave some of the picture
    ``uncovered`` ((1, 1, H, W), 0..1), the ``photo`` it keeps there."""

    content: dict[str, torch.Tensor] = field(default_factory=dict)
    style: dict[str, StyleTarget] = field(default_factory=dict)
    colours: StyleTarget | None = None
    previous: torch.Tensor | None = None
    reliable: torch.Tensor | None = None
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    pixel_weights: torch.Tensor | None = None
    photo: torch.Tensor | None = None
    uncovered: torch.Tensor | None = None


class Objective(nn.Module):
    """content_weight * content + style_weight * style + color_weight * colour + tv_weight * TV (+
    temporal_weight * temporal for a video frame whose targets carry the previous result), each term's layers
    weighted. The colour term is the relative Wasserstein-2 distance between the picture's pixel colours and
    the styles' (their RGB mean and covariance): it pulls the picture into the painting's palette, which the
    Gram matrices alone leave largely to the start image.

    A layer list is switched off by a weight of 0. ``style_loss`` is how style is compared (one of
    ``choices.STYLE_LOSSES``). ``autocast`` is a context factory for the feature network's forward pass (mixed
    precision); feature statistics and losses are always computed in float32 (the Wasserstein loss's matrix
    square roots in float64). ``layer_blend`` gives style layers their own blend of the styles (scale control:
    the deep layers from one painting, the shallow ones from another); the others take the run's blend.
    """

    def __init__(self, net: VGG, *, content_layers: Sequence[str] = (),
                 content_layer_weights: Sequence[float] | None = None, style_layers: Sequence[str] = (),
                 style_layer_weights: Sequence[float] | None = None, content_weight: float = 1.0,
                 style_weight: float = 1.0, tv_weight: float = 0.0, temporal_weight: float = 0.0,
                 style_loss: str = "gram", color_weight: float = 0.0,
                 autocast: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
                 layer_blend: Mapping[str, Sequence[float]] | None = None) -> None:
        super().__init__()
        self.net, self.autocast, self.tv_weight, self.temporal_weight = net, autocast, tv_weight, temporal_weight
        self.content_weight, self.style_weight, self.style_loss = content_weight, style_weight, style_loss
        self.color_weight = color_weight
        self.content_layers = [canonical_layer(n, net.model) for n in content_layers] if content_weight else []
        self.style_layers = [canonical_layer(n, net.model) for n in style_layers] if style_weight else []
        self.content_weights = checks.normalised(content_layer_weights, len(content_layers))
        self.style_weights = checks.normalised(style_layer_weights, len(style_layers))
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.layer_blend = {canonical_layer(n, net.model): tuple(v) for n, v in (layer_blend or {}).items()}

    def content_targets(self, content: torch.Tensor | None, margin: int = 0,
                        tiling: Tiling | None = None) -> dict[str, torch.Tensor]:
        """The content layers' activations of ``content`` (one per batch item) without ``margin`` pixels at
        each side; none without ``content``. With ``tiling``, computed tile by tile (same values)."""
        if not self.content_layers or content is None:
            return {}
        cropped = inner(content, margin)
        check_size(cropped, self.net, "content image")
        if tiling is not None:
            return tiled.features(self.net, cropped, self.content_layers, tiling, self.autocast)
        with torch.no_grad(), self.autocast():
            return {k: v.float() for k, v in self.net(cropped, self.content_layers).items()}

    def style_targets(self, styles: Sequence[torch.Tensor], blend: Sequence[float],
                      tiling: Tiling | None = None, sources: Sequence[torch.Tensor | None] | None = None,
                      ) -> dict[str, StyleTarget]:
        """The style layers' targets for ``styles`` blended by ``blend`` (a weighted sum of their moments, each
        layer by its ``layer_blend`` where it has one). With ``sources`` (:attr:`Regions.sources`) the styles are
        not blended: each is a region's target, one batch item a style, its moments guided by its source mask.
        With ``tiling``, the moments of styles larger than a tile are summed tile by tile (same values, up to
        rounding)."""
        blended: dict[str, Moments] = {}
        regions: dict[str, list[Moments]] = {}
        for index, (style, source) in enumerate(zip(styles, sources or [None] * len(styles), strict=True)):
            shares = {name: self.layer_blend.get(name, blend)[index] for name in self.style_layers}
            if not self.style_layers or (sources is None and not any(shares.values())):
                continue
            found = self._moments(style, tiling, self.region_weights(source)[0] if source is not None else None)
            for name, moments in found.items():
                if sources is not None:
                    regions.setdefault(name, []).append(moments)
                elif shares[name]:
                    share = shares[name]
                    blended[name] = blended[name] + moments * share if name in blended else moments * share
        for name, parts in regions.items():
            blended[name] = Moments.stack(parts)
        return {name: StyleTarget.of(moments, self.style_loss) for name, moments in blended.items()}

    def _moments(self, style: torch.Tensor, tiling: Tiling | None,
                 weights: dict[str, torch.Tensor] | None) -> dict[str, Moments]:
        """The style layers' moments of ``style`` (guided by each layer's ``weights`` where given)."""
        check_size(style, self.net, "style image")
        if tiling is not None and max(style.shape[-2:]) > tiling.tile:
            return tiled.moments(self.net, style, self.style_layers, tiling, self.autocast, weights)
        with torch.no_grad(), self.autocast():
            found = self.net(style, self.style_layers)
        return {k: Moments.of(v.float()) if weights is None else Moments.guided(v.float(), weights[k])
                for k, v in found.items()}

    def region_weights(self, masks: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(R, 1, H, W) masks over a picture as weights over each style layer's map (R, h, w: each map
        position's share of the mask, an area average) and over the pixels (R, H, W).

        The area average softens a mask's edge at each layer over one map position: 16 px at relu5_1, whose
        wide band blends the regions' large shapes into each other without a seam, and 1 px at relu1_1. A band
        that wide at the shallow layers (a blurred mask) makes both regions' strokes and colours compete for the
        same pixels, and the optimiser answers with stripes along the edge; grey in a mask is still a partial
        weight."""
        soft = masks.float()
        height, width = masks.shape[-2:]
        layers = {}
        for name in self.style_layers:
            map_width, map_height = tiled.map_size(self.net, name, width, height)
            layers[name] = F.adaptive_avg_pool2d(soft, (map_height, map_width))[:, 0]
        return layers, soft[:, 0]

    def targets(self, content: torch.Tensor | None, styles: Sequence[torch.Tensor] = (),
                blend: Sequence[float] = (), tiling: Tiling | None = None, regions: Regions | None = None,
                ) -> Targets:
        """Every kind of target at once; with ``regions``, each style for its own region."""
        sources = regions.sources if regions is not None else None
        found = Targets(self.content_targets(content, tiling=tiling),
                        self.style_targets(styles, blend, tiling, sources), self.colour_target(styles, blend, sources))
        if regions is not None:
            found.weights, found.pixel_weights = self.region_weights(regions.masks)
            uncovered = (1 - found.pixel_weights.sum(0)).clamp_min(0)[None, None]
            if content is not None and bool(uncovered.any()):
                found.photo, found.uncovered = content, uncovered
        return found

    def colour_target(self, styles: Sequence[torch.Tensor], blend: Sequence[float],
                      sources: Sequence[torch.Tensor | None] | None = None) -> StyleTarget | None:
        """The colour term's target: the mean and covariance of the styles' pixels, blended by ``blend``, or
        with ``sources`` one batch item a style, guided by its source mask; None when the term is off."""
        if not self.color_weight or not styles:
            return None
        if sources is not None:
            parts = [Moments.of(style.float()) if source is None else
                     Moments.guided(style.float(), self.region_weights(source)[1])
                     for style, source in zip(styles, sources, strict=True)]
            return StyleTarget.of(Moments.stack(parts), "wasserstein")
        pixels = [Moments.of(style.float()) * share for style, share in zip(styles, blend, strict=True)]
        return StyleTarget.of(sum(pixels[1:], pixels[0]), "wasserstein")

    def evaluate(self, pixels: torch.Tensor, targets: Targets, tiling: Tiling | None = None,
                 ) -> dict[str, torch.Tensor]:
        """Every term's value (detached), with the gradient of the total added to ``pixels.grad``.

        With ``tiling`` the picture goes through the network tile by tile, twice: once without gradients for
        the values (each style statistic is a sum over positions), then once per tile with the loss's
        gradient with respect to those sums held fixed, which gives each tile's exact share of the gradient.
        The memory is that of one tile, whatever the picture's size.
        """
        if tiling is None:
            values = self(pixels, targets)
            values["total"].backward()
            return {k: v.detach() for k, v in values.items()}
        return _TiledPass(self, targets, tiling).run(pixels)

    def forward(self, pixels: torch.Tensor, targets: Targets, margin: int = 0) -> dict[str, torch.Tensor]:
        """Every term of the loss for ``pixels`` ("content:relu4_2", "style", "tv", ...); "total" is their sum.

        ``margin`` pixels at each side are left out of the content and style terms (where a feature
        network's zero padding would reward artefacts); total variation covers the whole picture.
        """
        cropped = inner(pixels, margin)
        with self.autocast():
            feats = self.net(cropped, self.layers) if self.layers else {}
        content = {n: losses.content_loss(feats[n].float(), targets.content[n]) for n in self.content_layers}
        style = {n: losses.style_loss(feats[n].float(), targets.style[n], targets.weights.get(n))
                 for n in self.style_layers}
        return self.terms(content, style, pixels, targets)

    def terms(self, content: dict[str, torch.Tensor], style: dict[str, torch.Tensor], pixels: torch.Tensor,
              targets: Targets) -> dict[str, torch.Tensor]:
        """The weighted terms and their total, from each layer's relative error (and ``pixels`` for the terms
        on pixels)."""
        terms: dict[str, torch.Tensor] = {}
        total = pixels.new_zeros(())
        for kind, parts, weight, weights in (("content", content, self.content_weight, self.content_weights),
                                             ("style", style, self.style_weight, self.style_weights)):
            if parts:
                terms.update({f"{kind}:{n}": v for n, v in parts.items()})
                terms[kind] = weight * _weighted(parts, weights)
                total = total + terms[kind]
        for name, value in self.pixel_terms(pixels, targets).items():
            terms[name] = value
            total = total + value
        terms["total"] = total
        return terms

    def pixel_terms(self, pixels: torch.Tensor, targets: Targets) -> dict[str, torch.Tensor]:
        """The weighted terms computed on the pixels themselves, not on features: the colours, total
        variation, the temporal term of a video frame, and the photo kept where no region covers it."""
        terms = {}
        if self.color_weight and targets.colours is not None:
            terms["colour"] = self.color_weight * losses.style_loss(pixels, targets.colours,
                                                                                targets.pixel_weights)
        if self.tv_weight:
            terms["tv"] = self.tv_weight * losses.total_variation(pixels)
        if targets.photo is not None and targets.uncovered is not None:
            terms["keep"] = KEEP_WEIGHT * losses.masked_difference(pixels, targets.photo, targets.uncovered)
        if self.temporal_weight and targets.previous is not None and targets.reliable is not None:
            terms["temporal"] = self.temporal_weight * losses.temporal_loss(pixels, targets.previous,
                                                                           targets.reliable)
        return terms


class _TiledPass:
    """One tiled evaluation of an objective: the values from sums over tiles, then the gradient tile by tile."""

    def __init__(self, objective: Objective, targets: Targets, tiling: Tiling) -> None:
        self.objective, self.targets, self.tiling = objective, targets, tiling
        self.norms = {n: t.pow(2).sum().clamp_min(losses.EPS) for n, t in targets.content.items()}

    def run(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        o = self.objective
        values, slopes = self._values(pixels.detach())
        grad = pixels.grad if pixels.grad is not None else torch.zeros_like(pixels)
        for box, crop, inner_feats in tiled.tiles(o.net, pixels.detach(), o.layers, self.tiling, o.autocast,
                                                  requires_grad=True):
            share = pixels.new_zeros(())
            for weight, name in zip(o.content_weights, o.content_layers, strict=True) if o.content_layers else ():
                feats, (rows, cols) = inner_feats[name]
                error = (feats - self.targets.content[name][..., rows, cols]).pow(2).sum()
                share = share + o.content_weight * weight * error / self.norms[name]
            for name in o.style_layers:
                feats, (rows, cols) = inner_feats[name]
                weights = self.targets.weights.get(name)
                found = tiled.Sums.of(feats, weights[..., rows, cols] if weights is not None else None)
                slope_first, slope_second = slopes[name]
                share = share + (slope_second * found.second).sum()
                if slope_first is not None:
                    share = share + (slope_first * found.first).sum()
            share.backward()  # type: ignore[no-untyped-call]
            left, top, right, bottom = box.crop
            assert crop.grad is not None  # the crop is a leaf that the share depends on
            grad[..., top:bottom, left:right] += crop.grad
        pixels.grad = grad
        on_pixels = o.pixel_terms(pixels, self.targets)
        if on_pixels:
            cast(torch.Tensor, sum(on_pixels.values())).backward()  # type: ignore[no-untyped-call]
        return values

    def _values(self, pixels: torch.Tensor,
                ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor | None, torch.Tensor]]]:
        """The terms, and for each style layer the slopes of its weighted term with respect to the sums of
        the feature vectors (None where the term does not depend on them) and of their outer products."""
        o = self.objective
        errors: dict[str, torch.Tensor] = {}
        totals: dict[str, tiled.Sums] = {}
        with torch.no_grad():
            for _, _, inner_feats in tiled.tiles(o.net, pixels, o.layers, self.tiling, o.autocast):
                for name in o.content_layers:
                    feats, (rows, cols) = inner_feats[name]
                    error = (feats - self.targets.content[name][..., rows, cols]).pow(2).sum()
                    errors[name] = errors[name] + error if name in errors else error
                tiled.add_sums(totals, inner_feats, o.style_layers, self.targets.weights)
        slopes: dict[str, tuple[torch.Tensor | None, torch.Tensor]] = {}
        style: dict[str, torch.Tensor] = {}
        for weight, name in zip(o.style_weights, o.style_layers, strict=True) if o.style_layers else ():
            first, second = totals[name].first.requires_grad_(True), totals[name].second.requires_grad_(True)
            with torch.enable_grad():
                value = losses.style_distance(totals[name].moments(), self.targets.style[name])
                slope_first, slope_second = torch.autograd.grad(o.style_weight * weight * value, (first, second),
                                                                allow_unused=True)
            style[name], slopes[name] = value.detach(), (slope_first, slope_second)
        content = {n: errors[n] / self.norms[n] for n in o.content_layers}
        return o.terms(content, style, pixels, self.targets), slopes


def _weighted(parts: dict[str, torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    # ``parts`` is never empty, so the sum is a tensor, never sum()'s start value 0
    return cast(torch.Tensor, sum(w * v for v, w in zip(parts.values(), weights, strict=True)))
