"""The perceptual losses of Gatys et al.: content, style and total variation. Tensors in, out.

Style is compared through each layer's feature statistics over positions (:class:`Moments`: the mean and the
mean outer product, which is the Gram matrix), three ways (``STYLE_LOSSES``): the Gram matrices (Gatys et al.),
the per-channel mean and standard deviation (the statistics AdaIN transfers), or the Wasserstein-2 distance
between Gaussians with the features' mean and covariance (as crowsonkb/style-transfer-pytorch does). All three
depend on the features only through those sums, which is what lets a picture be evaluated tile by tile.

Normalisation, and why it departs from the paper: Gatys et al. sum squared errors, and divide the style term
by 4 N^2 M^2, so the balance of the terms shifts with image size, with the layer, and with the scale of the
weight set's activations (Caffe weights see 0-255 input, torchvision's 0-1); a "style weight" then means
something different for every run, which is why the classic tools' defaults break at other sizes. Here every
term is a *relative* squared error, ||x - t||^2 / ||t||^2, and Gram matrices are averaged over positions.
That makes each layer's term dimensionless and about 1 when the input bears no resemblance to the target,
whatever the image size, layer or weight set, so one set of default weights works for all of them. These
relative errors are also the distances the benchmarks report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch

from .choices import STYLE_LOSSES as STYLE_LOSSES

#: Guards a division by a target's squared norm.
EPS = 1e-8
#: Added to the covariances' diagonals in the Wasserstein loss, relative to the style's mean variance.
JITTER = 1e-3


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) activations -> (N, C, C) Gram matrices divided by H*W (the mean over positions).

    Dividing by the number of positions makes the Gram of a texture independent of the canvas size, so a
    style image and an output of different sizes can be compared.
    """
    n, c, h, w = features.shape
    # Position-major (N, HW, C): a view of channels-last activations (the feature network's layout), whose
    # gradient then comes back channels-last too and adds cheaply to the network's own; summed channel-major,
    # the two gradients' layouts differ and their sum costs more than the layer's convolution in bf16.
    positions = features.permute(0, 2, 3, 1).reshape(n, h * w, c)
    return cast(torch.Tensor, _Gram.apply(positions)) / (h * w)  # type: ignore[no-untyped-call]


class _Gram(torch.autograd.Function):
    """P^T P for (N, HW, C) feature vectors P, with the gradient as one product, P (G + G^T): autograd's own
    backward pass takes two products and their sum, as P appears twice (measured: the Gram matrices' share
    of a step halves)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, positions: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(positions)
        return torch.bmm(positions.transpose(1, 2), positions)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (positions,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.bmm(positions, grad + grad.transpose(1, 2))


def relative_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||value - target||^2 / ||target||^2 per batch item, averaged: 0 when equal, ~1 when unrelated.

    ``target`` may have a batch of 1, which is compared with every item of ``value`` (one style, many photos).
    """
    dims = tuple(range(1, value.dim())) if value.dim() > 1 else (0,)
    error = (value - target).pow(2).sum(dims)
    return (error / target.pow(2).sum(dims).clamp_min(EPS)).mean()


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared error between the activations of the image and of the content image at one layer."""
    return relative_error(features, target)



@dataclass(frozen=True)
class Moments:
    """A layer's feature statistics over positions: ``mean`` (N, C) and ``second`` (N, C, C), the mean outer
    product of the feature vectors, which is the Gram matrix of :func:`gram_matrix`."""

    mean: torch.Tensor
    second: torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor) -> Moments:
        """The moments of (N, C, H, W) activations."""
        return cls(features.mean((-2, -1)), gram_matrix(features))

    @classmethod
    def guided(cls, features: torch.Tensor, weights: torch.Tensor) -> Moments:
        """The moments of (1, C, H, W) activations within each of R regions, (R, H, W) ``weights`` over the
        positions (0..1): one batch item per region (Gatys et al. 2017's guided Gram matrices). Each region's
        moments are averages over its own weight, so a small region's statistics count as a large one's."""
        return cls.from_sums(*guided_sums(features, weights))

    @classmethod
    def from_sums(cls, first: torch.Tensor, second: torch.Tensor, count: int | torch.Tensor) -> Moments:
        """The moments from sums over ``count`` positions (of the feature vectors and of their outer products);
        a tensor ``count`` holds each batch item's total weight."""
        if isinstance(count, torch.Tensor):
            count = count.clamp_min(EPS)
            return cls(first / count[:, None], second / count[:, None, None])
        return cls(first / count, second / count)

    @classmethod
    def stack(cls, parts: Sequence[Moments]) -> Moments:
        """The moments of ``parts`` as one batch, in order (one region's a batch item)."""
        return cls(torch.cat([m.mean for m in parts]), torch.cat([m.second for m in parts]))

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.mean + other.mean, self.second + other.second)

    def __mul__(self, share: float) -> Moments:
        """The moments weighted by ``share``: a blend of styles is a weighted sum of their moments (those of
        the mixture of their features)."""
        return Moments(self.mean * share, self.second * share)

    def covariance(self) -> torch.Tensor:
        """(N, C, C): the second moment less the outer product of the mean."""
        return self.second - self.mean.unsqueeze(-1) * self.mean.unsqueeze(-2)

    def std(self) -> torch.Tensor:
        """(N, C): each channel's standard deviation over positions."""
        variance = torch.diagonal(self.second, dim1=-2, dim2=-1) - self.mean.pow(2)
        return (variance.clamp_min(0) + EPS).sqrt()


