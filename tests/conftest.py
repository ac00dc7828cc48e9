"""Shared fixtures: small generated pictures (no files from outside the repo) and the shared/ folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecraft import runtime

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: Seconds a test waits for a Ray job or batch to get somewhere: on busy cores a cluster takes minutes to start.
RAY_WAIT = 600


#: The real probe, for the tests of it (every test runs with it replaced, below).
CPU_HAS_BF16 = runtime.cpu_has_bf16


@pytest.fixture(autouse=True, scope="session")
def no_native_bf16() -> Iterator[None]:
    """Every test (and every module-scoped fixture) runs as on a CPU without native bf16, so that
    ``precision`` auto means fp32 and no test's numbers depend on the CPU model; the tests of bf16 say so
    themselves."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "cpu_has_bf16", lambda: False)
        yield


def make_content(width: int = 64, height: int = 48) -> Image.Image:
    """A little scene: a sky gradient, a bright disc and a dark house."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([0.3 + 0.4 * y / height, 0.5 + 0.2 * x / width, 0.9 - 0.3 * y / height], axis=-1)
    disc = (x - width * 0.7) ** 2 + (y - height * 0.3) ** 2 < (height * 0.18) ** 2
    rgb[disc] = (1.0, 0.9, 0.3)
    rgb[int(height * 0.55):, int(width * 0.15):int(width * 0.45)] = (0.35, 0.2, 0.15)
    return Image.fromarray((rgb * 255).astype(np.uint8), "RGB")


def make_style(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    """Diagonal stripes of saturated colour with a little noise: an unmistakable style."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    band = ((x + y) // 6) % 3
    palette = np.array([(0.9, 0.1, 0.1), (0.1, 0.2, 0.9), (0.95, 0.85, 0.1)])
    rgb = palette[band] + rng.normal(0, 0.05, (height, width, 3))
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")


@pytest.fixture
def content_path(tmp_path: Path) -> Path:
    path = tmp_path / "content.jpg"
    make_content().save(path, quality=95)
    return path


@pytest.fixture
def style_path(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    make_style().save(path)
    return path


@pytest.fixture
def shared_images() -> Path:
    """../shared/images, or a clean skip where the checkout has no shared/ beside it."""
    folder = SHARED / "images"
    if not folder.is_dir():
        pytest.skip("../shared/images is not present (it exists only in the development checkout)")
    return folder
