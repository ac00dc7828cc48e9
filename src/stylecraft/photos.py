"""Photo folders: finding the pictures under a folder, and serving them as random square training crops (for
the real-time networks and the universal decoders alike)."""

from __future__ import annotations

import os
import random
from collections.abc import Sized
from pathlib import Path

import torch
from torch.utils.data import Dataset

from . import images
from .errors import ConfigError, ImageError

PHOTO_TYPES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def find_photos(folder: str | os.PathLike[str]) -> list[Path]:
    """Every picture file under ``folder`` (by extension), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in PHOTO_TYPES and p.is_file())


class PhotoFolder(Dataset[torch.Tensor | None]):
    """Every photo under a folder, as random ``size`` x ``size`` crops; unreadable files come back as None."""

    def __init__(self, folder: str | os.PathLike[str], size: int) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise ImageError(f"{folder}: no such folder of training photos")
        self.paths = find_photos(folder)
        if not self.paths:
            raise ImageError(f"{folder}: no photos (.jpg, .png, ...) in this folder")
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor | None:
        try:
            photo = images.to_tensor(images.load_image(self.paths[index]))
        except ImageError:
            return None
        height, width = photo.shape[-2:]
        scale = self.size / min(height, width)
        photo = images.resize(photo, (max(self.size, round(width * scale)), max(self.size, round(height * scale))))
        top = random.randint(0, photo.shape[-2] - self.size)
        left = random.randint(0, photo.shape[-1] - self.size)
        return photo[0, :, top:top + self.size, left:left + self.size]


def collate(items: list[torch.Tensor | None]) -> tuple[torch.Tensor | None, int]:
    """A batch of the readable crops and how many were not readable."""
    good = [item for item in items if item is not None]
    return (torch.stack(good) if good else None), len(items) - len(good)


def check_batch(photos: Sized, per_step: int) -> None:
    """ConfigError when one step needs more photos than the folders hold: the loader, which drops a short last
    batch, would give no batch at all."""
    if per_step > len(photos):
        raise ConfigError(f"`batch_size`: a step takes {per_step} photos and the folders hold {len(photos)}")

