"""Video: reading (part, rate, size, rotation), painting with a real-time network, the sound kept, stability
measured on a clip whose motion is known, Ctrl-C, and bad input. The clips are made here: a blurred random
scene panned by a few pixels a frame, with a sine tone as its sound."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from stylecraft import ConfigError, FeatureNetwork, api, feedforward
from stylecraft.cli import main
from stylecraft.feedforward import TransformerNet
from stylecraft.objective import Objective
from stylecraft.tiling import Tiling
from stylecraft.video.flow import FlowEstimator, Steadier, warping_error
from stylecraft.video.io import VideoReader

av = pytest.importorskip("av")
pytest.importorskip("cv2")

WIDTH, HEIGHT, FPS, FRAMES, STEP = 96, 64, 12, 24, 3


def make_clip(path: Path, frames: int = FRAMES, audio: str | None = "aac", rotation: int = 0,
              step: int = STEP) -> Path:
    """A scene panned ``step`` px a frame to the left (so the true motion is known), with a 440 Hz tone."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray((rng.random((HEIGHT, WIDTH + step * frames, 3)) * 255).astype(np.uint8))
    scene = np.asarray(noise.filter(ImageFilter.GaussianBlur(2)))
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=44100) if audio else None
        for index in range(frames):
            picture = np.ascontiguousarray(scene[:, index * step:index * step + WIDTH])
            if index == 0:
                picture[:8, :8] = 255  # a marker in the first frame's top left corner
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                out.mux(packet)
        if sound is not None:
            samples = 44100 * frames // FPS
            for begin in range(0, samples, 1024):
                tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(begin, begin + 1024) / 44100)
                layout = "mono"
                fmt = "fltp" if audio == "aac" else "s16"
                data = tone.astype(np.float32)[None] if fmt == "fltp" else (tone * 32767).astype(np.int16)[None]
                chunk = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
                chunk.sample_rate, chunk.pts = 44100, begin
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return path


def describe(path: Path) -> dict:
    """Frames decoded, seconds, size and the audio's codec and seconds, read back with PyAV."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        video = container.streams.video[0]
        found = {"frames": len(frames), "size": (video.codec_context.width, video.codec_context.height),
                 "rate": video.average_rate, "codec": video.codec_context.name, "pictures": frames, "audio": None,
                 "audio_seconds": 0.0}
    with av.open(str(path)) as container:
        if container.streams.audio:
            found["audio"] = container.streams.audio[0].codec_context.name
            found["audio_seconds"] = sum(f.samples / f.sample_rate for f in container.decode(audio=0))
    return found


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "pan.mp4")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A compact network with fixed random weights: it changes every picture, like a trained one, and is
    not translation-invariant (strided convolutions), so painted frames flicker under motion."""
    torch.manual_seed(0)
    net = TransformerNet(feedforward.WIDTHS["compact"])
    path = tmp_path_factory.mktemp("model") / "random.pt"
    feedforward.save_model(net, path, {"style": "random"})
    return path


def test_the_reader_gives_frames_at_the_rate_size_and_part_asked_for(clip) -> None:
    with VideoReader(clip) as reader:
        assert (reader.info.width, reader.info.height, reader.info.fps) == (WIDTH, HEIGHT, Fraction(FPS))
        assert reader.info.frames == FRAMES and reader.info.duration == pytest.approx(2.0)
        assert reader.info.audio == "aac"
        frames = list(reader)
    assert len(frames) == FRAMES and frames[0].shape == (HEIGHT, WIDTH, 3) and frames[0].dtype == np.uint8
    with VideoReader(clip, start=0.5, duration=1.0, fps=6, size=48) as reader:
        part = list(reader)
        assert (reader.info.width, reader.info.height) == (48, 32)
    assert len(part) == 6 and part[0].shape == (32, 48, 3)
    with VideoReader(clip, fps=24) as reader:  # twice the rate: every frame shown twice
        doubled = list(reader)
    assert len(doubled) == 2 * FRAMES and np.array_equal(doubled[0], doubled[1])


