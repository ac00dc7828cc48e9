"""The optimisation engine (optimize.py) through the public API, with the real default VGG-19 weights.

Every picture is drawn here with numpy; runs are tiny (32-48 px, a few iterations) so the file stays fast on
a CPU. Seeds are always explicit, so every number below is reproducible on one machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import stylecraft
from stylecraft import ConfigError, ImageError, Progress, TransferConfig, WeightsError, colour, images
from stylecraft.features.weights import conv_shapes
from stylecraft.optimize import schedule, soft_warning, timing
from stylecraft.tiling import Tiling

# --------------------------------------------------------------------------------------------------- pictures


def content_picture(width: int = 96, height: int = 72) -> Image.Image:
    """A colour gradient with a bright disc and a dark rectangle.

    96 x 72 by default, larger than every working size below, so the API always resizes it (see
    test_transfer_at_the_native_size for the case where it does not).
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 0.2 + 0.6 * x / (width - 1)
    img[..., 1] = 0.3 + 0.4 * y / (height - 1)
    img[..., 2] = 0.6 - 0.3 * x / (width - 1)
    disc = (x - 0.65 * width) ** 2 + (y - 0.4 * height) ** 2 < (0.18 * height) ** 2
    img[disc] = (0.95, 0.92, 0.8)
    img[int(0.55 * height):int(0.85 * height), int(0.12 * width):int(0.4 * width)] = (0.1, 0.08, 0.15)
    return Image.fromarray((img * 255).round().astype(np.uint8), "RGB")


def stripes_picture(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    """Diagonal red, blue and yellow stripes with a little noise."""
    y, x = np.mgrid[0:height, 0:width]
    band = ((x + y) // 6) % 3
    palette = np.array([(0.9, 0.2, 0.1), (0.1, 0.3, 0.9), (0.95, 0.85, 0.1)], np.float32)
    img = palette[band] + np.random.default_rng(seed).normal(0, 0.04, (height, width, 3))
    return Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8), "RGB")


def checker_picture(width: int = 64, height: int = 64, seed: int = 1) -> Image.Image:
    """A green and white checkerboard of 8 px cells with noise."""
    y, x = np.mgrid[0:height, 0:width]
    cell = ((x // 8) + (y // 8)) % 2
    img = np.where(cell[..., None] == 1, (0.1, 0.6, 0.3), (0.9, 0.9, 0.95)).astype(np.float32)
    img = img + np.random.default_rng(seed).normal(0, 0.08, (height, width, 3))
    return Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8), "RGB")


def working(picture: Image.Image, size: int) -> torch.Tensor:
    """``picture`` as the API sees it at ``size``: a tensor with its long side resized to ``size``."""
    return images.resize_long_side(images.to_tensor(picture), size)


def totals(result: stylecraft.Result, key: str = "total") -> list[float]:
    return [row[key] for row in result.history]


@pytest.fixture(scope="module")
def content() -> Image.Image:
    return content_picture()


@pytest.fixture(scope="module")
def stripes() -> Image.Image:
    return stripes_picture()


@pytest.fixture(scope="module")
def checker() -> Image.Image:
    return checker_picture()


# ----------------------------------------------------------------------------------------------------- modes


def test_transfer_lowers_the_loss_and_records_its_settings(content, stripes):
    seen: list[Progress] = []
    picture = stylecraft.transfer(content, stripes, size=32, iterations=20, seed=3, callbacks=[seen.append])
    assert isinstance(picture, Image.Image)
    assert picture.size == (32, 24)  # 96 x 72 with its long side at 32
    first, last = seen[0].losses["total"], seen[-1].losses["total"]
    assert math.isfinite(last)
    assert last < first / 2
    settings = picture.info["stylecraft"]
    assert settings["mode"] == "transfer"
    assert settings["seed"] == 3
    assert settings["iterations_done"] == 20
    assert settings["content"] == "<image>" and settings["styles"] == ["<image>"]
    json.dumps(settings)  # the settings go into PNG metadata as JSON


def test_transfer_at_the_native_size(stripes):
    """A content picture already at ``size`` is not resized; L-BFGS must still run from it.

    Regression: a channels-last tensor from images.to_tensor became the optimised pixels unchanged, and torch's
    L-BFGS (``p.grad.view(-1)``) raised on its gradient.
    """
    result = stylecraft.run("transfer", content_picture(64, 48), stripes, size=64, iterations=2, seed=0)
    assert result.image.shape == (1, 3, 48, 64)
    assert result.iterations == 2


