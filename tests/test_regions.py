"""Spatial and scale control (Gatys et al. 2017): guided moments by hand, regions in the objective (exact tile by
tile), masks at the API and the command line, masks from flat colours, and coarse and fine styles."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_content, make_style
from PIL import Image

import stylecraft
from stylecraft import ConfigError, FeatureNetwork, ImageError, images, losses
from stylecraft.api import region_masks
from stylecraft.api.score import score_tensors
from stylecraft.cli import main
from stylecraft.losses import Moments, StyleTarget
from stylecraft.objective import Objective, Regions
from stylecraft.tiling import Sums, Tiling

CONTENT = ("relu4_2",)
STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SIZE = (64, 48)


@pytest.fixture(scope="module")
def net():
    return FeatureNetwork().build([*CONTENT, *STYLE], torch.device("cpu"))


def halves(width: int = SIZE[0], height: int = SIZE[1]) -> tuple[Image.Image, Image.Image]:
    """Masks of the left half and of the right half."""
    left = np.zeros((height, width), np.uint8)
    left[:, : width // 2] = 255
    return Image.fromarray(left, "L"), Image.fromarray(255 - left, "L")


# ---- guided moments, by hand ------------------------------------------------------------------------------


def test_guided_moments_by_hand():
    features = torch.tensor([[[[1.0, 2.0, 4.0]], [[3.0, 0.0, 1.0]]]])  # (1, 2, 1, 3)
    weights = torch.tensor([[[1.0, 1.0, 0.0]], [[0.0, 0.5, 1.0]]])  # two regions
    found = Moments.guided(features, weights)
    # region 0: positions 0 and 1 -> mean (1.5, 1.5); region 1: (0.5 * (2, 0) + (4, 1)) / 1.5 = (10/3, 2/3)
    assert torch.allclose(found.mean, torch.tensor([[1.5, 1.5], [10 / 3, 2 / 3]]))
    # region 0: ((1,3)(1,3)^T + (2,0)(2,0)^T) / 2 = [[2.5, 1.5], [1.5, 4.5]]
    assert torch.allclose(found.second[0], torch.tensor([[2.5, 1.5], [1.5, 4.5]]))
    # region 1: (0.5 (2,0)(2,0)^T + (4,1)(4,1)^T) / 1.5 = [[18, 4], [4, 1]] / 1.5
    assert torch.allclose(found.second[1], torch.tensor([[18.0, 4.0], [4.0, 1.0]]) / 1.5)


def test_guided_moments_of_a_full_mask_are_the_plain_ones_and_do_not_depend_on_the_regions_size():
    torch.manual_seed(0)
    features = torch.rand(1, 8, 12, 16)
    plain, full = Moments.of(features), Moments.guided(features, torch.ones(1, 12, 16))
    assert torch.allclose(plain.second, full.second) and torch.allclose(plain.mean, full.mean)
    tiled = features.repeat(1, 1, 1, 2)  # the same texture twice as wide
    small = torch.zeros(2, 12, 32)
    small[0, :, :16] = 1  # one copy
    small[1] = 1  # both copies: twice the area, the same statistics
    found = Moments.guided(tiled, small)
    assert torch.allclose(found.second[0], found.second[1], atol=1e-6)


def test_guided_sums_add_up_tile_by_tile():
    torch.manual_seed(1)
    features, weights = torch.rand(1, 4, 6, 10), torch.rand(3, 6, 10)
    whole = Sums.of(features, weights)
    parts = Sums.of(features[..., :4], weights[..., :4]) + Sums.of(features[..., 4:], weights[..., 4:])
    assert torch.allclose(whole.first, parts.first) and torch.allclose(whole.second, parts.second)
    assert torch.allclose(whole.moments().second, Moments.guided(features, weights).second)


def test_each_region_is_compared_with_its_own_style():
    torch.manual_seed(2)
    a, b = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8) * 3
    picture = torch.cat([a, b], dim=-1)  # a on the left, b on the right
    weights = torch.zeros(2, 8, 16)
    weights[0, :, :8], weights[1, :, 8:] = 1, 1
    for kind in losses.STYLE_LOSSES:
        own = StyleTarget.of(Moments(torch.cat([Moments.of(a).mean, Moments.of(b).mean]),
                                     torch.cat([Moments.of(a).second, Moments.of(b).second])), kind)
        swapped = StyleTarget.of(Moments(own.moments.mean.flip(0), own.moments.second.flip(0)), kind)
        assert float(losses.style_loss(picture, own, weights)) < 1e-5, kind
        assert float(losses.style_loss(picture, swapped, weights)) > 0.1, kind


def test_region_weights_are_each_layers_share_of_the_mask(net):
    masks = torch.zeros(1, 1, 48, 64)
    masks[..., :40] = 1  # an edge inside relu5_1's third column (16 px a position)
    layers, pixels = Objective(net, style_layers=STYLE).region_weights(masks)
    assert torch.equal(pixels, masks[:, 0]) and torch.equal(layers["relu1_1"], masks[:, 0])
    assert layers["relu5_1"].shape == (1, 3, 4) and torch.allclose(layers["relu5_1"][0, 0], torch.tensor(
        [1.0, 1.0, 0.5, 0.0]))


# ---- the objective with regions: exact tile by tile, scale control ---------------------------------------


@pytest.mark.parametrize("style_loss", losses.STYLE_LOSSES)
def test_the_tiled_objective_with_regions_equals_the_whole_one(net, style_loss: str) -> None:
    objective = Objective(net, content_layers=CONTENT, style_layers=STYLE, content_weight=1.0, style_weight=10.0,
                          tv_weight=1.0, style_loss=style_loss, color_weight=100.0)
    torch.manual_seed(1)
    content, first, second = torch.rand(1, 3, 112, 144), torch.rand(1, 3, 96, 96), torch.rand(1, 3, 80, 96)
    masks = torch.zeros(2, 1, 112, 144)
    masks[0, ..., :70], masks[1, ..., 70:], masks[1, ..., :20] = 1, 1, 0.5
    source = torch.zeros(1, 1, 80, 96)
    source[..., :40] = 1
    regions = Regions(masks, (None, source))
    targets = objective.targets(content, [first, second], [0.5, 0.5], regions=regions)
    assert targets.style["relu1_1"].moments.second.shape[0] == 2 and targets.pixel_weights is not None
    pixels = torch.rand(1, 3, 112, 144, requires_grad=True)
    whole = objective.evaluate(pixels, targets)
    expected = pixels.grad.clone()
    pixels.grad = None
    tiling = Tiling.for_net(net, 48)
    tiled = objective.evaluate(pixels, objective.targets(content, [first, second], [0.5, 0.5], tiling, regions),
                               tiling)
    for name, value in whole.items():
        assert float(tiled[name]) == pytest.approx(float(value), rel=1e-4), name
    assert float((pixels.grad - expected).norm() / expected.norm()) < 1e-4


def test_scale_control_takes_the_deep_layers_from_one_style_and_the_shallow_from_the_other(net):
    config = stylecraft.TransferConfig(scale_split="relu3_1")
    split = config.layer_blend("vgg19")
    assert split == {"relu1_1": (0.0, 1.0), "relu2_1": (0.0, 1.0), "relu3_1": (1.0, 0.0), "relu4_1": (1.0, 0.0),
                     "relu5_1": (1.0, 0.0)}
    assert config.blend(2) == [1.0, 0.0] and stylecraft.TransferConfig().blend(2) == [0.5, 0.5]
    objective = Objective(net, style_layers=STYLE, layer_blend=split)
    torch.manual_seed(3)
    coarse, fine = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    targets = objective.style_targets([coarse, fine], config.blend(2))
    alone = {name: Objective(net, style_layers=STYLE).style_targets([style], [1.0])
             for name, style in (("coarse", coarse), ("fine", fine))}
    for layer, (share, _) in split.items():
        source = alone["coarse" if share else "fine"][layer]
        assert torch.equal(targets[layer].moments.second, source.moments.second), layer


# ---- the API ----------------------------------------------------------------------------------------------


def _gram_distance(net, picture: torch.Tensor, style: torch.Tensor) -> float:
    """The mean relative Gram distance over the style layers (what `stylecraft score` reports as style)."""
    with torch.no_grad():
        found, goal = net(picture, list(STYLE)), net(style, list(STYLE))
    return sum(float(losses.relative_error(losses.gram_matrix(found[k]), losses.gram_matrix(goal[k])))
               for k in STYLE) / len(STYLE)


def test_two_regions_each_take_their_own_style(net):
    content, red, green = make_content(*SIZE), make_style(64, 64, seed=0), _checker()
    left, right = halves()
    result = stylecraft.run("transfer", content, [red, green], masks=[left, right], size=64, iterations=40, seed=1,
                            single_scale=True)
    assert result.stopped is None and result.settings["masks"] == ["<image>", "<image>"]
    picture = result.image
    styles = [images.to_tensor(s) for s in (red, green)]
    sides = picture[..., :, :28], picture[..., :, 36:]  # the halves, without the feathered band
    for own, side in enumerate(sides):
        distances = [_gram_distance(net, side, style) for style in styles]
        assert distances[own] < distances[1 - own], (own, distances)


def test_a_region_no_mask_covers_keeps_the_photo():
    content = make_content(*SIZE)
    left, _ = halves()
    result = stylecraft.run("transfer", content, [make_style(64, 64)], masks=[left], size=64, iterations=30, seed=1,
                            single_scale=True)
    photo, style = images.to_tensor(content), images.to_tensor(make_style(64, 64))
    kept = score_tensors(result.image[..., :, 40:], photo[..., :, 40:], style).structure_kept
    styled = score_tensors(result.image[..., :, :24], photo[..., :, :24], style).structure_kept
    assert kept > 0.95 > 0.5 > styled and "keep" in result.history[-1], (kept, styled)


def test_a_masked_run_in_tiles_matches_the_whole_run():
    content, left, right = make_content(96, 64), *halves(96, 64)
    options = {"size": 96, "iterations": 6, "seed": 2, "single_scale": True, "masks": [left, right],
               "color_weight": 0.0}  # as test_tiling's end-to-end runs, with their tolerance
    whole = stylecraft.run("transfer", content, [make_style(), _checker()], **options)
    tiled = stylecraft.run("transfer", content, [make_style(), _checker()], tile=32, **options)
    assert tiled.settings["tiled_scales"] == [[96, 64]]
    assert float((tiled.image - whole.image).abs().max()) < 2 / 255


def _checker(side: int = 64) -> Image.Image:
    y, x = np.mgrid[0:side, 0:side]
    cells = (((x // 8) + (y // 8)) % 2)[..., None]
    return Image.fromarray(np.where(cells == 1, (30, 160, 70), (235, 235, 240)).astype(np.uint8), "RGB")


def test_masks_of_another_size_are_resized_with_a_note_and_a_style_mask_picks_the_painting_part():
    notes: list[str] = []
    left, _ = halves(32, 24)
    painting = np.zeros((64, 64), np.uint8)
    painting[:32] = 255
    result = stylecraft.run("transfer", make_content(*SIZE), [make_style()], masks=[left],
                            style_masks=[Image.fromarray(painting, "L")], size=64, iterations=2, seed=1,
                            on_plan=notes.append)
    assert result.stopped is None
    assert any("mask 1 (the picture) is 32 x 24 px, the photo 64 x 48: resized" in n for n in notes), notes


@pytest.mark.parametrize(("options", "words"), [
    ({"masks": [halves()[0]]}, "`masks`: 1 mask(s) for 2 style(s)"),
    ({"masks": [halves()[0], Image.new("L", SIZE, 0)]}, "mask 2 (the picture) is black everywhere"),
    ({"masks": list(halves()), "style_blend": (1, 2)}, "`style_blend` does not go with `masks`"),
    ({"masks": list(halves()), "style_masks": [None]}, "`style_masks`: 1 mask(s) for 2 style(s)"),
    ({"style_masks": [None, None]}, "need `masks` too"),
    ({"masks": list(halves()), "scale_split": "relu3_1"}, "do not go together"),
    ({"scale_split": "relu1_1"}, "one of the style layers after the first"),
])
def test_bad_masks_are_refused_in_one_line(options, words):
    with pytest.raises(ConfigError) as error:
        stylecraft.run("transfer", make_content(*SIZE), [make_style(), _checker()], size=48, iterations=1, seed=1,
                       **options)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_masks_go_with_a_transfer_only_and_unreadable_ones_are_image_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="go with a transfer"):
        stylecraft.run("texture", None, [make_style()], masks=[halves()[0]], size=32, iterations=1)
    broken = tmp_path / "mask.png"
    broken.write_bytes(b"not a picture")
    with pytest.raises(ImageError, match="mask.png"):
        stylecraft.run("transfer", make_content(*SIZE), [make_style()], masks=[broken], size=32, iterations=1)


# ---- masks from flat colours ------------------------------------------------------------------------------


def _regions_picture(noisy: bool = False) -> Image.Image:
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[:, :] = (0, 0, 255)  # blue everywhere ...
    picture[:15] = (255, 0, 0)  # ... under a red band at the top
    picture[30:, 40:] = (255, 255, 255)  # and a white corner
    image = Image.fromarray(picture, "RGB")
    if noisy:  # JPEG noise and blurred edges
        data = images.encode_image(image, "JPEG")
        image = Image.open(io.BytesIO(data)).convert("RGB")
    return image


@pytest.mark.parametrize("noisy", [False, True])
def test_region_masks_in_order_of_appearance_and_by_colour_name(noisy: bool):
    picture = _regions_picture(noisy)
    red, blue = (np.asarray(m) > 127 for m in region_masks(picture, count=2))
    assert red[:14].all() and not red[16:].any() and blue[16:29].all() and not blue[:14].any()
    white, named_red = (np.asarray(m) > 127 for m in region_masks(picture, colours=["white", "#ff0000"]))
    assert white[31:, 41:].all() and not white[:29].any() and (named_red == red).all()


def test_region_masks_refuse_too_few_colours_and_unknown_names():
    with pytest.raises(ConfigError, match="3 flat colour"):
        region_masks(_regions_picture(), count=4)
    with pytest.raises(ConfigError, match="no region near green"):
        region_masks(_regions_picture(), colours=["green"])
    with pytest.raises(ConfigError, match="not a colour name"):
        region_masks(_regions_picture(), colours=["nocolour"])


# ---- the command line --------------------------------------------------------------------------------------

FAST = ["--size", "48", "--iterations", "2", "--seed", "1", "--quiet"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name}.png" for name in ("photo", "a", "b", "left", "right", "regions", "black")}
    make_content(*SIZE).save(paths["photo"])
    make_style().save(paths["a"])
    _checker().save(paths["b"])
    left, right = halves()
    left.save(paths["left"])
    right.save(paths["right"])
    _regions_picture().save(paths["regions"])
    Image.new("L", SIZE, 0).save(paths["black"])
    return paths


def _cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("how", [
    ["{a}", "{b}", "--mask", "{left}", "--mask", "{right}", "--style-mask", "all", "--style-mask", "{left}"],
    ["{a}", "{b}", "--mask-from", "{regions}"],
    ["--mask-from", "{regions}", "--regions", "blue={a},red={b}"],
    ["--coarse-style", "{a}", "--fine-style", "{b}", "--scale-split", "relu2_1"],
])
def test_cli_regions_and_scale_control_write_a_picture(capsys, tmp_path, files, how):
    out = tmp_path / "out.png"
    code, err = _cli(capsys, "transfer", files["photo"], *(w.format(**files) for w in how), "-o", out, *FAST)
    assert code == 0 and out.exists(), err
    settings = images.read_metadata(out)
    assert settings is not None and len(settings["styles"]) == 2
    assert ("masks" in settings) == ("--coarse-style" not in how)


@pytest.mark.parametrize(("how", "words"), [
    (["{a}", "{b}", "--mask", "{left}"], "--mask: 1 mask(s) for 2 style(s)"),
    (["{a}", "{b}", "--mask", "{left}", "--mask", "{black}"], "black everywhere"),
    (["{a}", "--mask", "{photo}x"], "no such file"),
    (["{a}", "{b}", "--mask-from", "{regions}", "--mask", "{left}"], "do not go together"),
    (["--mask-from", "{regions}", "--regions", "green={a}"], "--regions: "),
    (["{a}", "--regions", "red={a}"], "give one"),
    (["{a}", "--coarse-style", "{a}", "--fine-style", "{b}"], "no other style"),
])
def test_cli_bad_regions_exit_2_in_one_line_and_write_nothing(capsys, tmp_path, files, how, words):
    out = tmp_path / "out.png"
    code, err = _cli(capsys, "transfer", files["photo"], *(w.format(**files) for w in how), "-o", out, *FAST)
    assert code == 2 and words in err and err.count("\n") == 1 and not out.exists(), err


def test_cli_grid_sweeps_the_scale_split(capsys, tmp_path, files):
    out = tmp_path / "sheet.png"
    code, err = _cli(capsys, "grid", "transfer", "--content", files["photo"], "--coarse-style", files["a"],
                     "--fine-style", files["b"], "--vary", "scale-split=relu2_1,relu4_1", "--size", "32",
                     "--iterations", "1", "--cell-size", "32", "--seed", "1", "-o", out)
    assert code == 0 and out.exists(), err
