"""One network for several styles (conditional instance normalisation), its model file, the built-in styles
and styles asked for by name everywhere a network is taken."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_content, make_style
from PIL import Image

from stylecraft import api, feedforward, images
from stylecraft.cli import main
from stylecraft.errors import ConfigError
from stylecraft.feedforward import StyleModel, TransformerNet
from stylecraft.feedforward.net import StyleNorm
from stylecraft.feedforward.styles import (
    builtin_file,
    load_builtin,
    names,
    open_model,
    painting,
    palette_paintings,
    parse_mix,
)

TINY = {"size": 64, "batch_size": 2, "network_width": "compact", "device": "cpu"}


def spread(net: TransformerNet, seed: int = 0) -> TransformerNet:
    """Give every style its own scales and shifts (a new network's rows are all alike)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in net.modules():
            if isinstance(norm, StyleNorm):
                norm.scales.copy_(1 + 0.5 * torch.randn(norm.scales.shape, generator=generator))
                norm.shifts.copy_(0.5 * torch.randn(norm.shifts.shape, generator=generator))
    return net.eval()


def test_a_blend_is_linear_in_the_scales_and_shifts_and_weight_one_is_that_style_alone() -> None:
    net = spread(TransformerNet(width=4, residual_blocks=1, styles=3))
    photo = torch.rand(1, 3, 32, 32)
    alone = []
    for index in range(3):
        net.select([1.0 if i == index else 0.0 for i in range(3)])
        alone.append(net(photo))
    assert (alone[0] - alone[1]).abs().max() > 0.05  # the styles differ, so the checks below can fail
    for index in range(3):
        mix = [0.0] * 3
        mix[index] = 2.5  # weights are normalised: any positive weight alone is that style
        assert torch.equal(net.painting(mix)(photo), alone[index])
    blended = net.painting([0.7, 0.3, 0.0])
    for name, norm in net.named_modules():
        if isinstance(norm, StyleNorm):
            inner = blended.get_submodule(name)
            torch.testing.assert_close(inner.weight, 0.7 * norm.scales[0] + 0.3 * norm.scales[1])
            torch.testing.assert_close(inner.bias, 0.7 * norm.shifts[0] + 0.3 * norm.shifts[1])
    net.select([0.7, 0.3, 0.0])
    torch.testing.assert_close(net(photo), blended(photo))


def test_a_mix_must_have_one_weight_per_style() -> None:
    net = TransformerNet(width=4, residual_blocks=1, styles=2)
    for bad in ([1.0], [0.0, 0.0], [-1.0, 2.0], [float("nan"), 1.0]):
        with pytest.raises(ValueError):
            net.select(bad)


def test_a_network_file_of_several_styles_round_trips_in_float16(tmp_path: Path) -> None:
    net = spread(TransformerNet(width=4, residual_blocks=1, styles=2))
    records = [{"name": "stripes", "title": "Stripes"}, {"name": "dots"}]
    thumbnails = [make_style(16, 16), make_style(16, 16, seed=1)]
    data = []
    for picture in thumbnails:
        path = tmp_path / "t.png"
        picture.save(path)
        data.append(path.read_bytes())
    feedforward.save_model(net, tmp_path / "two.pt", {"styles": records}, data, half=True)
    payload = torch.load(tmp_path / "two.pt", weights_only=True)
    assert all(t.dtype == torch.float16 for t in payload["state_dict"].values() if t.is_floating_point())
    loaded = feedforward.load_model(tmp_path / "two.pt")
    assert isinstance(loaded.net, TransformerNet) and loaded.net.styles == 2 and names(loaded) == ["stripes", "dots"]
    assert len(loaded.thumbnails) == 2 and loaded.thumbnails[1].size == (16, 16)
    photo = torch.rand(1, 3, 32, 32)
    for index, name in enumerate(("stripes", "dots")):
        one = open_model(tmp_path / "two.pt", name)
        expected = net.painting([1.0 - index, float(index)])(photo)
        assert (one.net(photo) - expected).abs().max() < 2e-2  # float16 storage
        assert one.metadata["blend"] == {name: 1.0}
    with pytest.raises(ValueError, match="styles"):
        feedforward.save_model(net, tmp_path / "bad.pt", {"styles": records[:1]})


def test_an_unknown_style_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown style 'grate-wave'; did you mean great-wave\? known styles: "
                                          r"starry-night, great-wave"):
        parse_mix("grate-wave:1", ["starry-night", "great-wave"])
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        parse_mix("great-wave:-1", ["great-wave"])
    assert parse_mix("great-wave:0.7,starry-night:0.3", ["starry-night", "great-wave"]) == [0.3, 0.7]
    one = StyleModel(net=TransformerNet(width=4, residual_blocks=1), metadata={"style": "a.jpg"})
    assert painting(one) is one
    with pytest.raises(ConfigError, match="paints one style"):
        painting(one, "a")