def test_reconstruct_from_noise_approaches_the_content(content):
    size = 48
    result = stylecraft.run("reconstruct", content, size=size, content_layers=("relu2_2",), iterations=80, seed=0)
    target = working(content, size)
    assert result.image.shape == target.shape
    # The start is noise around grey 0.5; its error to the content is at least that of plain grey.
    grey_error = (target - 0.5).abs().mean().item()
    error = (result.image - target).abs().mean().item()
    assert error < 0.5 * grey_error
    assert totals(result)[-1] < totals(result)[0] / 10
    assert set(result.history[0]) >= {"iteration", "total", "content", "tv", "content:relu2_2"}
    assert "style" not in result.history[0]  # a reconstruction has no style term
    assert result.settings["mode"] == "reconstruct"
    assert result.settings["styles"] == []
    assert result.settings["content"] == "<image>"


def test_texture_matches_the_style_statistics(checker):
    result = stylecraft.run("texture", None, checker, size=32, iterations=25, seed=1)
    style = totals(result, "style")
    assert style[-1] < style[0] / 5
    assert result.image.shape == (1, 3, 32, 32)
    assert "content" not in result.history[0]
    assert {f"style:relu{b}_1" for b in range(1, 6)} <= set(result.history[0])
    assert result.settings["content"] is None
    assert result.settings["mode"] == "texture"


def test_texture_canvas_width_and_height(checker):
    picture = stylecraft.texture(checker, width=40, height=56, iterations=1, seed=0)
    assert picture.size == (40, 56)
    assert picture.info["stylecraft"]["content"] is None
    result = stylecraft.run("texture", None, checker, width=40, iterations=1, seed=0)
    assert result.image.shape == (1, 3, 40, 40)  # the style is square: the height follows its aspect


# ---------------------------------------------------------------------------------------- inits, optimisers


def _one_tiny_step(mode, content, style, init, size=32):
    """One Adam step of a millionth: the output is the starting image (``init`` a name or a picture)."""
    start = {"init": init} if init in stylecraft.optimize.INITS else {"init_image": init}
    return stylecraft.run(mode, content, style, size=size, iterations=1, optimizer="adam", lr=1e-6, seed=0,
                          **start).image


def test_init_content(content, stripes):
    out = _one_tiny_step("transfer", content, stripes, "content")
    assert (out - working(content, 32)).abs().max() < 1e-4


def test_init_style(content, stripes):
    out = _one_tiny_step("transfer", content, stripes, "style")
    # the style at its working size (long side = the canvas's, 32), then stretched to the 32 x 24 canvas
    style = images.resize(images.to_tensor(stripes), (32, 32))
    assert (out - images.resize(style, (32, 24))).abs().max() < 1e-4
    assert (out - working(content, 32)).abs().mean() > 0.1


def test_init_noise(content, stripes):
    out = _one_tiny_step("transfer", content, stripes, "noise")
    assert (out - working(content, 32)).abs().mean() > 0.1
    assert abs(out.mean().item() - 0.5) < 0.05
    assert 0.08 < out.std().item() < 0.25


def test_init_from_a_file(content, checker, stripes, tmp_path):
    path = tmp_path / "start.png"
    checker.save(path)
    out = _one_tiny_step("transfer", content, stripes, str(path))
    canvas = (out.shape[-1], out.shape[-2])
    assert (out - images.resize(images.to_tensor(checker), canvas)).abs().max() < 1e-4
    # and for a reconstruction, whose default start is noise
    out = _one_tiny_step("reconstruct", content, None, str(path))
    assert (out - images.resize(images.to_tensor(checker), canvas)).abs().max() < 1e-4


def test_init_palette_is_the_content_in_the_styles_colours(content, stripes):
    out = _one_tiny_step("transfer", content, stripes, "palette")
    style = images.resize(images.to_tensor(stripes), (32, 32))
    assert (out - colour.match_colour(working(content, 32), style)).abs().max() < 1e-4
    photo_off = (working(content, 32).mean((2, 3)) - style.mean((2, 3))).norm()
    assert (out.mean((2, 3)) - style.mean((2, 3))).norm() < photo_off / 3  # near the stripes' mean colour
    luma = [colour.rgb_to_yuv(picture)[:, 0].flatten() for picture in (out, working(content, 32))]
    assert float(torch.corrcoef(torch.stack(luma))[0, 1]) > 0.8  # the photo's shapes and shading


def test_default_inits(content, stripes):
    """A transfer starts from the content in the style's palette (the content itself when its colours are
    kept), a reconstruction from noise."""
    transfer = _one_tiny_step("transfer", content, stripes, None)
    assert (transfer - _one_tiny_step("transfer", content, stripes, "palette")).abs().max() < 1e-6
    kept = stylecraft.run("transfer", content, stripes, size=32, iterations=1, optimizer="adam", lr=1e-6, seed=0,
                          preserve_color=True).image
    assert (kept - working(content, 32)).abs().max() < 2e-3  # the content's luminance: it started from it
    assert TransferConfig().start(stylecraft.Mode.TEXTURE) == "noise"
    rebuilt = _one_tiny_step("reconstruct", content, None, None)
    assert (rebuilt - working(content, 32)).abs().mean() > 0.1


