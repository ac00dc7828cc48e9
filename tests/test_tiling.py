"""Pictures of any size: tiles whose features equal the whole picture's, the exact tiled objective and its
gradient, the memory plan, and tiled runs end to end; with the real VGG-19 weights, on small pictures."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_content, make_style

import stylecraft
from stylecraft import ConfigError, FeatureNetwork, TransferConfig, images, losses
from stylecraft.objective import Objective
from stylecraft.optimize.memory import HISTORY, estimate_memory, plan_memory
from stylecraft.runtime import Runtime
from stylecraft.tiling import Tiling, features, moments, receptive_radius

CONTENT = ("relu4_2",)
STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CPU = Runtime.resolve("cpu")


@pytest.fixture(scope="module")
def net():
    return FeatureNetwork().build([*CONTENT, *STYLE], torch.device("cpu"))


def test_tiles_partition_the_picture_and_align_with_the_pooling(net) -> None:
    tiling = Tiling.for_net(net, 50)
    assert (tiling.tile, tiling.align) == (64, 16) and tiling.halo >= receptive_radius(net) and tiling.halo % 16 == 0
    covered = torch.zeros(100, 150, dtype=torch.int32)
    for box in tiling.boxes(150, 100):
        left, top, right, bottom = box.interior
        covered[top:bottom, left:right] += 1
        assert box.crop[0] % 16 == 0 and box.crop[1] % 16 == 0
        assert box.crop[0] <= left and box.crop[2] >= right and box.crop[2] - right in (tiling.halo, 150 - right)
    assert bool((covered == 1).all()) and tiling.count(150, 100) == len(tiling.boxes(150, 100)) == 6


def test_tiled_features_and_moments_equal_the_whole_pictures(net) -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 90, 173)  # odd sides: pooling floors them
    layers = [*CONTENT, *STYLE]
    tiling = Tiling.for_net(net, 32)
    with torch.no_grad():
        whole = net(image, layers)
    tiled = features(net, image, layers, tiling)
    tiled_moments = moments(net, image, layers, tiling)
    for layer in layers:  # equal but for the rounding of convolutions run on other shapes
        assert (tiled[layer] - whole[layer]).abs().max() <= 1e-5 * whole[layer].abs().max(), layer
        reference = losses.Moments.of(whole[layer].float())
        for found, expected in ((tiled_moments[layer].second, reference.second),
                                (tiled_moments[layer].mean, reference.mean)):
            assert (found - expected).abs().max() <= 1e-5 * expected.abs().max(), layer
    short = features(net, image, layers, Tiling(32, 16, 16))["relu5_1"]  # a halo short of the receptive field
    assert (short - whole["relu5_1"]).abs().max() > 1e-2 * whole["relu5_1"].abs().max()


@pytest.mark.parametrize("style_loss", losses.STYLE_LOSSES)
def test_the_tiled_objective_and_its_gradient_equal_the_whole_ones(net, style_loss: str) -> None:
    objective = Objective(net, content_layers=CONTENT, style_layers=STYLE, style_layer_weights=(1, 2, 3, 4, 5),
                          content_weight=1.0, style_weight=10.0, tv_weight=1.0, style_loss=style_loss,
                          color_weight=100.0)
    torch.manual_seed(1)
    content, style = torch.rand(1, 3, 112, 144), torch.rand(1, 3, 96, 96)
    targets = objective.targets(content, [style], [1.0])
    pixels = torch.rand(1, 3, 112, 144, requires_grad=True)
    whole = objective.evaluate(pixels, targets)
    expected = pixels.grad.clone()
    pixels.grad = None
    tiled = objective.evaluate(pixels, targets, Tiling.for_net(net, 48))
    assert set(tiled) == set(whole)
    for name, value in whole.items():
        assert float(tiled[name]) == pytest.approx(float(value), rel=1e-4), name
    assert float((pixels.grad - expected).norm() / expected.norm()) < 1e-4
    tiled_targets = objective.targets(content, [style], [1.0], Tiling.for_net(net, 48))
    assert all(torch.equal(tiled_targets.content[k], v) for k, v in targets.content.items())


def _scales(size: tuple[int, int], **options: object) -> list[tuple[tuple[int, int], int]]:
    return stylecraft.optimize.schedule(TransferConfig(size=max(size), **options), size)


def test_a_run_that_fits_is_planned_whole_as_before(net) -> None:
    plan = plan_memory(net, _scales((512, 384)), CPU, TransferConfig(), budget=64 * 2**30)
    assert plan.tile is None and plan.optimizer == "lbfgs" and plan.history == HISTORY and plan.tiled == ()
    assert plan.tiling(net, (512, 384)) is None


def test_a_run_that_does_not_fit_is_tiled_with_a_shorter_history(net) -> None:
    size = (4096, 3072)
    budget = 8 * 2**30
    assert estimate_memory(net, size, "lbfgs") > 3 * budget  # 100 L-BFGS pairs alone are about 29 GiB
    scales = _scales(size, scale_iterations=(40,) * 11)  # more iterations at full size than pairs that fit
    plan = plan_memory(net, scales, CPU, TransferConfig(), budget=budget)
    assert plan.tile is not None and plan.optimizer == "lbfgs" and 5 <= plan.history < 40
    assert plan.needed <= budget
    assert plan.tiling(net, size) is not None and plan.tiling(net, scales[0][0]) is None  # small scales run whole
    assert plan.history_for(scales[0][0]) == HISTORY and plan.history_for(size) == plan.history
    line = plan.describe(net, scales)
    assert "GiB" in line and f"{plan.history} pairs" in line and "tiles of" in line and "whole" in line
    tight = plan_memory(net, scales, CPU, TransferConfig(), budget=3 * 2**30)  # no room for 5 pairs
    assert tight.optimizer == "adam" and tight.needed <= 3 * 2**30
    with pytest.raises(ConfigError, match="even tile by tile"):
        plan_memory(net, scales, CPU, TransferConfig(), budget=2 * 2**30)


def test_the_plan_counts_only_the_pairs_a_scale_keeps(net) -> None:
    # By default the full size of a 4096 px run gets 6 iterations, so it keeps 6 pairs, not 100: the
    # estimate and the scales that tile follow from that.
    size = (4096, 3072)
    scales = _scales(size)
    assert scales[-1][1] == 6
    budget = 20 * 2**30
    plan = plan_memory(net, scales, CPU, TransferConfig(), budget=budget)
    assert plan.optimizer == "lbfgs" and plan.history >= 6 and "6 pairs at full size" in plan.describe(net, scales)
    wholes = [estimate_memory(net, s, "lbfgs", min(c, HISTORY)) for s, c in scales]
    assert plan.tiled == tuple(s for (s, _), need in zip(scales, wholes, strict=True) if need > budget)
    assert scales[-3][0] not in plan.tiled and scales[-2][0] in plan.tiled  # 2048 px whole, 2896 px tiled
    assert plan.needed == max(wholes[-3], plan.needed) <= budget  # the largest whole scale counts too
    one = [*scales[:-1], (size, 1)]
    fewer = plan_memory(net, one, CPU, TransferConfig(), budget=8 * 2**30)
    assert fewer.needed < plan_memory(net, scales, CPU, TransferConfig(), budget=8 * 2**30).needed
    assert "L-BFGS with 1 pair at full size" in fewer.describe(net, one)


def test_a_forced_tile_tiles_every_scale_larger_than_it(net) -> None:
    plan = plan_memory(net, _scales((256, 192)), CPU, TransferConfig(tile=64), budget=64 * 2**30)
    assert plan.tile == 64 and plan.history == HISTORY
    assert plan.tiling(net, (256, 192)) is not None and plan.tiling(net, (64, 48)) is None


def test_a_tiled_run_paints_the_picture_the_whole_one_paints() -> None:
    content, style = make_content(128, 96), make_style(96, 96)
    # Without the colour term: its steep first steps magnify the last digits in which tiled and whole gradients
    # differ (3.5/255 after 6 steps with it, 0.17/255 without); its gradient is checked exactly above.
    options = {"size": 128, "iterations": 6, "seed": 2, "single_scale": True, "color_weight": 0.0}
    whole = stylecraft.run("transfer", content, style, **options)
    seen: list[int] = []
    lines: list[str] = []
    tiled = stylecraft.run("transfer", content, style, tile=48, callbacks=[lambda e: seen.append(e.tiles)],
                           on_plan=lines.append, **options)
    assert seen and set(seen) == {math.ceil(128 / 48) * math.ceil(96 / 48)} and "tiles of 48 px" in lines[0]
    for a, b in zip(whole.history, tiled.history, strict=True):
        assert b["total"] == pytest.approx(a["total"], rel=1e-3)
    assert (whole.image - tiled.image).abs().max() < 2 / 255
    assert tiled.settings["tile"] == 48 and tiled.settings["lbfgs_history"] == HISTORY


def test_a_small_budget_tiles_a_run_instead_of_refusing_it() -> None:
    content, style = make_content(96, 72), make_style(64, 64)
    net = FeatureNetwork().build([*CONTENT, *STYLE], torch.device("cpu"))
    budget = estimate_memory(net, (96, 72), "lbfgs", history=30)  # whole, with 30 pairs instead of 40
    result = stylecraft.run("transfer", content, style, size=96, iterations=40, seed=0, single_scale=True,
                            max_memory=budget / 2**30)
    assert 5 <= result.settings["lbfgs_history"] < HISTORY  # a shorter history instead of a refusal
    assert images.to_pil(result.image).size == (96, 72)


@pytest.mark.parametrize("mode", ["reconstruct", "texture"])
def test_reconstruction_and_texture_run_tiled_too(mode: str) -> None:
    inputs = {"reconstruct": (make_content(96, 72), None), "texture": (None, make_style(64, 64))}[mode]
    options = {"size": 96, "iterations": 3, "seed": 4, "single_scale": True, "width": 96, "height": 64,
               "color_weight": 0.0}  # as above
    if mode == "reconstruct":
        del options["width"], options["height"]
    whole = stylecraft.run(mode, *inputs, **options)
    tiled = stylecraft.run(mode, *inputs, tile=32, **options)
    assert tiled.image.shape == whole.image.shape
    assert (whole.image - tiled.image).abs().max() < 2 / 255
