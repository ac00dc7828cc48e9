"""Scoring any picture against a photo and a painting with :mod:`stylecraft.quality`'s neutral numbers."""

from __future__ import annotations

from functools import cache

import torch

from .. import images, quality
from ..images import ImageInput
from ..quality import Quality
from ..runtime import resolve_device


@cache
def scorer(device: str) -> quality.Scorer:
    """One :class:`.quality.Scorer` per device for the whole process (building it reads the VGG-19 weights)."""
    return quality.Scorer(device)


def score_tensors(picture: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
                  device: str | torch.device = "cpu") -> Quality:
    """The numbers of ``picture`` against ``content`` and ``style`` ((1, 3, H, W) in [0, 1])."""
    found = scorer(str(device))
    return found.score(picture, found.reference(content, style))


def score(picture: ImageInput, content: ImageInput, style: ImageInput, *, device: str = "cpu") -> Quality:
    """How far ``picture`` (from any tool) is from ``content``'s content, ``style``'s style and colours, and how
    much of the content's structure it keeps (:mod:`stylecraft.quality` says what each number means)."""
    painted, photo, painting = (images.to_tensor(images.load_image(source)) for source in (picture, content, style))
    return score_tensors(painted, photo, painting, device=resolve_device(device))
