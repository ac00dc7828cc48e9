"""The perceptual losses of Gatys et al.: content, Gram-matrix style and total variation. Tensors in, out.

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

import torch

#: Guards a division by a target's squared norm.
EPS = 1e-8


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) activations -> (N, C, C) Gram matrices divided by H*W (the mean over positions).

    Dividing by the number of positions makes the Gram of a texture independent of the canvas size, so a
    style image and an output of different sizes can be compared.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


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


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Relative squared Frobenius error between the image's Gram matrix and the style's at one layer."""
    return relative_error(gram_matrix(features), target_gram)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (horizontal plus vertical), for images in [0, 1].

    A mean rather than the paper's sum, so the weight does not depend on image size; squared, so that the
    gradient is smooth for L-BFGS.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def temporal_loss(image: torch.Tensor, previous: torch.Tensor, reliable: torch.Tensor) -> torch.Tensor:
    """Mean squared difference from ``previous`` (the last frame's result moved by the motion) over the
    pixels where ``reliable`` (a (N, 1, H, W) mask of 0..1) says the motion can be trusted: Ruder et al.'s
    short-term temporal loss, a mean so that the weight does not depend on image size."""
    weight = reliable.expand_as(image)
    return (weight * (image - previous).pow(2)).sum() / weight.sum().clamp_min(1.0)