def test_training_several_styles_and_adding_one_by_its_scales_and_shifts_alone(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(4):
        make_content(80, 64).rotate(30 * index).save(photos / f"p{index}.jpg")
    for index, name in enumerate(("a", "b", "c")):
        make_style(seed=index).rotate(40 * index).save(tmp_path / f"{name}.png")
    result = api.train_network([tmp_path / "a.png", tmp_path / "b.png"], photos, tmp_path / "two.pt", steps=4,
                               **TINY)
    assert result.net.styles == 2
    two = feedforward.load_model(tmp_path / "two.pt")
    assert names(two) == ["a", "b"] and len(two.thumbnails) == 2
    api.train_network(tmp_path / "c.png", photos, tmp_path / "three.pt", steps=3, lr=1e-2,
                      add_to=tmp_path / "two.pt", **TINY)
    three = feedforward.load_model(tmp_path / "three.pt")
    assert names(three) == ["a", "b", "c"] and three.metadata["added_to"] == str(tmp_path / "two.pt")
    before, after = two.net.state_dict(), three.net.state_dict()
    for key, value in before.items():
        if key.endswith((".scales", ".shifts")):
            assert torch.equal(after[key][:2], value)  # the trained styles are kept
            assert not torch.equal(after[key][2], value.mean(0))  # the new one moved from where it started
        else:
            assert torch.equal(after[key], value)  # the shared convolutions are frozen
    with pytest.raises(ConfigError, match="named twice"):
        api.train_network(tmp_path / "a.png", photos, tmp_path / "x.pt", steps=1, add_to=tmp_path / "three.pt",
                          **TINY)


builtin = pytest.mark.skipif(not builtin_file().is_file(), reason="the built-in styles are not packaged here")


@builtin
def test_the_packaged_styles_load_safely_and_each_has_a_card() -> None:
    payload = torch.load(builtin_file(), weights_only=True)  # no code in the file runs
    assert payload["format"] == "stylecraft-transformer"
    assert builtin_file().stat().st_size <= 8 * 2**20
    model = load_builtin()
    assert len(names(model)) == 6 and len(model.thumbnails) == 6
    for record in model.metadata["styles"]:
        assert {"name", "title", "artist", "year", "source", "steps", "batch_size", "size", "command"} <= set(record)
        assert builtin_file().with_name(f"{record['name']}.jpg").is_file()


def test_the_cards_file_is_the_network_s_cards_and_listing_them_loads_no_torch() -> None:
    assert feedforward.cards.builtin_cards() == load_builtin().metadata["styles"]
    probe = ("import io, sys, contextlib\nfrom stylecraft.cli import main\nout = io.StringIO()\n"
             "with contextlib.redirect_stdout(out):\n    code = main(['styles'])\n"
             "print(code, 'torch' in sys.modules, 'great-wave' in out.getvalue())")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "False", "True"]


