"""Colour maths on image tensors: luminance and chroma (YUV), keeping a photo's colours, and moving a picture's
colours to a painting's: their mean and covariance, or their whole distribution. Tensors in, tensors out; no files.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .losses import sqrtm

#: Iterative distribution transfer (:func:`match_palette`): rotations, quantiles per axis, and how many of the
#: picture's and of the paintings' colours the map is fitted on.
PALETTE_ROTATIONS, PALETTE_QUANTILES, PALETTE_SAMPLES = 8, 256, 16384
#: The side of the lookup table the map is kept as (33 steps a channel, as the common .cube colour tables).
PALETTE_GRID = 33
#: The steepest each axis's map may be: a steeper one turns a colour's smallest change into a jump (speckles,
#: banding, and tiles that no longer equal the whole picture).
PALETTE_SLOPE = 2.0


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


def match_palette(picture: torch.Tensor, references: Sequence[torch.Tensor],
                  weights: Sequence[float] | None = None) -> torch.Tensor:
    """``picture`` ((1, 3, H, W) in [0, 1]) with its colours moved to the whole distribution of ``references``'
    (their mixture, in proportion to ``weights``): :func:`match_colour`'s linear map, then iterative distribution
    transfer (Pitie et al. 2005), which matches each of :data:`PALETTE_ROTATIONS` fixed random rotations of the
    colour space axis by axis, quantile to quantile. The mean and covariance alone leave a painting with a few
    distinct colours (a palette, not a cloud) looking washed out.

    The map is fitted on :data:`PALETTE_SAMPLES` of the picture's pixels and kept as a lookup table of
    :data:`PALETTE_GRID` cubed colours, read by trilinear interpolation: one function of the colour for the whole
    picture whatever its size (tiles included), the same on every run, and a few milliseconds a megapixel."""
    shares = list(weights) if weights is not None else [1.0] * len(references)
    linear = match_colour(picture, references, shares)
    pixels = linear[0].flatten(1)
    target = _colour_sample(references, shares)
    levels = (torch.arange(PALETTE_QUANTILES, dtype=torch.float64) + 0.5) / PALETTE_QUANTILES
    axis = torch.linspace(0, 1, PALETTE_GRID, dtype=torch.float64)
    blue, green, red = torch.meshgrid(axis, axis, axis, indexing="ij")
    fitted = pixels[:, ::max(1, pixels.shape[1] // PALETTE_SAMPLES)].double().cpu()  # the colours as they are
    table = torch.stack([red, green, blue]).flatten(1)
    for rotation in _rotations(PALETTE_ROTATIONS):
        found = torch.quantile(rotation @ fitted, levels, dim=1).T.contiguous()
        wanted = _gentle(found, torch.quantile(rotation @ target, levels, dim=1).T)
        fitted = _transfer_step(fitted, rotation, found, wanted)
        table = _transfer_step(table, rotation, found, wanted)
    lookup = table.reshape(1, 3, PALETTE_GRID, PALETTE_GRID, PALETTE_GRID).float().to(picture.device)
    where = (linear.float() * 2 - 1).permute(0, 2, 3, 1).unsqueeze(1)  # (1, 1, H, W, 3): x red, y green, z blue
    moved = F.grid_sample(lookup, where, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    return moved.to(picture.dtype).clamp(0, 1)


def _colour_sample(references: Sequence[torch.Tensor], shares: Sequence[float]) -> torch.Tensor:
    """(3, N) colours drawn from the mixture of ``references`` in proportion to ``shares``, with a fixed seed."""
    generator, total, drawn = torch.Generator().manual_seed(0), sum(shares), []
    for reference, share in zip(references, shares, strict=True):
        count = round(PALETTE_SAMPLES * share / total)
        if count == 0:
            continue
        colours = reference[0].flatten(1).double().cpu()
        drawn.append(colours[:, torch.randint(colours.shape[1], (count,), generator=generator)])
    return torch.cat(drawn, 1)


def _rotations(count: int) -> list[torch.Tensor]:
    """``count`` fixed random 3x3 rotations (QR of Gaussian matrices, seed 0)."""
    generator, found = torch.Generator().manual_seed(0), []
    for _ in range(count):
        q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
        found.append(q * torch.sign(torch.diagonal(r)))
    return found


def _gentle(found: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """``wanted`` quantiles (rows, ascending) with no step steeper than :data:`PALETTE_SLOPE` times ``found``'s,
    shifted back to their mean (the steps a steep map loses narrow the range a little, which measured as good as
    the unbounded map on the 30 pairs of benchmarks/any_painting.py)."""
    steps = wanted.diff(dim=1).clamp_max(PALETTE_SLOPE * found.diff(dim=1))
    gentle = torch.cat([wanted[:, :1], wanted[:, :1] + steps.cumsum(1)], dim=1)
    return (gentle - gentle.mean(1, keepdim=True) + wanted.mean(1, keepdim=True)).contiguous()


def _transfer_step(colours: torch.Tensor, rotation: torch.Tensor, found: torch.Tensor,
                   wanted: torch.Tensor) -> torch.Tensor:
    """(3, N) ``colours`` with each rotated axis moved from its ``found`` quantiles to its ``wanted`` ones
    (piecewise linear, held flat beyond the ends)."""
    axes = (rotation @ colours).contiguous()
    right = torch.searchsorted(found, axes).clamp(1, found.shape[1] - 1)
    x0, x1 = found.gather(1, right - 1), found.gather(1, right)
    y0, y1 = wanted.gather(1, right - 1), wanted.gather(1, right)
    share = ((axes - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return rotation.T @ (y0 + share * (y1 - y0))
