"""Real-time networks: shapes, training with the real VGG weights, resume, the model file, applying, the CLI."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from conftest import make_content, make_style
from PIL import Image

from stylecraft import WeightsError, api, colour, feedforward, images
from stylecraft.cli import main
from stylecraft.errors import ConfigError, ImageError
from stylecraft.feedforward import TrainConfig, TransformerNet
from stylecraft.feedforward.apply import stylise
from stylecraft.feedforward.inference import InferenceNet

TINY = {"size": 64, "batch_size": 2, "network_width": "compact", "device": "cpu"}


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
    assert out.shape == (2, 3, 36, 52) and not torch.allclose(out[0], out[1])  # it answers to its input
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules())


def test_training_lowers_the_loss_and_skips_broken_photos(trained):
    _, result = trained
    totals = [row["total"] for row in result.history]
    assert result.steps == 12 and len(totals) == 12
    assert sum(totals[-3:]) / 3 < sum(totals[:3]) / 3
    assert result.skipped >= 1


def test_the_colour_term_trains_towards_the_paintings_palette(trained, photos, tmp_path):
    _, plain = trained
    assert "colour" not in plain.history[0]  # the paper's loss by default
    out = tmp_path / "colour.pt"
    result = api.train_network(photos.parent / "style.png", photos, out, steps=12, lr=5e-3, color_weight=10.0,
                               **TINY)
    colour = [row["colour"] for row in result.history]
    assert sum(colour[-3:]) / 3 < 0.8 * sum(colour[:3]) / 3
    assert feedforward.load_model(out).metadata["training"]["color_weight"] == 10.0


def test_saturation_penalty_only_beyond_the_tanh_range(trained):
    from stylecraft.feedforward.net import SATURATION, saturation_penalty

    inside = torch.tensor([-SATURATION, 0.0, SATURATION])
    assert saturation_penalty(inside) == 0
    assert saturation_penalty(torch.tensor([SATURATION + 2.0, 0.0])) == pytest.approx(2.0)  # (2^2 + 0) / 2
    net = TransformerNet(feedforward.WIDTHS["compact"])
    image = torch.rand(1, 3, 32, 32)
    output, logits = net(image, with_logits=True)
    assert torch.equal(output, net(image)) and torch.allclose(output, (torch.tanh(logits) + 1) / 2)
    # Training records the term and adds it to the total.
    history = trained[1].history
    assert all("saturation" in row for row in history)
    assert all(row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"] + row["saturation"],
                                              rel=1e-5) for row in history)
    with pytest.raises(ConfigError, match="`saturation_weight`"):
        TrainConfig(saturation_weight=-1).validate()


def test_spike_penalty_counts_local_spikes_and_training_shrinks_them(trained, photos, tmp_path):
    from stylecraft.feedforward.net import SPIKE, spike_penalty

    ramp = torch.linspace(-1, 1, 64 * 64).reshape(1, 1, 64, 64)  # within +-1.8 standard deviations
    assert spike_penalty(ramp) == 0
    spiked = ramp.clone()
    spiked[0, 0, 10, 10] = 1000.0  # one position, about 64 standard deviations out
    assert spike_penalty(spiked) > (60 - SPIKE) ** 2 / ramp.numel()
    assert "spikes" not in trained[1].history[0]  # the paper's loss by default
    out = tmp_path / "spikes.pt"
    result = api.train_network(photos.parent / "style.png", photos, out, steps=12, lr=5e-3, spike_weight=1000.0,
                               **TINY)
    spikes = [row["spikes"] for row in result.history]
    assert sum(spikes[-3:]) / 3 < 0.5 * sum(spikes[:3]) / 3
    assert all(row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"] + row["saturation"]
                                             + row["spikes"], rel=1e-5) for row in result.history)
    assert feedforward.load_model(out).metadata["training"]["spike_weight"] == 1000.0
    with pytest.raises(ConfigError, match="`spike_weight`"):
        TrainConfig(spike_weight=-1).validate()


def test_loss_margin_leaves_the_crop_edges_out_of_the_loss(photos, tmp_path):
    first = {}
    for margin in (0, 8):
        result = api.train_network(photos.parent / "style.png", photos, tmp_path / f"m{margin}.pt", steps=1,
                                   loss_margin=margin, **TINY)
        first[margin] = result.history[0]  # the same weights and the same first batch: only the margin differs
        assert feedforward.load_model(tmp_path / f"m{margin}.pt").metadata["training"]["loss_margin"] == margin
    assert first[8]["content"] != pytest.approx(first[0]["content"], rel=1e-3)
    assert first[8]["tv"] == pytest.approx(first[0]["tv"], rel=1e-5)  # smoothness still covers the edges
    assert first[8]["total"] == pytest.approx(first[8]["content"] + first[8]["style"] + first[8]["tv"]
                                              + first[8]["saturation"], rel=1e-5)
    for bad in (-1, 17):
        with pytest.raises(ConfigError, match="`loss_margin`"):
            TrainConfig(size=64, loss_margin=bad).validate()


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


def test_a_stop_signal_ends_training_with_the_network_so_far_saved(photos, tmp_path):
    stop, events = threading.Event(), []

    def watch(event: feedforward.TrainProgress) -> None:
        events.append((event.step, event.total, sorted(event.notes())))
        if event.step == 3:
            stop.set()

    out = tmp_path / "stopped.pt"
    result = api.train_network(photos.parent / "style.png", photos, out, steps=50, callbacks=[watch], stop=stop,
                               **TINY)
    assert result.stopped == "cancelled" and result.steps == 3 and len(result.history) == 3
    assert events[-1] == (3, 50, ["skipped"])
    assert feedforward.load_model(out).metadata["stopped"] == "cancelled"
    assert torch.load(out.with_name(out.name + ".ckpt"), weights_only=True)["step"] == 3


def test_apply_any_size_and_tiles_agree_with_whole(trained):
    model = feedforward.load_model(trained[0])
    image = images.to_tensor(make_content(150, 97))
    whole = stylise(model.net, image, tile=1024)
    assert whole.shape == image.shape
    for tile in (96, 48):  # 2 x 2 and 4 x 3 tiles, the whole picture's normalisation statistics in each
        tiled = stylise(model.net, image, tile=tile)
        assert tiled.shape == image.shape
        assert (tiled - whole).abs().max() < 1 / 255
    assert (whole - image).abs().mean() > 0.05  # the network does change the picture
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in model.net.modules())  # put back afterwards


def test_tile_is_the_largest_side_run_whole_and_the_side_of_the_tiles(monkeypatch):
    # The same rule as the optimiser's `tile` (tests/test_tiling.py: a forced tile tiles every larger scale).
    applying = sys.modules["stylecraft.feedforward.apply"]  # the module: `feedforward.apply` is its function
    tiles: list[int] = []
    monkeypatch.setattr(applying, "stylise_exactly", lambda stages, image, tile: tiles.append(tile) or image)
    net = TransformerNet(feedforward.WIDTHS["compact"])
    stylise(net, torch.rand(1, 3, 40, 64), tile=64)
    assert tiles == []
    stylise(net, torch.rand(1, 3, 40, 68), tile=64)
    assert tiles == [64]


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
    with pytest.raises(ConfigError, match="`network_width`"):
        TrainConfig(network_width="huge").validate()
    with pytest.raises(ConfigError, match="`size`"):
        TrainConfig(size=30).validate()


def test_a_batch_beyond_the_photos_is_refused_not_called_unreadable(capsys, tmp_path, photos):
    """Before: --batch-size over the photos' number gave no batch, reported as "none of the photos could be read"."""
    model = tmp_path / "m.pt"
    code = main(["train", "--style", str(photos.parent / "style.png"), "--data", str(photos), "-o", str(model),
                 "--size", "64", "--batch-size", "64", "--steps", "2", "--width", "compact", "--quiet",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "a step takes 64 photos and the folders hold" in err and err.count("\n") == 1, err
    assert not model.exists()


def test_cli_train_and_apply(capsys, tmp_path, photos):
    model = tmp_path / "m.pt"
    code = main(["train", "--style", str(photos.parent / "style.png"), "--data", str(photos), "-o", str(model),
                 "--size", "64", "--batch-size", "2", "--steps", "2", "--width", "compact", "--sample-every", "1",
                 "--quiet", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "m_samples").iterdir()) == ["step_000001.png", "step_000002.png"]
    # --resume goes on into the samples' folder the first run made (it was refused as "a folder").
    code = main(["train", "--style", str(photos.parent / "style.png"), "--data", str(photos), "-o", str(model),
                 "--size", "64", "--batch-size", "2", "--steps", "3", "--width", "compact", "--sample-every", "1",
                 "--quiet", "--device", "cpu", "--resume", str(model) + ".ckpt"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "m_samples" / "step_000003.png").is_file()
    code = main(["apply", str(model), str(photos), "-o", str(tmp_path / "out"), "--quiet", "--size", "48"])
    # The folder holds one unreadable file: it is skipped and reported, the six photos are stylised.
    assert code == 1 and "1 unreadable" in capsys.readouterr().err
    outputs = sorted((tmp_path / "out").iterdir())
    assert len(outputs) == 6 and max(Image.open(outputs[0]).size) == 48
    kept = tmp_path / "kept.png"
    assert main(["apply", str(model), str(photos / "p0.jpg"), "-o", str(kept), "--size", "48", "--quiet",
                 "--preserve-color"]) == 0
    photo = images.resize_long_side(images.to_tensor(images.load_image(photos / "p0.jpg")), 48)
    painted, colour_kept = (colour.rgb_to_yuv(images.to_tensor(images.load_image(p)))[:, 1:]
                            for p in (outputs[0], kept))
    photo_colour = colour.rgb_to_yuv(photo)[:, 1:]
    assert (colour_kept - photo_colour).abs().mean() < 0.5 * (painted - photo_colour).abs().mean()
    # A picture where a network is expected is a painting, taken in one pass (tests/test_universal.py).
    code = main(["apply", str(photos.parent / "style.png"), str(photos / "p0.jpg"), "-o", str(tmp_path / "x.png")])
    assert code == 0 and (tmp_path / "x.png").exists(), capsys.readouterr().err


def test_apply_many_batches_same_sizes_and_reports_bad_files(trained, tmp_path):
    model = feedforward.load_model(trained[0])
    for name, (w, h) in {"a": (64, 48), "b": (64, 48), "c": (40, 52)}.items():
        make_content(w, h).save(tmp_path / f"{name}.png")
    (tmp_path / "bad.png").write_text("no")
    sources = [tmp_path / n for n in ("a.png", "bad.png", "c.png", "b.png")]
    calls: list[int] = []
    model.net.register_forward_hook(lambda _m, args, _o: calls.append(args[0].shape[0]))
    results = list(api.apply_many(model, sources, batch_size=4))
    assert [s for s, _ in results] == sources
    assert isinstance(results[1][1], ImageError)
    assert sorted(calls) == [1, 2]  # a and b share one batch of 2; c runs alone
    alone = api.apply_model(model, sources[0])
    assert results[0][1].size == (64, 48) and results[2][1].size == (40, 52)
    # Instance norm works per picture, so batching does not change a result.
    assert (images.to_tensor(alone) - images.to_tensor(results[0][1])).abs().max() <= 1.01 / 255


@pytest.mark.parametrize("width", [feedforward.WIDTHS["full"], 5])
def test_inference_form_computes_the_same_pictures(width):
    torch.manual_seed(width)
    net = TransformerNet(width).eval()
    with torch.no_grad():
        for parameter in net.parameters():  # beyond the initial weights, so every tap of every kernel matters
            parameter.normal_(0, 0.1)
    fast = InferenceNet(net).eval()
    for height, side in ((64, 48), (100, 36), (12, 20)):
        image = torch.rand(2, 3, height, side)
        with torch.no_grad():
            assert (fast(image) - net(image)).abs().max() < 1e-5
    assert not any(isinstance(layer, torch.nn.Upsample) for layer in fast.modules())


def _needs(*packages: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not all(map(importlib.util.find_spec, packages)),
                              reason=f"{' and '.join(packages)} not installed")


onnx_needed = _needs("onnx", "onnxruntime")
#: The runtimes that run an export, each skipped where its package is missing.
RUNTIMES = [pytest.param("onnx", marks=onnx_needed), pytest.param("openvino", marks=_needs("onnx", "openvino"))]


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "style.onnx"
    assert main(["export", str(trained[0]), "-o", str(path), "--quiet"]) == 0
    return path


@pytest.mark.parametrize("backend", RUNTIMES)
def test_onnx_export_agrees_with_torch_at_any_size(trained, exported, backend):
    model = feedforward.load_model(trained[0])
    onnx_model = api.load_style_model(exported, backend=backend)
    assert isinstance(onnx_model.net, feedforward.RuntimeNet)
    assert onnx_model.metadata["steps"] == model.metadata["steps"] == 12
    for width, height in ((64, 48), (150, 97), (33, 70)):  # dynamic height and width, odd sizes padded
        image = images.to_tensor(make_content(width, height))
        expected = stylise(model.net, image)
        got = stylise(onnx_model.net, image)
        assert got.shape == expected.shape == image.shape
        assert (got - expected).abs().max() < 1e-4
    batch = torch.cat([images.to_tensor(make_content(64, 48)), images.to_tensor(make_content(64, 48).rotate(90))])
    assert (onnx_model.net(batch) - model.net(batch)).abs().max() < 1e-4
    import onnx

    operators = {node.op_type for node in onnx.load(exported).graph.node}
    assert "DepthToSpace" in operators and "Resize" not in operators  # the export is the inference form


@pytest.mark.parametrize("backend", RUNTIMES)
def test_runtime_tiles_equal_the_whole_picture(trained, exported, backend):
    """An export run by a runtime tiles exactly too: its graph is rewritten to take the whole picture's
    normalisation statistics, so tiles match the untiled picture instead of each normalising itself."""
    model = api.load_style_model(exported, backend=backend)
    image = images.to_tensor(make_content(150, 97))
    whole = stylise(model.net, image, tile=1024)
    for tile in (96, 48):
        tiled = stylise(model.net, image, tile=tile)
        assert (tiled - whole).abs().max() < 1e-4
    own = stylise(model.net, image[..., :104, :96], tile=1024)[..., :48, :48]  # a tile and halo normalised alone
    assert (own - whole[..., :48, :48]).abs().max() > 10 / 255


@_needs("onnx", "openvino")
@pytest.mark.parametrize(("precision", "bound"), [("fp32", 1e-4), ("bf16", 0.05), ("fp16", 0.05)])
def test_openvino_runs_the_precision_asked_for_on_any_cpu(trained, exported, precision, bound):
    """fp32 unless asked (OpenVINO would pick bf16 by itself on CPUs with AVX-512 BF16 or AMX); a reduced
    precision where the CPU has it, which stays close; fp32 where it has not."""
    model = feedforward.load_model(trained[0])
    image = images.to_tensor(make_content(96, 64))
    expected = stylise(model.net, image)
    got = stylise(api.load_style_model(exported, backend="openvino", precision=precision).net, image)
    assert (got - expected).abs().max() < bound


@onnx_needed
def test_only_a_torch_model_can_be_exported(exported):
    with pytest.raises(ConfigError, match="torch backend"):
        feedforward.to_onnx(api.load_style_model(exported, backend="onnx"))


@onnx_needed
def test_reduced_precision_is_refused_where_it_is_not_offered(trained, exported):
    for backend, source in (("torch", trained[0]), ("onnx", exported)):
        with pytest.raises(ConfigError, match="`backend` openvino"):
            api.load_style_model(source, backend=backend, precision="bf16")
    with pytest.raises(ConfigError, match="not one of"):
        api.load_style_model(exported, backend="openvino", precision="int8")


@pytest.mark.parametrize("backend", RUNTIMES)
def test_cli_apply_onnx_backend(trained, exported, tmp_path, capsys, backend):
    photo = tmp_path / "p.png"
    make_content(70, 50).save(photo)
    chosen = [] if backend == "onnx" else ["--backend", backend]  # ONNX Runtime is the default for .onnx
    assert main(["apply", str(exported), str(photo), "-o", str(tmp_path / "a.png"), "--quiet", *chosen]) == 0
    assert main(["apply", str(trained[0]), str(photo), "-o", str(tmp_path / "b.png"), "--backend", backend,
                 "--quiet"]) == 0
    assert main(["apply", str(trained[0]), str(photo), "-o", str(tmp_path / "c.png"), "--quiet"]) == 0
    a, b, c = (images.to_tensor(Image.open(tmp_path / f"{n}.png")) for n in "abc")
    assert (a - c).abs().max() <= 1.01 / 255 and (b - c).abs().max() <= 1.01 / 255
    assert images.read_metadata(tmp_path / "a.png")["style"].endswith("style.png")
    capsys.readouterr()


RUNTIME_ERRORS = {"garbage": "not a readable ONNX file", "foreign": "not an ONNX file exported by `stylecraft export`",
                  "device": "--device"}


@pytest.mark.parametrize("case, message, backend", [
    *[pytest.param(case, message, runtime.values[0], marks=runtime.marks)
      for case, message in RUNTIME_ERRORS.items() for runtime in RUNTIMES],
    pytest.param("torch-backend", "runs with --backend onnx", "torch", marks=onnx_needed),
    pytest.param("bad-name", "ends in .onnx", "onnx", marks=onnx_needed),
])
def test_onnx_errors(trained, exported, tmp_path, capsys, case, message, backend):
    path = tmp_path / "x.onnx"
    if case == "garbage":
        path.write_bytes(b"\x08\x07not onnx at all")
    elif case == "foreign":
        import onnx

        graph = onnx.load(exported)
        del graph.metadata_props[:]
        onnx.save(graph, path)
    elif case in ("torch-backend", "device"):
        path = exported
    photo = tmp_path / "p.png"
    make_content(40, 40).save(photo)
    if case == "bad-name":
        argv = ["export", str(trained[0]), "-o", str(tmp_path / "model.pt")]
    else:
        argv = ["apply", str(path), str(photo), "-o", str(tmp_path / "o.png")]
        argv += ["--backend", backend]
        argv += ["--device", "mps"] if case == "device" else []  # neither runtime runs on Apple's GPU
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "model.pt").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ddp_worker(rank: int, port: int, photos: Path, out: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = api.train_network(photos.parent / "style.png", photos, out / "ddp.pt", steps=3, **TINY)
    torch.save(result.net.state_dict(), out / f"rank{rank}.pt")


def test_ddp_on_cpu_keeps_processes_in_step(photos, tmp_path):
    """Two gloo processes train on different shards; averaged gradients keep their weights identical."""
    torch.multiprocessing.spawn(_ddp_worker, args=(_free_port(), photos, tmp_path), nprocs=2)
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(first[k], second[k]) for k in first)
    untrained = TransformerNet(feedforward.WIDTHS["compact"]).state_dict()
    assert any(not torch.equal(first[k], untrained[k]) for k in first)
    metadata = feedforward.load_model(tmp_path / "ddp.pt").metadata
    assert metadata["processes"] == 2 and metadata["photos_seen"] + metadata["skipped_photos"] == 3 * 2 * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.pt", "ddp.pt.ckpt", "rank0.pt", "rank1.pt"]


def test_torchrun_cli(photos, tmp_path):
    """`torchrun --nproc_per_node 2 -m stylecraft train` trains, and only rank 0 reports and writes."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(_free_port()), "-m", "stylecraft", "train",
               "--style", str(photos.parent / "style.png"), "--data", str(photos), "-o", str(tmp_path / "m.pt"),
               "--size", "64", "--batch-size", "2", "--steps", "2", "--width", "compact", "--device", "cpu",
               "--sample-every", "2"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ,
                                                                                    "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert (run.stdout + run.stderr).count("wrote") == 1
    assert feedforward.load_model(tmp_path / "m.pt").metadata["processes"] == 2
    assert [p.name for p in (tmp_path / "m_samples").iterdir()] == ["step_000002.png"]
