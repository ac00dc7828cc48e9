"""Neutral numbers for a painted picture, whichever tool made it: how far it is from its photo's content, from
its painting's style and from its painting's colours, and how much of the photo's structure it keeps.

Every number is computed the same way for any picture, so that tools and settings can be compared
(``stylecraft score``); every transfer stores them with its result. What each means, and its limits:

* **content distance**: ||F(out) - F(photo)|| / ||F(photo)|| for VGG-19's relu4_2 features (the default
  weights), the photo at the evaluation size (:data:`SIZE` px long side, or the picture's own if smaller)
  and the picture resized to the photo's canvas. 0 is the photo itself. It is what the optimiser's content
  term measures, so it favours stylecraft's own objective.
* **style distance**: the mean over relu1_1 ... relu5_1 of ||G(out) - G(painting)|| / ||G(painting)||, G the
  Gram matrix, the painting at the same long side. The same caveat: it is the style term's own measure.
* **colour distance**: the sliced Wasserstein-1 distance between the picture's pixel colours and the
  painting's in CIE Lab, divided by the photo's own distance to the painting: 0 is the painting's palette,
  1 no closer to it than the photo. No tool optimises it. It compares which colours appear and how much of
  each, not where they are.
* **structure kept**: SSIM (Wang et al. 2004, Gaussian window) of the luminance with the photo's, both at
  :data:`STRUCTURE_SIZE` px long side: 1 is the photo's structure. Small brush strokes barely move it at
  that size; larger motifs and lost edges lower it. It says nothing about style.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
import torch

from . import images, losses
from .features import FeatureNetwork

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: Long side (px) at which the VGG distances and the colours are compared, unless the picture is smaller.
SIZE = 512
#: Long side (px) at which structure is compared.
STRUCTURE_SIZE = 128
#: Random directions (fixed) and quantiles of the sliced Wasserstein distance.
DIRECTIONS, QUANTILES = 64, 256


#: Which way each kind of number is better, as the command line says it.
DISTANCES, STRUCTURE = "(lower is closer)", "(higher keeps more of the photo)"


@dataclass(frozen=True)
class Quality:
    """The four numbers of one picture (see the module's description)."""

    content_distance: float
    style_distance: float
    colour_distance: float
    structure_kept: float

    def as_dict(self) -> dict[str, float]:
        """The numbers by name, rounded to four decimals (what files and the studio store)."""
        return {name: round(value, 4) for name, value in vars(self).items()}

    def describe(self) -> str:
        """One line, each number named apart from the optimiser's losses and with the way it is better:
        ``content distance 0.812, style distance 0.231, colour distance 0.32 (lower is closer), structure kept
        0.61 (higher keeps more of the photo)``."""
        return (f"content distance {self.content_distance:.3f}, style distance {self.style_distance:.3f}, "
                f"colour distance {self.colour_distance:.2f} {DISTANCES}, structure kept {self.structure_kept:.2f} "
                f"{STRUCTURE}")


def _lab(picture: torch.Tensor) -> np.ndarray:
    """(pixels, 3) CIE Lab colours of a (1, 3, H, W) picture in [0, 1]."""
    from skimage.color import rgb2lab  # noqa: PLC0415 - scikit-image is slow to import; only scoring needs it

    rgb = picture[0].permute(1, 2, 0).clamp(0, 1).double().cpu().numpy()
    return np.asarray(rgb2lab(rgb)).reshape(-1, 3)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """The sliced Wasserstein-1 distance between two point clouds (rows of ``a`` and ``b``): the mean over
    :data:`DIRECTIONS` fixed random directions of the distance between the projections' quantile functions."""
    directions = np.random.default_rng(0).normal(size=(DIRECTIONS, a.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    found = _quantiles(directions @ a.T, levels) - _quantiles(directions @ b.T, levels)
    return float(np.abs(found).mean())


def _quantiles(rows: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each row's quantiles at ``levels``, as ``np.quantile`` gives them, about three times sooner: the rows
    sorted in place first (``np.quantile`` partitioning a copy of unsorted data took most of a transfer's
    scoring)."""
    rows.sort(axis=1)
    return np.asarray(np.quantile(rows, levels, axis=1, overwrite_input=True))


def _luminance(picture: torch.Tensor, canvas: tuple[int, int]) -> np.ndarray:
    weights = torch.tensor([0.2126, 0.7152, 0.0722], dtype=picture.dtype, device=picture.device)
    small = images.resize(picture, canvas)
    return (small[0] * weights[:, None, None]).sum(0).clamp(0, 1).double().cpu().numpy()


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity  # noqa: PLC0415 - see _lab

    return float(structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


class Reference:
    """A photo and a painting measured once, to score any number of pictures against."""

    def __init__(self, scorer: Scorer, photo: torch.Tensor, painting: torch.Tensor, size: int) -> None:
        self.photo = images.resize_long_side(photo, size)
        self.painting = images.resize_long_side(painting, size)
        self.content = scorer.features(self.photo)[CONTENT_LAYER]
        self.grams = {name: losses.gram_matrix(f) for name, f in scorer.features(self.painting).items()
                      if name in STYLE_LAYERS}
        self.painting_colours = _lab(self.painting)
        self.photo_colour_distance = sliced_wasserstein(_lab(self.photo), self.painting_colours)
        height, width = photo.shape[-2:]
        scale = STRUCTURE_SIZE / max(height, width)
        self.structure_canvas = (max(8, round(width * scale)), max(8, round(height * scale)))
        self.photo_luminance = _luminance(photo, self.structure_canvas)


class Scorer:
    """Scores pictures (:class:`Quality`) with VGG-19's default weights, built once, on ``device``."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.net = FeatureNetwork().build([CONTENT_LAYER, *STYLE_LAYERS], self.device)

    def features(self, picture: torch.Tensor) -> dict[str, torch.Tensor]:
        """The scored layers' features of a (1, 3, H, W) picture, in float32 without gradients."""
        with torch.no_grad():
            found: dict[str, torch.Tensor] = self.net(picture.float().to(self.device), [CONTENT_LAYER, *STYLE_LAYERS])
        return found

    def reference(self, photo: torch.Tensor, painting: torch.Tensor, size: int | None = None) -> Reference:
        """The photo and painting ((1, 3, H, W) in [0, 1]) measured at ``size`` px long side (default
        :data:`SIZE`, or the photo's long side if smaller)."""
        return Reference(self, photo, painting, size or min(SIZE, max(photo.shape[-2:])))

    def score(self, picture: torch.Tensor, reference: Reference) -> Quality:
        """The numbers of ``picture`` ((1, 3, H, W) in [0, 1], any size: resized to the photo's canvas)."""
        canvas = (reference.photo.shape[-1], reference.photo.shape[-2])
        resized = images.resize(picture, canvas)
        features = self.features(resized)
        content = math.sqrt(float(losses.relative_error(features[CONTENT_LAYER], reference.content)))
        style = statistics.fmean(math.sqrt(float(losses.relative_error(losses.gram_matrix(features[name]),
                                                                       reference.grams[name])))
                                 for name in STYLE_LAYERS)
        colour = sliced_wasserstein(_lab(resized), reference.painting_colours)
        structure = _ssim(_luminance(picture, reference.structure_canvas), reference.photo_luminance)
        return Quality(content, style, colour / max(reference.photo_colour_distance, 1e-6), structure)
