"""Colour maths (colour.py): YUV, luminance, keeping a photo's colours, matching a painting's colour statistics
and its whole palette."""

from __future__ import annotations

from pathlib import Path

import pytest
import skimage
import torch
from PIL import Image

from stylecraft import feedforward, images
from stylecraft.colour import luminance, match_colour, match_palette, restore_colour, rgb_to_yuv, yuv_to_rgb
from stylecraft.quality import _lab, sliced_wasserstein

BUILTIN = Path(feedforward.__file__).parent / "builtin"


def test_yuv_of_known_colours():
    colours = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    yuv = rgb_to_yuv(colours)[0, :, 0].T
    assert torch.allclose(yuv[0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-4)  # white: full Y, no colour
    assert torch.allclose(yuv[1], torch.tensor([0.299, -0.14713, 0.615]), atol=1e-5)  # red
    assert torch.allclose(yuv[2], torch.zeros(3))


def test_yuv_round_trip():
    image = torch.rand(2, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(yuv_to_rgb(rgb_to_yuv(image)), image, atol=1e-4)
    yuv = rgb_to_yuv(image)
    assert torch.allclose(rgb_to_yuv(yuv_to_rgb(yuv)), yuv, atol=1e-4)


def test_luminance_is_grey():
    image = torch.rand(1, 3, 4, 4)
    grey = luminance(image)
    assert grey.shape == (1, 3, 4, 4)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 0], grey[:, 2])
    expected = 0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]
    assert torch.allclose(grey[:, 0], expected, atol=1e-6)


def test_restore_colour_keeps_content_colour():
    gen = torch.Generator().manual_seed(1)
    # Mid-range colours so that nothing is clipped to [0, 1].
    content = torch.rand(1, 3, 6, 6, generator=gen) * 0.3 + 0.35
    result = torch.rand(1, 3, 6, 6, generator=gen) * 0.3 + 0.35
    out = restore_colour(result, content)
    assert out.shape == content.shape
    out_yuv, content_yuv, result_yuv = rgb_to_yuv(out), rgb_to_yuv(content), rgb_to_yuv(result)
    assert torch.allclose(out_yuv[:, 1:], content_yuv[:, 1:], atol=1e-4)  # colour from the content
    assert torch.allclose(out_yuv[:, :1], result_yuv[:, :1], atol=1e-4)  # brightness from the result
    assert not torch.allclose(out, result, atol=1e-2)


def test_restore_colour_keeps_a_saturated_colour_exactly():
    """Clamping the luminance, not RGB, keeps the content's colour where a bright result would push it out."""
    content = torch.zeros(1, 3, 2, 2)
    content[:, 0] = 1.0  # saturated red: no brighter luminance keeps this colour in range
    out = restore_colour(torch.ones(1, 3, 2, 2), content)
    assert torch.allclose(rgb_to_yuv(out)[:, 1:], rgb_to_yuv(content)[:, 1:], atol=1e-4)
    assert torch.allclose(out, content, atol=1e-4)


def test_match_colour_gives_the_reference_colour_statistics_by_one_affine_map():
    generator = torch.Generator().manual_seed(0)
    picture = 0.4 + 0.2 * torch.rand(1, 3, 40, 50, generator=generator)
    mixing = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [0.0, 0.4, 1.0]])
    reference = (0.5 + 0.04 * (mixing @ torch.randn(3, 900, generator=generator))).reshape(1, 3, 30, 30)
    moved = match_colour(picture, reference)
    flat, target = moved[0].flatten(1).double(), reference[0].flatten(1).double()
    assert torch.allclose(flat.mean(1), target.mean(1), atol=1e-4)
    assert torch.allclose(flat.cov(), target.cov(), atol=1e-5)
    source = torch.cat([picture[0].flatten(1).double(), torch.ones(1, 2000, dtype=torch.float64)])
    fit = torch.linalg.lstsq(source.T, flat.T).solution  # every pixel moved by the same affine map
    assert (source.T @ fit - flat.T).abs().max() < 1e-5


def test_match_colour_to_several_references_takes_their_blended_colours():
    generator = torch.Generator().manual_seed(1)
    picture = torch.rand(1, 3, 20, 20, generator=generator)
    red = torch.tensor([0.6, 0.4, 0.3]).view(1, 3, 1, 1) + 0.05 * torch.randn(1, 3, 10, 10, generator=generator)
    blue = torch.tensor([0.3, 0.4, 0.6]).view(1, 3, 1, 1) + 0.05 * torch.randn(1, 3, 30, 30, generator=generator)
    moved = match_colour(picture, [red, blue], [3, 1])[0].flatten(1).double()
    mixture = [0.75 * red.mean((0, 2, 3)) + 0.25 * blue.mean((0, 2, 3))]
    assert torch.allclose(moved.mean(1), mixture[0].double(), atol=1e-3)
    even = match_colour(picture, [red, blue])[0].flatten(1).double()
    assert even.mean(1)[0] < moved.mean(1)[0] - 0.05  # less red with equal weights


def _lab_distance(moved: torch.Tensor, painting: torch.Tensor) -> float:
    return sliced_wasserstein(_lab(moved), _lab(painting))


@pytest.mark.parametrize("name", ["shipwreck", "starry-night"])
def test_match_palette_comes_nearer_a_painting_s_colours_than_their_mean_and_covariance(name: str) -> None:
    photo = images.resize(images.to_tensor(Image.fromarray(skimage.data.astronaut())), (96, 96))
    painting = images.resize_long_side(images.to_tensor(images.load_image(BUILTIN / f"{name}.jpg")), 128)
    whole = match_palette(photo, [painting])
    assert _lab_distance(whole, painting) < 0.5 * _lab_distance(match_colour(photo, painting), painting)
    assert torch.equal(whole, match_palette(photo, [painting]))


def test_match_palette_is_one_map_of_the_colour_whatever_the_size():
    generator = torch.Generator().manual_seed(3)
    small = torch.rand(1, 3, 32, 32, generator=generator)
    large = torch.nn.functional.interpolate(small, scale_factor=16, mode="nearest")  # 512 px, fitted on 256
    painting = torch.rand(1, 3, 40, 40, generator=generator) ** 3
    moved_small = torch.nn.functional.interpolate(match_palette(small, [painting]), scale_factor=16, mode="nearest")
    assert (moved_small - match_palette(large, [painting])).abs().max() < 0.02
