"""Any painting in one pass: the statistics' sums, whitening and colouring, the built-in decoders (real weights)
rebuilding photos, strength, blends, masks, exact tiles, the command line, video and batch with a painting,
training decoders, and every bad painting."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import skimage.data
import torch
from conftest import make_content, make_style
from PIL import Image

from stylecraft import ConfigError, api, images, universal
from stylecraft.cli import main
from stylecraft.runtime import Runtime
from stylecraft.universal.transforms import Stats, apply_map, wct

CPU = Runtime(torch.device("cpu"), "fp32")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / max(float(torch.mean((a - b) ** 2)), 1e-12))


def photo(side: int = 64) -> torch.Tensor:
    """A real photo (scikit-image's bundled astronaut, public domain) at ``side`` px."""
    return images.resize(images.to_tensor(Image.fromarray(skimage.data.astronaut())), (side, side))


@pytest.fixture(scope="module")
def painter() -> universal.Painter:
    return universal.load_painter(runtime=CPU)


@pytest.fixture(scope="module")
def stripes(painter) -> universal.Painting:
    return painter.painting(images.to_tensor(make_style(96, 96)), universal.PaintConfig().levels)


# ---- statistics and transforms on tensors --------------------------------------------------------------------


def test_stats_added_part_by_part_equal_the_whole() -> None:
    torch.manual_seed(0)
    features = torch.randn(1, 6, 10, 14) * 5 + 100  # a large mean: the float32 sums must not cancel
    whole = Stats.of(features)
    parts = Stats.of(features[..., :3, :]) + Stats.of(features[..., 3:7, :]) + Stats.of(features[..., 7:, :])
    assert torch.allclose(parts.mean, whole.mean, atol=1e-9)
    assert torch.allclose(parts.covariance, whole.covariance, rtol=1e-5, atol=1e-4)
    assert torch.allclose(whole.covariance, torch.cov(features[0].reshape(6, -1).double(), correction=0), atol=1e-4)


def test_weighted_stats_are_the_region_s() -> None:
    torch.manual_seed(1)
    features = torch.randn(1, 4, 8, 8)
    weight = torch.zeros(8, 8)
    weight[:, :3] = 1
    region = Stats.of(features, weight)
    alone = Stats.of(features[..., :, :3])
    assert region.count == 24 and torch.allclose(region.covariance, alone.covariance, atol=1e-6)


def test_wct_gives_the_painting_s_mean_and_covariance() -> None:
    torch.manual_seed(2)
    content = torch.randn(1, 8, 16, 16) * 3 + 1
    style = (torch.randn(8, 8) @ torch.randn(8, 256)).reshape(1, 8, 16, 16) + 4
    matrix, bias = wct(Stats.of(content), Stats.of(style))
    mapped = Stats.of(apply_map(content, matrix, bias))
    target = Stats.of(style)
    assert torch.allclose(mapped.mean, target.mean, atol=1e-4)
    assert torch.allclose(mapped.covariance, target.covariance, rtol=1e-3, atol=1e-3)


def test_a_covariance_of_low_rank_gives_finite_features() -> None:
    """Directions that hold no variance are dropped, not divided by zero (the cause of black pictures)."""
    content = torch.randn(1, 8, 12, 12)
    content[:, 4:] = 3.0  # half the channels constant
    style = torch.randn(1, 8, 12, 12)
    matrix, bias = wct(Stats.of(content), Stats.of(style))
    assert torch.isfinite(apply_map(content, matrix, bias)).all()
    assert Stats.of(content).rank() == 4


# ---- the built-in decoders, real weights ---------------------------------------------------------------------


def test_the_built_in_decoders_are_small_and_carry_a_card() -> None:
    decoders, card = universal.load_decoders()
    assert universal.builtin_file().stat().st_size <= 15 * 2**20
    assert decoders.levels == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    assert {"steps", "command", "cpu", "held_out"} <= set(card)
    assert card["steps"] > 0 and all(row["psnr"] > 10 for row in card["held_out"]["levels"].values())


# The built-in decoders at 64 px (3,700 steps): 27.8, 24.1, 20.1 and 14.8 dB; an untrained one gives under 10.
@pytest.mark.parametrize(("level", "bound"), [("relu1_1", 25.0), ("relu2_1", 22.0), ("relu3_1", 18.0),
                                              ("relu4_1", 13.0)])
def test_each_decoder_gives_back_a_64_px_photo(painter, level, bound) -> None:
    picture = photo()
    with torch.no_grad():
        rebuilt = painter.decoders[level](painter.encoder(picture, [level])[level]).clamp(0, 1)
    assert psnr(rebuilt, picture) > bound


def test_strength_0_is_the_cascade_of_reconstructions(painter, stripes) -> None:
    picture = photo()
    config = universal.PaintConfig(strength=0.0)
    painted = painter.paint(picture, [stripes], [1.0], config)
    expected = picture
    with torch.no_grad():
        for level in config.levels:
            expected = painter.decoders[level](painter.encoder(expected, [level])[level])
    assert torch.allclose(painted, expected.clamp(0, 1), atol=1e-4)
    assert psnr(painted, picture) > 13  # and close to the photo (14.6 dB at 64 px)


def test_the_default_strength_moves_relu4_1_four_fifths_of_the_way(painter, stripes) -> None:
    """relu4_1's share of the strength (0.8) kept more of the photo at no cost in style on the 30 pairs."""
    picture = photo()
    config = universal.PaintConfig()
    painted = painter.paint(picture, [stripes], [1.0], config)
    assert torch.equal(painted, painter.paint(picture, [stripes], [1.0], config.replace(strengths=(0.8, 1.0, 1.0))))
    whole_way = painter.paint(picture, [stripes], [1.0], config.replace(strengths=(1.0, 1.0, 1.0)))
    assert float((painted - whole_way).abs().mean()) > 0.005
    assert config.replace(strength=0.5).level_strengths() == [0.4, 0.5, 0.5]


def test_the_photo_as_its_own_painting_comes_back_close_to_itself(painter) -> None:
    """At one level its own statistics map its features to themselves: the reconstruction. Through the cascade
    each level puts back the photo's statistics, so the picture stays close to the photo."""
    picture = photo()
    config = universal.PaintConfig()
    own = painter.painting(picture, config.levels)
    one = config.replace(levels=("relu4_1",), palette=False)
    rebuilt = painter.paint(picture, [own], [1.0], one.replace(strength=0.0))
    assert psnr(painter.paint(picture, [own], [1.0], one), rebuilt) > 35
    assert psnr(painter.paint(picture, [own], [1.0], config), picture) > 12.5  # 14.0 dB at 64 px


def test_a_painting_moves_the_colours_toward_it(painter, stripes) -> None:
    picture = images.to_tensor(make_content(64, 64))
    painted = painter.paint(picture, [stripes], [1.0], universal.PaintConfig())
    style = images.to_tensor(make_style(96, 96))

    def saturation(x: torch.Tensor) -> float:
        return float((x.amax(1) - x.amin(1)).mean())

    assert saturation(painted) > saturation(picture) + 0.1  # the stripes' saturated colours, not the soft sky
    assert abs(saturation(painted) - saturation(style)) < abs(saturation(picture) - saturation(style))


def test_a_blend_with_a_zero_weight_is_the_one_painting(painter, stripes) -> None:
    other = painter.painting(photo(80), universal.PaintConfig().levels)
    picture = images.to_tensor(make_content(64, 48))
    config = universal.PaintConfig()
    alone = painter.paint(picture, [stripes], [1.0], config)
    assert torch.allclose(painter.paint(picture, [stripes, other], [1.0, 0.0], config), alone, atol=1e-5)
    half = painter.paint(picture, [stripes, other], [0.5, 0.5], config)
    assert float((half - alone).abs().mean()) > 0.02


def test_masks_paint_each_painting_in_its_region(painter, stripes) -> None:
    other = painter.painting(photo(80), universal.PaintConfig().levels)
    picture = images.to_tensor(make_content(64, 48))
    config = universal.PaintConfig()
    whole = torch.ones(1, 1, 48, 64)
    unmatched = config.replace(palette=False)  # the palette's steep maps would magnify float noise in the comparison
    assert torch.allclose(painter.paint(picture, [stripes], [1.0], unmatched, masks=whole),
                          painter.paint(picture, [stripes], [1.0], unmatched), atol=1e-3)
    alone = painter.paint(picture, [stripes], [1.0], config)
    left = torch.zeros(1, 1, 48, 64)
    left[..., :32] = 1
    split = painter.paint(picture, [stripes, other], [0.5, 0.5], config, masks=torch.cat([left, 1 - left]))
    with_other = painter.paint(picture, [other], [1.0], config)
    assert float((split[..., :20] - alone[..., :20]).abs().mean()) < float(
        (split[..., :20] - with_other[..., :20]).abs().mean())
    assert float((split[..., 44:] - with_other[..., 44:]).abs().mean()) < float(
        (split[..., 44:] - alone[..., 44:]).abs().mean())


def test_exact_tiles_equal_the_whole_picture(painter, stripes) -> None:
    picture = photo(272)[..., :, :208]  # 208 x 272: tiles of 128 px, a ragged last row and column
    config = universal.PaintConfig()
    whole = painter.paint(picture, [stripes], [1.0], config)
    tiled = painter.paint(picture, [stripes], [1.0], config.replace(tile=128))
    assert tiled.shape == whole.shape == picture.shape
    assert float((tiled - whole).abs().max()) < 1 / 255  # within one level of an 8-bit picture: no seam


def test_preserve_color_keeps_the_photo_s_colours(painter, stripes) -> None:
    from stylecraft.colour import rgb_to_yuv

    picture = images.to_tensor(make_content(64, 48))
    kept = painter.paint(picture, [stripes], [1.0], universal.PaintConfig(preserve_color=True))
    assert float((rgb_to_yuv(kept)[:, 1:] - rgb_to_yuv(picture)[:, 1:]).abs().mean()) < 0.02


# ---- the command line, video and batch with a painting --------------------------------------------------------


@pytest.fixture
def painting(tmp_path):
    path = tmp_path / "painting.png"
    make_style(96, 96).save(path)
    return path


def test_apply_paints_with_a_painting_file(tmp_path, content_path, painting, capsys) -> None:
    out = tmp_path / "out.png"
    assert main(["apply", str(painting), str(content_path), "-o", str(out), "--quiet"]) == 0, capsys.readouterr()
    result = images.to_tensor(images.load_image(out))
    source = images.to_tensor(images.load_image(content_path))
    assert result.shape == source.shape and float((result - source).abs().mean()) > 0.05
    meta = images.read_metadata(out)
    assert meta is not None and str(painting) in str(meta.get("style"))


def test_apply_with_a_painting_takes_its_options(tmp_path, content_path, painting, style_path, capsys) -> None:
    mask = tmp_path / "mask.png"
    Image.new("L", (64, 48), 255).save(mask)
    out = tmp_path / "out.png"
    code = main(["apply", f"{painting}:0.7,{style_path}:0.3", str(content_path), "-o", str(out), "--strength",
                 "0.6", "--style-size", "128", "--preserve-color", "--transform", "adain", "--levels",
                 "relu4_1,relu1_1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    out2 = tmp_path / "masked.png"
    assert main(["apply", str(painting), str(content_path), "-o", str(out2), "--mask", str(mask), "--quiet"]) == 0
    assert images.load_image(out2).size == (64, 48)


def test_the_same_painting_is_read_once_for_many_photos(tmp_path, painting, monkeypatch) -> None:
    loaded = api.load_one_pass(str(painting), device="cpu")
    calls = []
    monkeypatch.setattr(loaded.painter, "painting", lambda *a, **k: calls.append(a))
    first = api.apply_model(loaded, make_content(64, 48))
    second = api.apply_model(loaded, make_content(48, 64))
    assert first.size == (64, 48) and second.size == (48, 64) and calls == []


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(painting, monkeypatch, native) -> None:
    monkeypatch.setattr("stylecraft.runtime.cpu_has_bf16", lambda: native)
    loaded = api.load_style_model(str(painting), device="cpu")
    assert isinstance(loaded, api.OnePass)
    assert loaded.painter.runtime.precision == ("bf16" if native else "fp32")
    assert api.load_one_pass(str(painting), device="cpu", precision="fp32").painter.runtime.precision == "fp32"


def test_batch_paints_a_folder_with_a_painting(tmp_path, painting) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    make_content(64, 48).save(folder / "a.png")
    make_content(48, 40).save(folder / "b.png")
    out = tmp_path / "out"
    assert main(["batch", str(folder), "-o", str(out), "--model", str(painting), "--quiet"]) == 0
    assert images.load_image(out / "a.png").size == (64, 48) and images.load_image(out / "b.png").size == (48, 40)


def test_video_frames_with_a_painting_match_apply(painting) -> None:
    frames = [np.asarray(make_content(64, 48))] * 3
    painted = list(api.paint_frames(str(painting), frames, stability=0, batch_size=2, device="cpu"))
    expected = np.asarray(api.apply_model(str(painting), make_content(64, 48), device="cpu"))
    assert len(painted) == 3
    assert all(np.abs(frame.astype(int) - expected.astype(int)).max() <= 1 for frame in painted)


# ---- bad paintings and options: one line, exit 2, nothing written ---------------------------------------------


def _huge_png(path) -> None:
    """A PNG whose header claims 20000 x 20000 pixels (refused from the header, before any decoding)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("make", "extra", "message"), [
    (lambda p: p.with_suffix(".png").write_text("not a picture"), [], "not an image"),
    (lambda p: Image.new("RGB", (96, 96), (120, 30, 200)).save(p.with_suffix(".png")), [], "one flat colour"),
    (lambda p: make_style(16, 16).save(p.with_suffix(".png")), [], "too small"),
    (_huge_png, [], "than the limit"),
    (lambda p: make_style().save(p.with_suffix(".png")), ["--strength", "nan"], "finite number"),
    (lambda p: make_style().save(p.with_suffix(".png")), ["--strength", "-0.5"], "from 0 to 1"),
    (lambda p: make_style().save(p.with_suffix(".png")), ["--levels", "relu9_1"], "levels"),
])
def test_a_bad_painting_or_option_is_one_line_and_nothing_written(tmp_path, content_path, capsys, make, extra,
                                                                   message) -> None:
    target = tmp_path / "painting.png"
    make(target)
    out = tmp_path / "out.png"
    code = main(["apply", str(target), str(content_path), "-o", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize("convert", [
    lambda im: im.convert("CMYK"),
    lambda im: im.convert("RGBA"),
    lambda im: Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257),
])
def test_16_bit_cmyk_and_alpha_paintings_are_converted(tmp_path, content_path, convert) -> None:
    source = convert(make_style(96, 96))
    path = tmp_path / ("painting.tif" if source.mode == "CMYK" else "painting.png")
    source.save(path)
    out = tmp_path / "out.png"
    assert main(["apply", str(path), str(content_path), "-o", str(out), "--quiet"]) == 0
    assert out.exists()


def test_painting_options_with_a_network_are_refused(tmp_path, content_path, capsys) -> None:
    code = main(["apply", "great-wave", str(content_path), "-o", str(tmp_path / "o.png"), "--strength", "0.5"])
    assert code == 2 and "--strength goes with a painting" in capsys.readouterr().err


# ---- training decoders -------------------------------------------------------------------------------------


def test_train_decoders_writes_a_file_and_resumes(tmp_path, capsys) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(3):
        make_content(80, 64).rotate(index * 90, expand=True).save(folder / f"p{index}.png")
    out = tmp_path / "decoders.pt"
    common = ["train-decoders", str(folder), "-o", str(out), "--size", "32", "--batch-size", "2", "--width",
              "0.125", "--levels", "relu1_1,relu2_1", "--workers", "0", "--precision", "fp32", "--quiet"]
    assert main([*common, "--steps", "2"]) == 0, capsys.readouterr().err
    decoders, card = universal.load_decoders(out)
    assert decoders.levels == ["relu1_1", "relu2_1"] and card["steps"] == 2
    assert main([*common, "--steps", "3", "--resume", str(out) + ".ckpt"]) == 0
    assert universal.load_decoders(out)[1]["steps"] == 3
    painted = api.apply_model(api.load_one_pass(make_style(), decoders=out, device="cpu",
                                                config=universal.PaintConfig(levels=("relu2_1", "relu1_1"))),
                              make_content(64, 48))
    assert painted.size == (64, 48)


@pytest.mark.parametrize(("extra", "message"), [
    (["--batch-size", "4"], "a step takes 4 photos and the folders hold 3"),
    (["--steps", "99999999999999999999"], "--steps must be 1 to 1e+07"),
])
def test_train_decoders_refuses_a_batch_beyond_the_photos_or_endless_steps(tmp_path, capsys, extra, message) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(3):
        make_content(48, 48).rotate(index * 90).save(folder / f"p{index}.png")
    out = tmp_path / "decoders.pt"
    code = main(["train-decoders", str(folder), "-o", str(out), "--size", "32", "--levels", "relu1_1", "--workers",
                 "0", "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_stop_signal_ends_training_with_the_decoders_so_far(tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    make_content(64, 64).save(folder / "p.png")
    stop = threading.Event()
    stop.set()
    result = api.train_decoders(folder, tmp_path / "d.pt", size=32, batch_size=1, width=0.125, workers=0,
                                levels=("relu1_1",), steps=50, precision="fp32", stop=stop)
    assert result.stopped == "cancelled" and result.steps == 1
    assert universal.load_decoders(tmp_path / "d.pt")[1]["steps"] == 1


def test_the_optimiser_can_start_from_the_one_pass_picture(tmp_path, content_path, style_path) -> None:
    out = tmp_path / "out.png"
    assert main(["transfer", str(content_path), str(style_path), "-o", str(out), "--init", "one-pass", "--size",
                 "48", "--iterations", "2", "--seed", "1", "--quiet"]) == 0
    assert images.read_metadata(out)["init"] == "one-pass"
    start = api.apply_model(api.load_one_pass(style_path, device="cpu"), make_content())
    noise = api.run("transfer", content_path, [style_path], size=48, iterations=1, init="noise", seed=1).image
    first = api.run("transfer", content_path, [style_path], size=48, iterations=1, init="one-pass", seed=1).image
    start_tensor = images.resize(images.to_tensor(start), (48, 36))
    assert float((first - start_tensor).abs().mean()) < float((noise - start_tensor).abs().mean())


def test_a_blend_spec_names_paintings_and_weights() -> None:
    from stylecraft.api.one_pass import is_painting, parse_paintings

    assert parse_paintings("a.jpg:3,b.png") == (["a.jpg", "b.png"], [0.75, 0.25])
    assert parse_paintings("a.jpg:1e308,b.jpg:1e308")[1] == [0.5, 0.5]  # no overflow
    assert is_painting("a.jpg:0.7,b.png:0.3") and is_painting("photo.JPG")
    assert not is_painting("great-wave") and not is_painting("model.pt") and not is_painting("a.jpg,model.pt")
    for bad, message in [("a.jpg:-1", ">= 0"), ("a.jpg:x", ">= 0"), ("a.jpg:0", "greater than 0")]:
        with pytest.raises(ConfigError, match=message):
            parse_paintings(bad)


def test_sigterm_to_the_process_group_keeps_the_decoders_so_far(tmp_path) -> None:
    """`timeout` and service managers signal the whole group: the data-loading workers must leave it to the run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(4):
        make_content(64, 64).rotate(90 * index).save(folder / f"p{index}.png")
    out = tmp_path / "d.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "stylecraft", "train-decoders", str(folder), "-o", str(out), "--size", "32",
         "--batch-size", "1", "--width", "0.125", "--levels", "relu1_1", "--workers", "1", "--steps", "100000",
         "--checkpoint-every", "1", "--precision", "fp32", "--quiet"],
        start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "d.pt.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "saved the decoders so far" in err and universal.load_decoders(out)[1]["steps"] >= 1