@builtin
def test_the_command_line_paints_with_a_built_in_name_or_blend(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    make_content().save(tmp_path / "photo.png")
    assert main(["styles", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"great-wave", "starry-night"} <= {record["name"] for record in listed}
    assert all({"name", "title", "artist", "year"} <= set(record) for record in listed)
    assert main(["apply", "great-wave", str(tmp_path / "photo.png"), "-o", str(tmp_path / "wave.png"),
                 "--quiet"]) == 0
    assert main(["apply", "great-wave:0.5,udnie:0.5", str(tmp_path / "photo.png"), "-o",
                 str(tmp_path / "blend.png"), "--quiet"]) == 0
    assert main(["apply", "great-wav", str(tmp_path / "photo.png"), "-o", str(tmp_path / "typo.png")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "did you mean great-wave?" in error[0] and not (tmp_path / "typo.png").exists()
    assert main(["styles", "--sheet", str(tmp_path / "photo.png"), "-o", str(tmp_path / "sheet.png"), "--size",
                 "64", "--quiet"]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 0


def _photos_and_two_styles(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A folder of three little photos, and two striped styles named a and b."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        make_content(72, 64).rotate(45 * index).save(photos / f"p{index}.jpg")
    for index, name in enumerate(("a", "b")):
        make_style(seed=index).save(tmp_path / f"{name}.png")
    return photos, [tmp_path / "a.png", tmp_path / "b.png"]


def test_training_goes_on_from_a_trained_network_with_init(tmp_path: Path) -> None:
    photos, styles = _photos_and_two_styles(tmp_path)
    api.train_network(styles, photos, tmp_path / "first.pt", steps=3, **TINY)
    api.train_network(styles, photos, tmp_path / "again.pt", steps=2, lr=0.0, init=tmp_path / "first.pt", **TINY)
    first, again = feedforward.load_model(tmp_path / "first.pt"), feedforward.load_model(tmp_path / "again.pt")
    assert again.metadata["steps"] == 5 and again.metadata["initialised_from"] == str(tmp_path / "first.pt")
    for key, value in first.net.state_dict().items():
        assert torch.equal(again.net.state_dict()[key], value)  # lr 0: exactly the weights it started from
    # resumed to 4 steps of its own, the network still counts the 3 it started from
    api.train_network(styles, photos, tmp_path / "again.pt", steps=4, resume=tmp_path / "again.pt.ckpt", **TINY)
    assert feedforward.load_model(tmp_path / "again.pt").metadata["steps"] == 7
    # resumed with no steps left (a run stopped past them): the network is written again, with no error
    api.train_network(styles, photos, tmp_path / "again.pt", steps=3, resume=tmp_path / "again.pt.ckpt", **TINY)
    assert feedforward.load_model(tmp_path / "again.pt").metadata["steps"] == 7
    with pytest.raises(ConfigError, match="width 8 painting a, b; this run trains width 4"):
        api.train_network(styles, photos, tmp_path / "x.pt", steps=1, init=tmp_path / "first.pt",
                          **{**TINY, "network_width": "4"})
    with pytest.raises(ConfigError, match="painting a, b; this run trains width 8 on b, a"):
        api.train_network(styles[::-1], photos, tmp_path / "x.pt", steps=1, init=tmp_path / "first.pt", **TINY)


@builtin
def test_a_video_is_painted_with_a_built_in_style_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from test_video import describe, make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=6, audio=None)
    assert main(["video", str(clip), "--model", "starry-night", "-o", str(tmp_path / "painted.mp4"), "--quiet"]) == 0
    painted = describe(tmp_path / "painted.mp4")
    original = describe(clip)
    assert painted["frames"] == 6
    assert abs(painted["pictures"][0].astype(float) - original["pictures"][0]).mean() > 3  # it was painted


def _colour_gap(picture: Image.Image, painting: Image.Image) -> float:
    """How far a picture's colours are from a painting's, as distributions: the mean over channels of the
    distance between their quantiles (the 1-D Wasserstein distance, 0..1)."""
    levels = np.linspace(0, 1, 101)
    ours, theirs = (np.quantile(np.asarray(p.convert("RGB"), np.float64).reshape(-1, 3) / 255, levels, axis=0)
                    for p in (picture, painting))
    return float(np.abs(ours - theirs).mean())


@builtin
def test_a_built_in_style_takes_its_painting_s_palette_unless_told_not_to() -> None:
    photo = make_content(96, 72)
    model = api.load_style_model("shipwreck")
    plain = api.apply_model(model, photo, palette=False)
    network_alone = images.to_pil(feedforward.apply(model.net, images.to_tensor(photo)))
    assert np.array_equal(np.asarray(plain), np.asarray(network_alone))  # off: the network's own colours
    painted = api.apply_model(model, photo)  # on by default: the painting ships beside the network
    shipwreck = Image.open(builtin_file().with_name("shipwreck.jpg"))
    assert _colour_gap(painted, shipwreck) < 0.5 * _colour_gap(plain, shipwreck)  # measured 0.009 against 0.034
    kept = api.apply_model(model, photo, preserve_color=True)  # the photo's colours win: no palette step
    assert np.array_equal(np.asarray(kept), np.asarray(api.apply_model(model, photo, preserve_color=True,
                                                                       palette=False)))
    assert not np.array_equal(np.asarray(kept), np.asarray(plain))
    assert {path.name: share for path, share in palette_paintings(open_model("great-wave:0.7,udnie:0.3"))} == {
        "great-wave.jpg": 0.7, "udnie.jpg": 0.3}
    assert [path.name for path, _ in palette_paintings(open_model(builtin_file(), "udnie"))] == ["udnie.jpg"]
    by_file = api.apply_model(builtin_file(), photo, style="udnie")  # the file's style, as its name paints it
    assert np.array_equal(np.asarray(by_file), np.asarray(api.apply_model("udnie", photo)))
    assert not np.array_equal(np.asarray(by_file), np.asarray(api.apply_model(builtin_file(), photo)))


def test_only_a_network_that_ships_its_painting_takes_a_palette(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    feedforward.save_model(TransformerNet(width=4, residual_blocks=1), tmp_path / "own.pt", {"style": "x"})
    make_content().save(tmp_path / "photo.png")
    assert palette_paintings(open_model(tmp_path / "own.pt")) == []
    default = api.apply_model(tmp_path / "own.pt", tmp_path / "photo.png")  # no palette step, no error
    assert np.array_equal(np.asarray(default), np.asarray(api.apply_model(tmp_path / "own.pt", tmp_path /
                                                                          "photo.png", palette=False)))
    with pytest.raises(ConfigError, match="ships no painting"):
        api.apply_model(tmp_path / "own.pt", tmp_path / "photo.png", palette=True)
    assert main(["apply", str(tmp_path / "own.pt"), str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png"),
                 "--palette"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "ships no painting" in error[0] and not (tmp_path / "out.png").exists()


@builtin
def test_an_export_of_a_built_in_style_keeps_its_palette() -> None:
    pytest.importorskip("onnxruntime")
    loaded = api.load_style_model("great-wave:0.6,starry-night:0.4", backend="onnx", device="cpu")
    assert {path.name: share for path, share in palette_paintings(loaded)} == {
        "great-wave.jpg": 0.6, "starry-night.jpg": 0.4}
    torch_painted = api.apply_model("great-wave:0.6,starry-night:0.4", make_content(), device="cpu")
    onnx_painted = api.apply_model(loaded, make_content())
    assert np.abs(np.asarray(torch_painted, np.int16) - np.asarray(onnx_painted, np.int16)).mean() < 2


def test_a_compact_network_learns_to_paint_like_its_teacher(tmp_path: Path) -> None:
    photos, styles = _photos_and_two_styles(tmp_path)
    teacher = spread(TransformerNet(width=16, residual_blocks=1, styles=2))
    feedforward.save_model(teacher, tmp_path / "teacher.pt", {"styles": [{"name": "a"}, {"name": "b"}]})
    only_the_teacher = {"content_weight": 0.0, "style_weight": 0.0, "tv_weight": 0.0, "saturation_weight": 0.0,
                        "teacher_weight": 1.0, "lr": 0.02}
    result = api.train_network(styles, photos, tmp_path / "student.pt", steps=80, teacher=tmp_path / "teacher.pt",
                               **{**TINY, **only_the_teacher})
    copied = [step["teacher"] for step in result.history]
    assert statistics.mean(copied[-10:]) < 0.75 * statistics.mean(copied[:10])  # measured 0.58x: it learns
    assert feedforward.load_model(tmp_path / "student.pt").metadata["taught_by"] == str(tmp_path / "teacher.pt")
    with pytest.raises(ConfigError, match="a network painting a, b; this run trains b, a"):
        api.train_network(styles[::-1], photos, tmp_path / "x.pt", steps=1, teacher=tmp_path / "teacher.pt", **TINY)
    with pytest.raises(ConfigError, match="`teacher` goes without `add_to`"):
        api.train_network([tmp_path / "a.png"], photos, tmp_path / "x.pt", steps=1, teacher=tmp_path / "teacher.pt",
                          add_to=tmp_path / "teacher.pt", names=["c"], **TINY)
    assert not (tmp_path / "x.pt").exists()
    assert main(["train", "--style", str(styles[0]), "--data", str(photos), "-o", str(tmp_path / "x.pt"),
                 "--teacher-weight", "5"]) == 2  # a weight with nothing to weigh
    assert not (tmp_path / "x.pt").exists()