def test_a_rotated_video_is_read_upright(tmp_path) -> None:
    # A phone's portrait video: stored landscape with a display rotation of 90 degrees counterclockwise.
    with VideoReader(make_clip(tmp_path / "turned.mp4", frames=3, audio=None, rotation=90)) as reader:
        assert (reader.info.width, reader.info.height) == (HEIGHT, WIDTH)
        first = next(iter(reader))
    assert first.shape == (WIDTH, HEIGHT, 3)
    assert first[-8:, :8].mean() > 200 and first[:8, :8].mean() < first[-8:, :8].mean()  # top left -> bottom left


def test_the_cli_paints_a_video_and_keeps_its_sound(clip, model, tmp_path, capsys) -> None:
    out = tmp_path / "painted.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", str(model), "--quiet"]) == 0
    made = describe(out)
    assert made["frames"] == FRAMES and made["size"] == (WIDTH, HEIGHT) and made["rate"] == FPS
    assert made["codec"] == "h264" and made["audio"] == "aac"
    assert made["audio_seconds"] == pytest.approx(2.0, abs=0.1)
    source = describe(clip)["pictures"]
    assert np.abs(made["pictures"][5].astype(float) - source[5]).mean() > 20  # painted, not copied
    assert capsys.readouterr().err == ""


def test_the_cli_paints_a_video_with_any_painting_in_one_pass(clip, tmp_path) -> None:
    painting = tmp_path / "painting.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(painting)
    out = tmp_path / "painted.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", str(painting), "--duration", "0.5", "--quiet"]) == 0
    made = describe(out)
    assert made["frames"] == FRAMES // 4 and made["size"] == (WIDTH, HEIGHT)
    assert np.abs(made["pictures"][2].astype(float) - describe(clip)["pictures"][2]).mean() > 10


def test_a_part_at_another_size_and_rate(clip, model, tmp_path) -> None:
    out = tmp_path / "part.mkv"
    assert main(["video", str(clip), "-o", str(out), "--model", str(model), "--start", "0.5", "--duration", "1",
                 "--fps", "6", "--size", "48", "--quiet"]) == 0
    made = describe(out)
    assert made["frames"] == 6 and made["size"] == (48, 32) and made["rate"] == 6
    assert made["audio_seconds"] == pytest.approx(1.0, abs=0.1)


def test_sound_an_mp4_cannot_hold_is_encoded_as_aac(tmp_path, model) -> None:
    source = make_clip(tmp_path / "pcm.mkv", frames=6, audio="pcm_s16le")
    assert describe(source)["audio"] == "pcm_s16le"
    out = tmp_path / "out.mp4"
    assert main(["video", str(source), "-o", str(out), "--model", str(model), "--quiet"]) == 0
    made = describe(out)
    assert made["audio"] == "aac" and made["audio_seconds"] == pytest.approx(0.5, abs=0.1)


