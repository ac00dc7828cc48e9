"""Scoring any picture against a photo and a painting with :mod:`stylecraft.quality`'s neutral numbers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache

import torch

from .. import images, quality
from ..images import ImageInput
from ..progress import Count
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


def score_many(pictures: Sequence[ImageInput], content: ImageInput, style: ImageInput, *, device: str = "cpu",
               callbacks: Sequence[Callable[[Count], None]] = ()) -> list[Quality]:
    """The numbers of each of ``pictures`` (see :func:`score`), the photo and the painting measured once for all.
    Every picture is read first, so that an unreadable one is refused before any work. ``callbacks`` hear a
    :class:`~stylecraft.progress.Count` when the work starts and after each picture, as every long operation
    reports (on a CPU each picture takes seconds, and reading the network's weights first as long)."""
    began = time.perf_counter()

    def tell(done: int) -> None:
        for callback in callbacks:
            callback(Count(done, len(pictures), time.perf_counter() - began))

    photo, painting, *painted = (images.to_tensor(images.load_image(source))
                                 for source in (content, style, *pictures))
    tell(0)
    found = scorer(str(resolve_device(device)))
    reference = found.reference(photo, painting)
    results = []
    for done, picture in enumerate(painted, start=1):
        results.append(found.score(picture, reference))
        tell(done)
    return results


def score(picture: ImageInput, content: ImageInput, style: ImageInput, *, device: str = "cpu") -> Quality:
    """How far ``picture`` (from any tool) is from ``content``'s content, ``style``'s style and colours, and how
    much of the content's structure it keeps (:mod:`stylecraft.quality` says what each number means)."""
    return score_many([picture], content, style, device=device)[0]