@pytest.mark.parametrize("options", [{"optimizer": "lbfgs"}, {"optimizer": "adam"}, {"pooling": "avg"}],
                         ids=["lbfgs", "adam", "avg-pooling"])
def test_optimisers_and_pooling_reduce_the_loss(content, stripes, options):
    result = stylecraft.run("transfer", content, stripes, size=32, iterations=8, seed=0, **options)
    assert result.iterations == 8 and result.stopped is None
    assert totals(result)[-1] < 0.85 * totals(result)[0]
    assert torch.isfinite(result.image).all()
    for name, value in options.items():
        assert result.settings[name] == value


def test_avg_pooling_changes_the_features(content, stripes):
    by_pool = {p: stylecraft.run("transfer", content, stripes, size=32, iterations=1, seed=0, pooling=p)
               for p in ("max", "avg")}
    # The content image is its own target at the start, so only the style terms of deep layers tell.
    assert by_pool["max"].history[0]["style:relu5_1"] != pytest.approx(by_pool["avg"].history[0]["style:relu5_1"])


# ------------------------------------------------------------------------------------------------------ seeds


def _noise_run(content, seed, **options):
    return stylecraft.run("reconstruct", content, size=32, content_layers=("relu2_2",), iterations=2,
                          seed=seed, **options)


def test_same_seed_same_image(content):
    assert torch.equal(_noise_run(content, 11).image, _noise_run(content, 11).image)


def test_different_seeds_different_images(content):
    assert not torch.equal(_noise_run(content, 11).image, _noise_run(content, 12).image)


def test_no_seed_picks_one_and_records_it(content):
    result = _noise_run(content, None)
    assert isinstance(result.seed, int)
    assert result.settings["seed"] == result.seed
    assert torch.equal(_noise_run(content, result.seed).image, result.image)


# -------------------------------------------------------------------------------------------------- blending


def test_style_blend(content, stripes, checker):
    def run(styles, blend=None):
        return stylecraft.run("transfer", content, styles, size=32, iterations=3, seed=0, init="content",
                              style_blend=blend).image

    alone = run(stripes)
    assert torch.equal(run([stripes, checker], (1, 0)), alone)
    assert torch.equal(run([checker, stripes], (0, 2)), alone)  # weights are relative
    half = run([stripes, checker], (0.5, 0.5))
    assert not torch.equal(half, alone)
    assert not torch.equal(half, run(checker))


# ---------------------------------------------------------------------------------------------- preserve colour


def _preserved(content, stripes):
    size = 48
    result = stylecraft.run("transfer", content, stripes, size=size, iterations=8, seed=0, preserve_color=True)
    return result.image, working(content, size)


def test_preserve_color_keeps_the_content_chroma(content, stripes):
    out, original = _preserved(content, stripes)
    assert out.shape == original.shape
    out_yuv, original_yuv = colour.rgb_to_yuv(out), colour.rgb_to_yuv(original)
    # The luminance did change: this is a transfer, not a copy.
    assert (out_yuv[:, 0] - original_yuv[:, 0]).abs().mean() > 0.02
    # Where no channel had to be clipped to [0, 1], U and V are the content's.
    unclipped = ((out > 0) & (out < 1)).all(dim=1)
    assert unclipped.float().mean() > 0.8
    chroma_error = (out_yuv[:, 1:] - original_yuv[:, 1:]).abs().amax(dim=1)
    assert chroma_error[unclipped].max() < 1e-3


def test_preserve_color_keeps_the_chroma_everywhere(content, stripes):
    out, original = _preserved(content, stripes)
    chroma_error = (colour.rgb_to_yuv(out)[:, 1:] - colour.rgb_to_yuv(original)[:, 1:]).abs()
    assert chroma_error.max() < 1e-3


# ----------------------------------------------------------------------------------------------- layer weights


def test_style_layer_weights(content, stripes):
    result = stylecraft.run("transfer", content, stripes, size=32, iterations=2, seed=0, style_weight=7.0,
                            style_layer_weights=(2, 0, 0, 0, 0))
    for row in result.history:
        assert row["style"] == pytest.approx(7.0 * row["style:relu1_1"], rel=1e-5)
        assert row["style:relu5_1"] > 0  # computed and reported, but weighted 0


def test_content_layer_weights(content, stripes):
    result = stylecraft.run("transfer", content, stripes, size=32, iterations=3, seed=0, init="noise",
                            content_weight=2.0, content_layers=("relu2_2", "relu4_2"),
                            content_layer_weights=(3, 1))
    for row in result.history:
        expected = 2.0 * (0.75 * row["content:relu2_2"] + 0.25 * row["content:relu4_2"])
        assert row["content"] == pytest.approx(expected, rel=1e-5)
        assert row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"] + row["colour"], rel=1e-5)


