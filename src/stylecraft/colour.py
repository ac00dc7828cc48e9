"""Colour maths on image tensors: luminance and chroma (YUV), keeping a photo's colours, and moving a picture's
colours to a painting's mean and covariance. Tensors in, tensors out; no files.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .losses import sqrtm


def rgb_to_yuv(image: torch.Tensor) -> torch.Tensor:
    """RGB -> YUV (BT.601): Y is luminance, U and V the colour; used for colour-preserving transfer."""
    matrix = image.new_tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
    return torch.einsum("ij,njhw->nihw", matrix, image)


def yuv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """YUV (BT.601) -> RGB, the inverse of :func:`rgb_to_yuv`."""
    matrix = image.new_tensor([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]])
    return torch.einsum("ij,njhw->nihw", matrix, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The luminance of an RGB image, repeated on three channels so that VGG can read it."""
    return rgb_to_yuv(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Shift and scale ``source``'s luminance to ``reference``'s mean and spread (Gatys et al. 2016, sec. 3)."""
    src, ref = source[:, :1], reference[:, :1]
    scaled = (src - src.mean()) * (ref.std() / src.std().clamp_min(1e-6)) + ref.mean()
    return scaled.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def restore_colour(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Combine the luminance of ``result`` with the colour (U, V) of ``content``.

    The luminance is clamped per pixel to the range in which that pixel's colour stays a valid RGB value,
    so the content's colour is kept exactly instead of being distorted by clamping RGB afterwards.
    """
    colour = rgb_to_yuv(content)[:, 1:]
    u, v = colour[:, :1], colour[:, 1:]
    offsets = torch.cat([1.13983 * v, -0.39465 * u - 0.58060 * v, 2.03211 * u], dim=1)
    low, high = (-offsets).amax(dim=1, keepdim=True), (1 - offsets).amin(dim=1, keepdim=True)
    luma = torch.maximum(torch.minimum(rgb_to_yuv(result)[:, :1], high), low)
    return yuv_to_rgb(torch.cat([luma, colour], dim=1)).clamp(0, 1)


def match_colour(picture: torch.Tensor, references: torch.Tensor | Sequence[torch.Tensor],
                 weights: Sequence[float] | None = None) -> torch.Tensor:
    """``picture`` ((1, 3, H, W) in [0, 1]) with its colours moved so that their mean and covariance are those
    of ``references``' (the mixture of their colours, in proportion to ``weights``, equal by default): the
    Monge-Kantorovich linear map (Pitie and Kokaram 2007), the least change of colours that matches both,
    which keeps each pixel's relation to its neighbours (edges, shading)."""
    references = [references] if isinstance(references, torch.Tensor) else list(references)
    shares = weights if weights is not None else [1.0] * len(references)
    total = sum(shares)
    mean = torch.zeros(3, 1, dtype=torch.float64, device=picture.device)
    second = torch.zeros(3, 3, dtype=torch.float64, device=picture.device)
    for reference, share in zip(references, shares, strict=True):
        colours = reference[0].flatten(1).double().to(picture.device)
        mean += share / total * colours.mean(1, keepdim=True)
        second += share / total * (colours @ colours.T) / colours.shape[1]
    source = picture[0].flatten(1).double()
    eye = 1e-5 * torch.eye(3, dtype=torch.float64, device=picture.device)
    source_cov, target_cov = source.cov(correction=0) + eye, second - mean @ mean.T + eye
    root = sqrtm(source_cov)
    inverse_root = torch.linalg.inv(root)
    transform = inverse_root @ sqrtm(root @ target_cov @ root) @ inverse_root
    moved: torch.Tensor = transform @ (source - source.mean(1, keepdim=True)) + mean
    return moved.reshape(picture.shape).to(picture.dtype).clamp(0, 1)