def guided_sums(features: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sums over the positions of (1, C, H, W) activations weighted by each of the (R, H, W) ``weights``: of
    the feature vectors (R, C), of their outer products (R, C, C), and of the weights (R,). Sums, so that
    tiles add up to the whole picture's."""
    flat = features.reshape(features.shape[1], -1)
    spread = weights.reshape(weights.shape[0], -1).to(flat.dtype)
    first = spread @ flat.T
    second = (flat.unsqueeze(0) * spread.unsqueeze(1)) @ flat.T
    return first, second, spread.sum(-1)


@dataclass(frozen=True)
class StyleTarget:
    """What a style layer's term compares with: the style's moments and the ``kind`` of comparison (one of
    ``STYLE_LOSSES``); for the Wasserstein loss also the ``jitter`` added to both covariances' diagonals and the
    square root of the style's jittered covariance (``root``), computed once."""

    kind: str
    moments: Moments
    jitter: torch.Tensor | None = None
    root: torch.Tensor | None = None

    @classmethod
    def of(cls, moments: Moments, kind: str = "gram") -> StyleTarget:
        """The target of ``kind`` for a style with ``moments``."""
        if kind not in STYLE_LOSSES:
            raise ValueError(f"style loss {kind!r} is not one of {', '.join(STYLE_LOSSES)}")
        if kind != "wasserstein":
            return cls(kind, moments)
        covariance = _wide(moments.covariance())
        jitter = JITTER * torch.diagonal(covariance, dim1=-2, dim2=-1).mean(-1).clamp_min(EPS)
        return cls(kind, moments, jitter, sqrtm(_jittered(covariance, jitter)))


def style_distance(found: Moments, target: StyleTarget) -> torch.Tensor:
    """A style layer's term: 0 when the statistics the ``target``'s kind compares are equal, about 1 when the
    picture's features are nothing like the style's (all zero, say)."""
    goal = target.moments
    if target.kind == "gram":
        return relative_error(found.second, goal.second)
    mean_error = (found.mean - goal.mean).pow(2).sum(-1)
    mean_norm = goal.mean.pow(2).sum(-1)
    if target.kind == "mean-std":
        goal_std = goal.std()
        error = mean_error + (found.std() - goal_std).pow(2).sum(-1)
        return (error / (mean_norm + goal_std.pow(2).sum(-1)).clamp_min(EPS)).mean()
    assert target.root is not None and target.jitter is not None  # StyleTarget.of computes them for this kind
    covariance = _jittered(_wide(found.covariance()), target.jitter)
    goal_covariance = _jittered(_wide(goal.covariance()), target.jitter)
    cross = sqrtm(target.root @ covariance @ target.root)
    trace = _trace(covariance) + _trace(goal_covariance) - 2 * _trace(cross)
    norm = _wide(mean_norm) + _trace(_wide(goal.covariance()))
    return ((_wide(mean_error) + trace) / norm.clamp_min(EPS)).mean().float().to(found.mean.device)


def style_loss(features: torch.Tensor, target: StyleTarget, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The style term of (N, C, H, W) activations against ``target`` (see :func:`style_distance`); with (R, H, W)
    ``weights``, of each region's guided moments against the target's batch item of that region, averaged over
    the regions (each region counts alike, whatever its size)."""
    return style_distance(Moments.of(features) if weights is None else Moments.guided(features, weights), target)


def _wide(values: torch.Tensor) -> torch.Tensor:
    """``values`` in float64 for the matrix square roots, on the CPU where the device has no float64 (MPS)."""
    return (values.cpu() if values.device.type == "mps" else values).double()


def _trace(matrices: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(matrices, dim1=-2, dim2=-1).sum(-1)


def _jittered(matrices: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """Symmetric ``matrices`` with ``jitter`` added to the diagonal, so that square roots of rank-deficient
    covariances (ReLU features have dead channels) keep finite gradients. Both Gaussians get the same, so the
    distance is still 0 between equal ones."""
    eye = torch.eye(matrices.shape[-1], dtype=matrices.dtype, device=matrices.device)
    return (matrices + matrices.mT) / 2 + jitter[..., None, None] * eye


class _SquareRoot(torch.autograd.Function):
    """The square root of symmetric positive semi-definite matrices by eigendecomposition, with the gradient
    of the Sylvester equation S dS + dS S = dA solved in the eigenbasis: (V^T G V)_ij / (s_i + s_j)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, matrices: torch.Tensor) -> torch.Tensor:
        try:
            values, vectors = torch.linalg.eigh(matrices)
        except torch.linalg.LinAlgError:  # type: ignore[attr-defined]  # a diverged run: the loop's guard stops it
            values, vectors = matrices[..., 0] * math.nan, matrices * math.nan
        roots = values.clamp_min(0).sqrt()
        ctx.save_for_backward(roots, vectors)
        root: torch.Tensor = (vectors * roots.unsqueeze(-2)) @ vectors.mT
        return root

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        roots, vectors = ctx.saved_tensors  # type: ignore[attr-defined]
        sums = (roots.unsqueeze(-1) + roots.unsqueeze(-2)).clamp_min(EPS)
        found: torch.Tensor = vectors @ ((vectors.mT @ grad @ vectors) / sums) @ vectors.mT
        return (found + found.mT) / 2


def sqrtm(matrices: torch.Tensor) -> torch.Tensor:
    """The square roots of (..., C, C) symmetric positive semi-definite ``matrices``, differentiable."""
    return cast(torch.Tensor, _SquareRoot.apply(matrices))  # type: ignore[no-untyped-call]


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (horizontal plus vertical), for images in [0, 1].

    A mean rather than the paper's sum, so the weight does not depend on image size; squared, so that the
    gradient is smooth for L-BFGS.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def masked_difference(image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared difference from ``target`` over the pixels of ``mask`` (a (N, 1, H, W) mask of 0..1), a
    mean so that the weight does not depend on image size or on the mask's area."""
    weight = mask.expand_as(image)
    return (weight * (image - target).pow(2)).sum() / weight.sum().clamp_min(1.0)


def temporal_loss(image: torch.Tensor, previous: torch.Tensor, reliable: torch.Tensor) -> torch.Tensor:
    """Mean squared difference from ``previous`` (the last frame's result moved by the motion) over the
    pixels where ``reliable`` (a (N, 1, H, W) mask of 0..1) says the motion can be trusted: Ruder et al.'s
    short-term temporal loss."""
    return masked_difference(image, previous, reliable)