def test_history_rows(content, stripes):
    result = stylecraft.run("transfer", content, stripes, size=32, iterations=3, seed=0, tv_weight=0)
    assert [row["iteration"] for row in result.history] == [1, 2, 3]
    assert "tv" not in result.history[0]  # a weight of 0 leaves the term out
    expected = {"total", "content", "style", "content:relu4_2"} | {f"style:relu{b}_1" for b in range(1, 6)}
    assert expected <= set(result.history[0])


# --------------------------------------------------------------------------------------- callbacks, stopping


def test_callbacks_receive_progress(content):
    events: list[Progress] = []
    pictures: list[torch.Tensor] = []

    def callback(event: Progress) -> None:
        events.append(event)
        pictures.append(event.image())

    result = stylecraft.run("reconstruct", content, size=32, content_layers=("relu2_2",), iterations=4, seed=0,
                            callbacks=[callback])
    assert [e.iteration for e in events] == [1, 2, 3, 4]
    assert all(e.iterations == 4 for e in events)
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    assert all({"total", "content", "content:relu2_2"} <= set(e.losses) for e in events)
    assert [e.losses["total"] for e in events] == totals(result)
    for picture in pictures:
        assert picture.shape == (1, 3, 24, 32)
        assert picture.device.type == "cpu"
    assert not torch.equal(pictures[0], pictures[-1])  # each event shows the picture as it is then
    assert torch.equal(pictures[-1], result.image)


def test_interruption_keeps_the_current_image(content):
    def stop(event: Progress) -> None:
        if event.iteration == 3:
            raise KeyboardInterrupt

    try:
        result = stylecraft.run("reconstruct", content, size=32, content_layers=("relu2_2",), iterations=10,
                                seed=0, callbacks=[stop])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped the run instead of stopping it")
    assert result.stopped == "interrupted"
    assert result.iterations == 3
    assert len(result.history) == 3
    assert result.settings["iterations_done"] == 3
    assert torch.isfinite(result.image).all()


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_an_interrupted_transfer_resumes_to_the_same_picture(tmp_path, content, stripes, optimizer):
    settings = {"size": 64, "min_size": 32, "iterations": 12, "seed": 3, "optimizer": optimizer}
    whole = stylecraft.run("transfer", content, stripes, **settings)

    def interrupt(event: Progress) -> None:
        if event.iteration == 8:  # in the middle of the second of three scales (6, 4 and 2 iterations)
            raise KeyboardInterrupt

    stopped = stylecraft.run("transfer", content, stripes, callbacks=[interrupt], **settings)
    assert stopped.stopped == "interrupted" and stopped.checkpoint is not None and stopped.checkpoint.scale == 2
    picture = tmp_path / "out.png"
    images.save_image(stopped.image, picture, metadata=stopped.settings)
    stylecraft.api.save_resume(stopped.checkpoint, picture)
    seen: list[int] = []
    resumed = stylecraft.run("transfer", content, stripes, resume=picture,
                             callbacks=[lambda event: seen.append(event.iteration)])
    assert seen[0] == 9 and resumed.iterations == 12 and resumed.settings["resumed_at"] == 8
    assert torch.equal(resumed.image, whole.image)
    assert resumed.settings["quality"] == whole.settings["quality"]
    stylecraft.api.save_resume(resumed.checkpoint, picture)  # a finished run leaves no checkpoint behind
    assert not stylecraft.api.resume_file(picture).exists()