def test_ctrl_c_leaves_a_playable_video_of_the_frames_done(clip, model, tmp_path) -> None:
    out = tmp_path / "stopped.mp4"

    def progress(event: api.video.VideoProgress) -> None:
        if event.step == 5:
            raise KeyboardInterrupt

    # Two batches of 4 taken, the remaining 16 frames fill the read-ahead queue exactly: the reading thread
    # must still notice that nobody will take its last item (it once waited for ever).
    results: list = []
    thread = threading.Thread(target=lambda: results.append(
        api.paint_video(clip, out, model=model, callbacks=[progress], batch_size=4)), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "paint_video hung after the interrupt"
    result = results[0]
    assert result.stopped == "interrupted" and result.frames == 5
    made = describe(out)
    assert made["frames"] == 5 and made["audio_seconds"] <= 5 / FPS + 0.1  # the sound ends with the pictures


def test_a_stop_signal_leaves_a_playable_video_of_the_frames_done(clip, model, tmp_path) -> None:
    stop, seen = threading.Event(), []

    def watch(event: api.video.VideoProgress) -> None:
        seen.append((event.step, event.total, event.losses, event.notes()))
        if event.step == 6:
            stop.set()

    result = api.paint_video(clip, tmp_path / "stopped.mp4", model=model, callbacks=[watch], stop=stop, batch_size=4)
    assert result.stopped == "cancelled" and result.frames == 6 and describe(result.output)["frames"] == 6
    assert seen[0] == (1, FRAMES, {}, {}) and [step for step, *_ in seen] == [1, 2, 3, 4, 5, 6]
    stop.clear()
    frames = (np.zeros((32, 32, 3), np.uint8) for _ in range(9))
    painted = api.paint_frames(model, frames, stability=0, batch_size=2, stop=stop)
    assert next(painted).shape == (32, 32, 3)
    stop.set()
    assert len(list(painted)) == 1  # the rest of the batch already painted, then nothing more


def test_stability_is_checked_once_for_both_ways_of_painting(clip, model, tmp_path, monkeypatch) -> None:
    calls: list[float] = []

    def check(stability: float) -> None:
        calls.append(stability)
        raise ConfigError("refused")

    monkeypatch.setattr(api.video, "check_stability", check)
    for how in ({"model": model}, {"styles": [clip]}):
        with pytest.raises(ConfigError, match="refused"):
            api.paint_video(clip, tmp_path / "o.mp4", stability=0.5, **how)
    with pytest.raises(ConfigError, match="refused"):
        list(api.paint_frames(model, [np.zeros((8, 8, 3), np.uint8)], stability=0.25))
    assert calls == [0.5, 0.5, 0.25]


def test_bad_input_gets_one_line_and_never_clobbers_the_output(clip, model, tmp_path, capsys) -> None:
    existing = tmp_path / "keep.mp4"
    existing.write_bytes(b"an earlier result")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    sound_only = tmp_path / "tone.m4a"
    with av.open(str(sound_only), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 44100, 0
        for packet in [*stream.encode(chunk), *stream.encode(None)]:
            out.mux(packet)
    cases = [
        ([str(text), "-o", str(existing)], "not a video FFmpeg can read"),
        ([str(tmp_path / "missing.mp4"), "-o", str(existing)], "no such file"),
        ([str(sound_only), "-o", str(existing)], "has no video stream"),
        ([str(clip), "-o", str(tmp_path / "out.png")], "unknown video type"),
        ([str(clip), "-o", str(clip)], "is the input"),
        ([str(clip), "-o", str(existing), "--start", "5"], "past its end"),
        ([str(clip), "-o", str(existing), "--stability", "2"], "--stability must be from 0 to 1"),
        ([str(clip), "-o", str(tmp_path / "no" / "out.mp4")], "does not exist"),
    ]
    for args, message in cases:
        assert main(["video", *args, "--model", str(model), "--quiet"]) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert existing.read_bytes() == b"an earlier result"
    assert not list(tmp_path.glob(".*.part"))


def test_stability_lowers_the_warping_error_on_a_known_motion(clip, model) -> None:
    with VideoReader(clip) as reader:
        frames = list(reader)
    flow = FlowEstimator()
    motions = [flow.motion(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    assert np.median([m.flow[16:-16, 16:-16, 0].mean() for m in motions]) == pytest.approx(STEP, abs=0.5)
    loaded = api.load_style_model(model)
    single = list(api.paint_frames(loaded, frames, stability=0))
    steady = list(api.paint_frames(loaded, frames))
    assert warping_error(steady, motions) < 0.6 * warping_error(single, motions)
    assert warping_error(frames, motions) < warping_error(single, motions)  # the network does flicker
    # where nothing moved in, a steadied frame still follows its own painting (no frozen picture)
    assert np.abs(steady[-1].astype(float) - single[-1]).mean() < np.abs(single[-1].astype(float) - single[0]).mean()


def test_a_flow_found_at_half_size_gives_the_motion_at_full_size(clip, model) -> None:
    """The live view's steadying finds the flow at half size (a tenth of the time): the motion comes back in
    full-size pixels and still steadies the painted frames."""
    with VideoReader(clip) as reader:
        frames = list(reader)
    half = FlowEstimator(scale=0.5)
    motions = [half.motion(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    assert motions[0].flow.shape == (HEIGHT, WIDTH, 2) and motions[0].reliable.shape == (HEIGHT, WIDTH)
    assert np.median([m.flow[16:-16, 16:-16, 0].mean() for m in motions]) == pytest.approx(STEP, abs=0.5)
    painted = list(api.paint_frames(api.load_style_model(model), frames, stability=0))
    steadier = Steadier(0.85, scale=0.5)
    steady = [steadier(frame, picture) for frame, picture in zip(frames, painted, strict=True)]
    exact = [FlowEstimator().motion(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    assert warping_error(steady, exact) < 0.4 * warping_error(painted, exact)  # 0.16 here; 0.13 at full size


def test_paint_frames_takes_pictures_from_any_iterator() -> None:
    pictures = (Image.new("RGB", (40, 32), (i * 20, 80, 120)) for i in range(5))
    net = TransformerNet(feedforward.WIDTHS["compact"])
    painted = list(api.paint_frames(feedforward.StyleModel(net, {}), pictures, stability=0, batch_size=2))
    assert len(painted) == 5 and all(p.shape == (32, 40, 3) and p.dtype == np.uint8 for p in painted)
    assert Steadier(0)(painted[0], painted[1]) is painted[1]


def test_the_optimiser_paints_a_clip_and_an_interrupted_run_resumes(tmp_path) -> None:
    source = make_clip(tmp_path / "short.mp4", frames=4)
    style = tmp_path / "style.png"
    Image.fromarray(np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, 0).repeat(3, 2)).save(style)
    out = tmp_path / "painted.mp4"
    options = {"styles": [style], "size": 64, "iterations": 4, "frame_iterations": 2, "seed": 1}
    seen: list[int] = []

    stop = threading.Event()

    def stop_after_two(event: api.video.VideoProgress) -> None:
        seen.append(event.step)
        if event.step == 2:
            stop.set()

    first = api.paint_video(source, out, callbacks=[stop_after_two], stop=stop, **options)
    assert first.stopped == "cancelled" and first.frames == 2 and describe(out)["frames"] == 2
    folder = tmp_path / "painted.mp4.frames"
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "settings.json"]
    with pytest.raises(ConfigError, match="holds the frames of another run"):
        api.paint_video(source, out, **{**options, "frame_iterations": 3})
    seen.clear()
    with pytest.warns(DeprecationWarning, match="`progress`"):  # the older spelling still works
        second = api.paint_video(source, out, progress=lambda done, info: seen.append(done), **options)
    assert second.stopped is None and seen == [3, 4]  # only the frames not yet painted
    made = describe(out)
    assert made["frames"] == 4 and made["size"] == (64, 42) and made["audio"] == "aac"
    assert not folder.exists()


def test_the_temporal_term_pulls_only_reliable_pixels_and_tiles_exactly() -> None:
    net = FeatureNetwork().build(["relu1_1", "relu4_2", "relu5_1"], torch.device("cpu"))
    objective = Objective(net, content_layers=["relu4_2"], style_layers=["relu1_1", "relu5_1"], style_weight=1e3,
                          temporal_weight=50.0)
    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 96, 128, generator=generator), torch.rand(1, 3, 64, 64, generator=generator)
    targets = objective.targets(content, [style], [1.0])
    targets.previous = torch.rand(1, 3, 96, 128, generator=generator)
    targets.reliable = torch.zeros(1, 1, 96, 128)
    targets.reliable[..., :, :64] = 1  # the left half can be followed
    pixels = content.clone().requires_grad_(True)
    values = objective.evaluate(pixels, targets)
    assert float(values["temporal"]) > 0
    tiled_pixels = content.clone().requires_grad_(True)
    tiled = objective.evaluate(tiled_pixels, targets, Tiling.for_net(net, 48))
    assert float(tiled["total"]) == pytest.approx(float(values["total"]), rel=1e-5)
    assert float((tiled_pixels.grad - pixels.grad).norm() / pixels.grad.norm()) < 1e-4
    alone = Objective(net, content_weight=0, style_weight=0, temporal_weight=50.0)
    pixels.grad = None
    alone.evaluate(pixels, targets)
    assert float(pixels.grad[..., 64:].abs().max()) == 0 and float(pixels.grad[..., :64].abs().max()) > 0
