"""Real-time networks: shapes, training with the real VGG weights, resume, the model file, applying, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import make_content, make_style
from PIL import Image

from stylecraft import WeightsError, api, feedforward, images
from stylecraft.cli import main
from stylecraft.errors import ConfigError, ImageError
from stylecraft.feedforward import TrainConfig, TransformerNet
from stylecraft.feedforward.apply import stylise

TINY = {"size": 64, "batch_size": 2, "width": "compact", "device": "cpu"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for index in range(6):
        make_content(80 + 4 * index, 64 + 2 * index).rotate(30 * index).save(folder / f"p{index}.jpg")
    (folder / "broken.jpg").write_text("not a photo")
    make_style().save(folder.parent / "style.png")
    return folder


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory) -> tuple[Path, feedforward.TrainResult]:
    out = tmp_path_factory.mktemp("model") / "style.pt"
    result = api.train_network(photos.parent / "style.png", photos, out, steps=12, checkpoint_every=6, lr=5e-3,
                               **TINY)
    return out, result


@pytest.mark.parametrize("width, channels", [("full", 32), ("compact", 8)])
def test_network_shapes(width, channels):
    net = TransformerNet(feedforward.WIDTHS[width])
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    # 3 down convolutions, 5 residual blocks of 2, 2 upsampling convolutions, the final one.
    assert len(convs) == 3 + 10 + 2 + 1
    assert [c.kernel_size[0] for c in convs[:3]] == [9, 3, 3] and [c.stride[0] for c in convs[:3]] == [1, 2, 2]
    assert convs[0].out_channels == channels and convs[2].out_channels == 4 * channels
    out = net(torch.rand(2, 3, 36, 52))
    assert out.shape == (2, 3, 36, 52) and out.min() >= 0 and out.max() <= 1
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules())


def test_training_lowers_the_loss_and_skips_broken_photos(trained):
    _, result = trained
    totals = [row["total"] for row in result.history]
    assert result.steps == 12 and len(totals) == 12
    assert sum(totals[-3:]) / 3 < sum(totals[:3]) / 3
    assert result.skipped >= 1


def test_model_file_describes_itself(trained, photos):
    path, _ = trained
    model = feedforward.load_model(path)
    assert model.metadata["steps"] == 12 and model.metadata["width"] == 8
    assert model.metadata["style"].endswith("style.png") and len(model.metadata["style_sha256"]) == 64
    assert model.metadata["training"]["batch_size"] == 2 and model.thumbnail.size == (64, 64)


def test_resume_continues_from_the_checkpoint(trained, photos, tmp_path):
    path, _ = trained
    checkpoint = path.with_name(path.name + ".ckpt")
    assert torch.load(checkpoint, weights_only=True)["step"] == 12
    result = api.train_network(photos.parent / "style.png", photos, tmp_path / "more.pt", steps=14,
                               resume=checkpoint, **TINY)
    assert result.steps == 14 and [row["step"] for row in result.history] == [13, 14]


def test_apply_any_size_and_tiles_agree_with_whole(trained):
    model = feedforward.load_model(trained[0])
    image = images.to_tensor(make_content(150, 97))
    whole = stylise(model.net, image, tile=1024)
    assert whole.shape == image.shape
    tiled = stylise(model.net, image, tile=64, overlap=16)
    assert tiled.shape == image.shape
    # Instance norm sees each tile's own statistics, so tiles differ a little, never wildly.
    assert (tiled - whole).abs().mean() < 0.08


def test_apply_api_size_and_colour(trained):
    picture = api.apply_model(trained[0], make_content(90, 60), size=45, preserve_color=True)
    assert picture.size == (45, 30)


@pytest.mark.parametrize("content, message", [
    (b"not a model", "not a stylecraft model file"),
    ({"format": "other"}, "not a stylecraft model file"),
    ({"format": "stylecraft-transformer", "version": 99}, "version 99"),
    ({"format": "stylecraft-transformer", "version": 1, "metadata": "{}", "state_dict": {}}, "damaged"),
])
def test_bad_model_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        feedforward.load_model(path)


def test_training_errors(tmp_path, photos):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no photos"):
        api.train_network(photos.parent / "style.png", tmp_path / "empty", tmp_path / "m.pt", steps=1, **TINY)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_text("no")
    with pytest.raises(ImageError, match="could be read"):
        api.train_network(photos.parent / "style.png", broken, tmp_path / "m.pt", steps=1, **TINY)
    with pytest.raises(ConfigError, match="--width"):
        TrainConfig(width="huge").validate()
    with pytest.raises(ConfigError, match="--size"):
        TrainConfig(size=30).validate()


def test_cli_train_and_apply(capsys, tmp_path, photos):
    model = tmp_path / "m.pt"
    code = main(["train", "--style", str(photos.parent / "style.png"), "--data", str(photos), "-o", str(model),
                 "--size", "64", "--batch-size", "2", "--steps", "2", "--width", "compact", "--sample-every", "1",
                 "--quiet", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "m_samples").iterdir()) == ["step_000001.png", "step_000002.png"]
    code = main(["apply", str(model), str(photos), "-o", str(tmp_path / "out"), "--quiet", "--size", "48"])
    # The folder holds one unreadable file: it is skipped and reported, the six photos are stylised.
    assert code == 1 and "1 unreadable" in capsys.readouterr().err
    outputs = sorted((tmp_path / "out").iterdir())
    assert len(outputs) == 6 and max(Image.open(outputs[0]).size) == 48
    code = main(["apply", str(photos.parent / "style.png"), str(photos / "p0.jpg"), "-o", str(tmp_path / "x.png")])
    assert code == 2 and "not a stylecraft model file" in capsys.readouterr().err