def test_a_resume_that_would_paint_another_picture_is_refused(tmp_path, content, stripes, checker):
    def interrupt(event: Progress) -> None:
        if event.iteration == 2:
            raise KeyboardInterrupt

    stopped = stylecraft.run("transfer", content, stripes, size=48, iterations=6, seed=1, callbacks=[interrupt])
    picture = tmp_path / "out.png"
    images.save_image(stopped.image, picture, metadata=stopped.settings)
    with pytest.raises(ConfigError, match="has no out.png.resume.pt"):
        stylecraft.run("transfer", content, stripes, resume=picture)
    stylecraft.api.save_resume(stopped.checkpoint, picture)
    for inputs, options, words in (((content, stripes), {"size": 64}, "`size` 48, not 64"),
                                   ((content, stripes), {"seed": 2}, "`seed` 1, not 2"),
                                   ((content, checker), {}, "other style pictures"),
                                   ((checker, stripes), {}, "another content picture")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            stylecraft.run("transfer", *inputs, resume=picture, **options)
    with pytest.raises(ConfigError, match="is a transfer, not a reconstruct"):
        stylecraft.run("reconstruct", content, resume=picture)
    assert stylecraft.run("transfer", content, stripes, resume=picture, tile=32).iterations == 6  # tiles are exact


class _Flag:
    """A stop signal that is not a threading.Event: anything with is_set() will do."""

    def __init__(self) -> None:
        self.set_ = False

    def is_set(self) -> bool:
        return self.set_


def test_a_stop_signal_ends_the_run_and_the_grid_with_the_work_so_far(content, stripes):
    flag, events = _Flag(), []

    def watch(event: Progress) -> None:
        events.append((event.step, event.total, event.notes()))
        flag.set_ = event.step == 2 and len(events) > 3  # in the grid's second cell

    result = stylecraft.run("reconstruct", content, size=32, content_layers=("relu2_2",), iterations=10, seed=0,
                            stop=threading.Event(), callbacks=[watch])
    assert result.stopped is None and events[0] == (1, 10, {"scale": "1/1 32x24"})
    events.clear()
    stop = threading.Event()
    result = stylecraft.run("reconstruct", content, size=32, content_layers=("relu2_2",), iterations=10, seed=0,
                            stop=stop, callbacks=[lambda event: stop.set() if event.step == 3 else None])
    assert result.stopped == "cancelled" and result.iterations == 3 and len(result.history) == 3
    assert torch.isfinite(result.image).all()
    axes = [stylecraft.api.Axis.inputs("content", [content]), stylecraft.api.Axis.of("style_weight", [1, 10, 100])]
    sheet = stylecraft.api.grid("transfer", [*axes, stylecraft.api.Axis.inputs("style", [stripes])], cell_side=32,
                                size=32, iterations=3, single_scale=True, seed=0, stop=flag, callbacks=[watch])
    assert sheet.info["stopped"] == "cancelled"
    assert [step for step, *_ in events] == [1, 2, 3, 1, 2]  # the third cell never ran
    whole = stylecraft.api.grid("transfer", [*axes, stylecraft.api.Axis.inputs("style", [stripes])], cell_side=32,
                                size=32, iterations=1, single_scale=True, seed=0)
    assert "stopped" not in whole.info and sheet.width == whole.width and sheet.height < whole.height  # 2 rows of 3


def test_missing_inputs_and_init_names_are_checked_by_the_settings_alone(content, stripes, no_work):
    cases = [("transfer", None, [stripes], {}), ("texture", None, [], {}), ("transfer", content, [stripes],
                                                                              {"init": "photo.jpg"})]
    for mode, content_, styles, options in cases:
        with pytest.raises(ConfigError) as raised:
            stylecraft.run(mode, content_, styles, size=32, seed=0, **options)
        with pytest.raises(ConfigError) as direct:
            TransferConfig(**options).validate(mode, len(styles), content=content_ is not None)
        assert str(raised.value) == str(direct.value)


def test_one_router_reads_the_options_of_a_run_and_of_training(tmp_path):
    from stylecraft.api.transfer import route

    config, network = route(TransferConfig(), stylecraft.FeatureNetwork(), {"size": 64, "pooling": "avg"})
    assert config.size == 64 and network.pooling == "avg"
    with pytest.raises(ConfigError, match="unknown option 'sise'; valid options: .*pooling"):
        stylecraft.run("transfer", "a.jpg", "b.jpg", sise=3)
    with pytest.raises(ConfigError, match="unknown option 'sise'; valid options: .*network_width.*pooling"):
        stylecraft.api.train_network("a.jpg", tmp_path, tmp_path / "m.pt", sise=3)


def test_non_finite_loss_stops_with_the_last_good_image(content, stripes):
    """A style weight near float32's maximum overflows: the loss becomes NaN after a couple of steps."""
    pictures: list[torch.Tensor] = []
    result = stylecraft.run("transfer", content, stripes, size=32, iterations=6, seed=0, init="noise",
                            style_weight=3e38, callbacks=[lambda event: pictures.append(event.image())])
    assert result.stopped is not None and "loss" in result.stopped
    assert "nan" in result.stopped or "inf" in result.stopped
    assert 2 <= result.iterations < 6
    assert len(result.history) == result.iterations
    assert all(math.isfinite(row["total"]) for row in result.history)
    assert torch.isfinite(result.image).all()
    # Each iteration records the loss of the pixels before its step, so the last picture with a finite loss
    # is the one reported by the callback one iteration before the last recorded one.
    assert torch.equal(result.image, pictures[result.iterations - 2])


# ------------------------------------------------------------------------------------------------ validation


@pytest.fixture
def no_work(monkeypatch):
    """Make any attempt to build the network fail, to prove that an error comes first."""
    def refuse(*args, **kwargs):
        raise AssertionError("the network was built before the options were checked")

    monkeypatch.setattr(stylecraft.FeatureNetwork, "build", refuse)


@pytest.mark.parametrize("options, words", [
    ({"content_weight": -1.0}, "`content_weight`"),
    ({"style_weight": float("nan")}, "`style_weight`"),
    ({"tv_weight": float("inf")}, "`tv_weight`"),
    ({"style_layer_weights": (1, float("nan"), 1, 1, 1)}, "`style_layer_weights`"),
    ({"style_layer_weights": (1, -1, 1, 1, 1)}, "`style_layer_weights`"),
    ({"style_layer_weights": (0, 0, 0, 0, 0)}, "greater than 0"),
    ({"iterations": 0}, "iterations"),
    ({"size": 0}, "size"),
    ({"lr": 0.0}, "lr"),
    ({"content_layers": ("relu9_9",)}, "unknown layer"),
    ({"style_layers": ("relu1_1", "rleu2_1")}, "relu2_1"),  # suggests the near name
    ({"style_layer_weights": (1, 2)}, "2 weights for 5"),
    ({"content_layers": ("relu4_2", "relu4_2")}, "twice"),
    ({"style_layers": ("relu1_1", "block1_conv1")}, "twice"),  # the Keras name of the same layer
    ({"optimizer": "sgd"}, "lbfgs"),
    ({"pooling": "median"}, "pooling"),
    ({"model": "vgg11"}, "vgg19"),
    ({"style_blend": (1, 1)}, "`style_blend`"),
    ({"colour": True}, "valid options"),
    ({"style_loss": "cosine"}, "`style_loss`: 'cosine' is not one of gram, mean-std, wasserstein"),
    ({"preset": "superb"}, "`preset`: 'superb' is not one of draft, standard, fine"),
    ({"color_weight": -1.0}, "`color_weight`"),
    ({"iterations": 10**20}, "`iterations` must be 1 to 100000"),
    ({"scales": 100000}, "`scales` must be 1 to 32"),
    ({"style_scale": 1e308}, "`style_scale` must be"),
    ({"scale_iterations": (1, 10**9)}, "`scale_iterations` must be"),
    ({"max_memory": 0.0}, "`max_memory` must be"),
])
def test_bad_options_are_refused_before_any_work(content, stripes, no_work, options, words):
    with pytest.raises(ConfigError, match=words):
        stylecraft.run("transfer", content, stripes, **{"size": 32, "seed": 0, **options})


def test_mode_specific_options_are_refused(content, stripes, no_work):
    with pytest.raises(ConfigError, match="`preserve_color`"):
        stylecraft.texture(stripes, preserve_color=True, size=32, seed=0)
    with pytest.raises(ConfigError, match="`init` content"):
        stylecraft.texture(stripes, init="content", size=32, seed=0)
    with pytest.raises(ConfigError, match="`init` style"):
        stylecraft.reconstruct(content, init="style", size=32, seed=0)
    with pytest.raises(ConfigError, match="`init` palette needs a style"):
        stylecraft.reconstruct(content, init="palette", size=32, seed=0)
    with pytest.raises(ConfigError, match="mode"):
        stylecraft.run("collage", content, stripes, size=32, seed=0)


def test_all_loss_weights_zero_is_refused(content, stripes):
    with pytest.raises(ConfigError, match="nothing to optimise"):
        stylecraft.run("transfer", content, stripes, size=32, iterations=1, seed=0,
                       content_weight=0, style_weight=0, tv_weight=0)


def test_seed_out_of_range_is_refused(content, stripes):
    with pytest.raises(ConfigError, match="`seed`"):
        stylecraft.run("transfer", content, stripes, size=32, iterations=1, seed=2**64)


def test_path_options_are_recorded_as_strings(tmp_path, content, stripes):
    init = tmp_path / "init.png"
    stripes.save(init)
    result = stylecraft.run("transfer", content, stripes, size=32, iterations=1, seed=0, init_image=init)
    assert result.settings["init_image"] == str(init) and result.settings["init"] is None
    with pytest.raises(ConfigError, match="`init_image`"):  # a picture of one's own is not a start image's name
        stylecraft.run("transfer", content, stripes, size=32, iterations=1, seed=0, init=str(init))


def test_reconstruct_needs_no_style_layers(content):
    result = stylecraft.run("reconstruct", content, size=32, iterations=1, seed=0, style_layers=())
    assert result.iterations == 1


def test_image_too_small_for_the_deepest_layer(content, stripes):
    called: list[Progress] = []
    with pytest.raises(ImageError, match="too small"):
        stylecraft.run("transfer", content, stripes, size=8, seed=0, callbacks=[called.append])
    assert not called
    # shallower layers need fewer pixels: relu2_2 comes after one pooling, 2 px per side
    result = stylecraft.run("reconstruct", content, size=8, content_layers=("relu2_2",), iterations=1, seed=0)
    assert result.image.shape == (1, 3, 6, 8)


def test_config_replace_and_frozen():
    config = TransferConfig()
    changed = config.replace(size=64, style_layers=["relu1_1", "relu2_1"])
    assert changed.size == 64 and config.size == 512
    assert changed.style_layers == ("relu1_1", "relu2_1")  # lists become tuples
    with pytest.raises(ConfigError) as error:
        config.replace(sise=64)
    message = str(error.value)
    assert "sise" in message
    assert all(f.name in message for f in dataclasses.fields(TransferConfig))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.size = 64  # type: ignore[misc]
    assert config.learning_rate() == 1.0
    assert config.replace(optimizer="adam").learning_rate() == 0.02
    assert config.replace(lr=0.5).learning_rate() == 0.5


def test_a_preset_sets_defaults_that_options_override(content, stripes):
    config, _ = stylecraft.api.settle(None, None, {"iterations": 2}, "draft")
    assert (config.size, config.iterations) == (384, 2)
    assert stylecraft.api.settle(None, None, {}, "fine")[0].size > TransferConfig().size
    assert stylecraft.api.settle(None, None, {}, "standard")[0] == TransferConfig()
    result = stylecraft.run("transfer", content, stripes, preset="draft", size=32, iterations=2, seed=0)
    assert result.settings["preset"] == "draft" and result.settings["size"] == 32
    assert result.image.shape == (1, 3, 24, 32)


def test_the_colour_term_pulls_the_picture_into_the_styles_palette(content, stripes):
    runs = {weight: stylecraft.run("transfer", content, stripes, size=48, iterations=20, seed=0, init="content",
                                   color_weight=weight) for weight in (0.0, 100.0)}
    assert "colour" in runs[100.0].history[-1] and "colour" not in runs[0.0].history[-1]
    assert runs[100.0].history[-1]["colour"] < runs[100.0].history[0]["colour"] / 2
    style = images.to_tensor(stripes).mean((2, 3))
    off = {weight: float((run.image.mean((2, 3)) - style).norm()) for weight, run in runs.items()}
    assert off[100.0] < off[0.0] / 2
    kept = stylecraft.run("transfer", content, stripes, size=48, iterations=2, seed=0, color_weight=100.0,
                          preserve_color=True)
    assert "colour" not in kept.history[-1]  # the content's colours are kept: no term pulls against them


@pytest.mark.parametrize("style_loss", ["mean-std", "wasserstein"])
def test_other_style_losses_lower_their_style_term(checker, style_loss):
    result = stylecraft.run("texture", None, checker, size=32, iterations=25, seed=1, style_loss=style_loss)
    style = totals(result, "style")
    assert all(math.isfinite(value) for value in style)
    assert style[-1] < style[0] / 5
    assert result.settings["style_loss"] == style_loss
    gram = stylecraft.run("texture", None, checker, size=32, iterations=25, seed=1)
    assert not torch.equal(result.image, gram.image)


def test_a_config_object_and_options_combine(content):
    config = TransferConfig(size=32, content_layers=("relu2_2",), iterations=2, seed=4)
    result = stylecraft.run("reconstruct", content, config=config, iterations=3)
    assert result.iterations == 3
    assert result.settings["seed"] == 4
    assert result.image.shape == (1, 3, 24, 32)


# ------------------------------------------------------------------------------------------------------ VGG-16


def _torchvision_state(model: str) -> dict[str, torch.Tensor]:
    positions = {"vgg16": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
                 "vgg19": (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)}[model]
    generator = torch.Generator().manual_seed(0)
    state = {}
    for position, (cin, cout) in zip(positions, conv_shapes(model), strict=True):
        state[f"features.{position}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * 0.05
        state[f"features.{position}.bias"] = torch.randn(cout, generator=generator) * 0.05
    return state


def test_vgg16_weights_from_a_file(content, stripes, tmp_path):
    path = tmp_path / "vgg16-397923af.pth"  # torchvision's file name tells the format
    torch.save(_torchvision_state("vgg16"), path)
    result = stylecraft.run("transfer", content, stripes, size=32, iterations=2, seed=0, model="vgg16",
                            weights=str(path))
    assert result.image.shape == (1, 3, 24, 32)
    assert torch.isfinite(result.image).all()
    assert result.iterations == 2
    assert result.settings["model"] == "vgg16"
    assert all(math.isfinite(row["total"]) for row in result.history)
    with pytest.raises(WeightsError, match="vgg16"):
        stylecraft.run("transfer", content, stripes, size=32, iterations=1, seed=0, model="vgg19",
                       weights=str(path))


# ----------------------------------------------------------------------------------------------- coarse to fine


def test_schedule_grows_by_sqrt2_and_favours_small_scales():
    plan = schedule(TransferConfig(iterations=300), (512, 384))
    assert [size for size, _ in plan] == [(128, 96), (181, 136), (256, 192), (362, 272), (512, 384)]
    counts = [count for _, count in plan]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 300
    assert schedule(TransferConfig(single_scale=True, iterations=7), (512, 384)) == [((512, 384), 7)]
    assert len(schedule(TransferConfig(scales=3), (1024, 768))) == 3
    assert schedule(TransferConfig(scale_iterations=(5, 6)), (512, 384)) == [((128, 96), 5), ((512, 384), 6)]
    assert len(schedule(TransferConfig(), (181, 136))) == 2
    with pytest.raises(ConfigError, match="`scale_iterations`"):
        schedule(TransferConfig(scale_iterations=(5,), scales=2), (512, 384))


def test_the_print_preset_gives_the_full_size_the_share_of_a_final_picture():
    finest = {}
    for name in ("standard", "fine", "print"):
        config = TransferConfig().with_preset(name)
        plan = schedule(config, images.fit_long_side(3, 2, config.size))
        finest[name] = plan[-1][1]
        assert soft_warning(plan) is None, name
    print_plan = schedule(TransferConfig().with_preset("print"), (3072, 2048))
    assert len(print_plan) == 10 and print_plan[-1][0] == (3072, 2048)
    assert finest["print"] >= min(finest["standard"], finest["fine"]) >= 25
    # the plain 400 iterations would leave a print's full size 7 of them
    assert schedule(TransferConfig(size=3072), (3072, 2048))[-1][1] == 7


def test_the_plan_line_tells_the_expected_time_from_a_measured_step(content, stripes, monkeypatch):
    # A step of known length stands in for the measured one, so the check holds on a busy machine: the expected
    # time is every planned step (and each scale's targets, about a step) at that length, with the overhead.
    per_pixel = 2e-4
    monkeypatch.setattr(timing, "_step_seconds", lambda net, size, autocast: per_pixel * size[0] * size[1])
    lines: list[str] = []
    sizes: list[tuple[int, int]] = []
    stylecraft.run("transfer", content, stripes, size=96, min_size=48, iterations=24, seed=0, device="cpu",
                   score=False, on_plan=lines.append, callbacks=[lambda e: sizes.append(e.size)])
    found = re.search(r"; expected time about (\d+) s$", lines[0])
    assert found, lines
    planned = timing.OVERHEAD * sum((sizes.count(size) + 1) * per_pixel * size[0] * size[1] for size in set(sizes))
    assert abs(int(found[1]) - planned) <= 1, (lines[0], planned)
    net = stylecraft.FeatureNetwork().build(["relu5_1"], torch.device("cpu"))
    whole = timing.expected_seconds(net, [((512, 384), 10)], lambda size: None, contextlib.nullcontext)
    tiled = timing.expected_seconds(net, [((512, 384), 10)], lambda size: Tiling(128, 64, 16),
                                    contextlib.nullcontext)
    assert tiled > whole > 0  # the tiles' halos are work too


def test_coarse_to_fine_runs_every_scale_and_recomputes_targets(content, stripes):
    sizes = []
    result = stylecraft.run("transfer", content, stripes, size=96, min_size=48, iterations=6, seed=0,
                            callbacks=[lambda e: sizes.append((e.scale, e.size))])
    assert [s for _, s in sizes] == [(48, 36)] * 3 + [(68, 51)] * 2 + [(96, 72)]
    assert [row["scale"] for row in result.history] == [1, 1, 1, 2, 2, 3]
    assert result.image.shape[-2:] == (72, 96)
    # The style term restarts from a fresh target at each scale rather than carrying the last scale's value.
    assert result.history[3]["style"] != result.history[2]["style"]


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_coarse_to_fine_lowers_the_loss_per_scale(content, stripes, optimizer):
    result = stylecraft.run("transfer", content, stripes, size=96, min_size=48, scale_iterations=(20, 10),
                            scales=2, seed=0, optimizer=optimizer)
    first = [row["total"] for row in result.history if row["scale"] == 1]
    assert first[-1] < first[0] * 0.75
    assert result.image.shape[-2:] == (72, 96)


def test_missing_inputs_are_refused_in_one_line(content, stripes, no_work):
    for mode, content_, styles in (("transfer", None, stripes), ("reconstruct", None, None),
                                   ("transfer", content, None), ("texture", None, [])):
        with pytest.raises(ConfigError, match="needs"):
            stylecraft.run(mode, content_, styles, size=32, seed=0)


def test_a_checkpoint_names_what_keeps_it_from_going_on_along_a_plan():
    from stylecraft.optimize import Checkpoint

    plan = [((32, 24), 4), ((48, 36), 2)]
    good = Checkpoint(2, 5, torch.rand(1, 3, 36, 48), {"state": {0: {"d": torch.zeros(3)}}}, [], plan)
    assert good.problem(plan) is None
    cases = {"another plan": dataclasses.replace(good, plan=[((32, 24), 6)]),
             "scale 3 is not one of": dataclasses.replace(good, scale=3),
             "outside its scale's 4 to 6": dataclasses.replace(good, done=10**12),
             "not a 48 x 36 picture": dataclasses.replace(good, pixels=torch.rand(1, 3, 36, 44)),
             "not all finite": dataclasses.replace(good, pixels=torch.full((1, 3, 36, 48), math.nan)),
             "optimiser state": dataclasses.replace(good, state={"state": {0: {"d": torch.full((3,), math.inf)}}})}
    for words, checkpoint in cases.items():
        assert words in (checkpoint.problem(plan) or ""), words
