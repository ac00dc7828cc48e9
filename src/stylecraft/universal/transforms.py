"""Features taking a painting's statistics: whitening and colouring (WCT, Li et al. 2017) and AdaIN's mean and
standard deviation (Huang and Belongie 2017), each as one affine map per level, ``f -> A f + b``.

Statistics are sums over positions (:class:`Stats`), added tile by tile or region by region, so a picture of any
size has one set of statistics and its tiles take the same map: no seams, no colour drift between tiles. The
sums are centred per part and combined in float64 (Chan et al.'s parallel update), and the covariances'
eigendecompositions run in float64 with tiny eigenvalues dropped: in float32, or with those kept, the inverse
square root explodes along directions that hold no variance and the picture comes out black.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: Eigenvalues below this share of the largest are dropped (directions that hold no variance).
RELATIVE_FLOOR = 1e-5


@dataclass(frozen=True)
class Stats:
    """A level's feature statistics over a picture or a region: the total weight of its positions, the mean
    (C,) and the scatter (C, C): the sum of the centred features' outer products. Float64."""

    count: float
    mean: torch.Tensor
    scatter: torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor, weight: torch.Tensor | None = None) -> Stats:
        """The statistics of (1, C, H, W) features, over every position or by (H, W) ``weight`` (0..1)."""
        flat = features[0].reshape(features.shape[1], -1).float()
        w = None if weight is None else weight.reshape(1, -1).to(flat)
        count = float(flat.shape[1]) if w is None else float(w.sum())
        if count <= 0:
            channels = flat.shape[0]
            return cls(0.0, torch.zeros(channels, dtype=torch.float64), torch.zeros(channels, channels,
                                                                                  dtype=torch.float64))
        mean = (flat.sum(1) if w is None else (flat * w).sum(1)).double() / count
        centred = flat - mean.float()[:, None]
        weighted = centred if w is None else centred * w
        return cls(count, mean, (weighted @ centred.T).double())

    def __add__(self, other: Stats) -> Stats:
        if not other.count:
            return self
        if not self.count:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        scatter = self.scatter + other.scatter + torch.outer(delta, delta) * (self.count * other.count / count)
        return Stats(count, mean, scatter)

    @property
    def covariance(self) -> torch.Tensor:
        """The (C, C) covariance, float64."""
        return self.scatter / max(self.count, 1e-12)

    def rank(self) -> int:
        """How many directions hold variance (the eigenvalues kept)."""
        return int(_eigen(self.covariance)[0].numel())


def _eigen(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The eigenvalues above the floor and their eigenvectors (columns), float64."""
    values, vectors = torch.linalg.eigh(covariance.double())
    floor = max(float(values.max()) * RELATIVE_FLOOR, 1e-10)
    keep = values > floor
    return values[keep], vectors[:, keep]


def wct(content: Stats, style: Stats) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map (A, b), float64, that gives features with ``content``'s statistics ``style``'s mean and
    covariance: ``A = C_s^(1/2) C_c^(-1/2)``, ``b = m_s - A m_c``."""
    c_values, c_vectors = _eigen(content.covariance)
    s_values, s_vectors = _eigen(style.covariance)
    whiten = c_vectors @ torch.diag(c_values.rsqrt()) @ c_vectors.T
    colour = s_vectors @ torch.diag(s_values.sqrt()) @ s_vectors.T
    matrix = colour @ whiten
    return matrix, style.mean - matrix @ content.mean


def adain(content: Stats, style: Stats) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map (A, b), float64, that gives each channel ``style``'s mean and standard deviation."""
    scale = (style.covariance.diagonal().clamp_min(0).sqrt()
             / content.covariance.diagonal().clamp_min(1e-10).sqrt())
    return torch.diag(scale), style.mean - scale * content.mean


TRANSFORM = {"wct": wct, "adain": adain}


def mixed(kind: str, content: Stats, styles: Sequence[Stats], weights: Sequence[float],
          strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One affine map for a blend of paintings: each painting's map in proportion to ``weights`` (which sum to
    1), then ``strength`` of the way from the identity (0: the photo's own features)."""
    channels = content.mean.numel()
    matrix = torch.zeros(channels, channels, dtype=torch.float64)
    bias = torch.zeros(channels, dtype=torch.float64)
    for style, weight in zip(styles, weights, strict=True):
        a, b = TRANSFORM[kind](content, style)
        matrix, bias = matrix + weight * a, bias + weight * b
    identity = torch.eye(channels, dtype=torch.float64)
    return strength * matrix + (1 - strength) * identity, strength * bias


def apply_map(features: torch.Tensor, matrix: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``A f + b`` at every position of (N, C, H, W) features (float32)."""
    out = torch.einsum("dc,nchw->ndhw", matrix.float(), features.float())
    return out + bias.float()[None, :, None, None]
