"""Painting videos: frames in, steady painted frames out (:func:`paint_frames`, for notebooks and
pipelines), or a video file in and one out with its sound (:func:`paint_video`).

With a real-time network, decoding, painting and encoding overlap: a thread reads frames ahead and another
encodes painted ones while the network paints the next batch; stability (on by default) blends each painted
frame with the previous one moved by the input's optical flow, where that flow is reliable
(``video.flow.Steadier``). With style pictures instead (the optimiser, Ruder et al. 2016), each frame after
the first starts from the previous result moved by the flow and is optimised with a temporal term on the
reliable pixels; finished frames are kept on disk, so an interrupted run resumes where it stopped.

``stability`` is one knob from 0 to 1 for both ways, "how much each frame keeps of the one before where the
motion is reliable", but it works differently in each: with a network it is a blend weight (the share of the
previous painted frame, moved by the flow, in each new one: 1 keeps it wherever it can be followed); with the
optimiser it scales a loss weight (the temporal term's weight is ``TEMPORAL_WEIGHT`` times it: a pull towards
the previous frame that the style and content terms still balance, never a freeze).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from .. import checks, feedforward, files, images
from ..errors import ConfigError
from ..images import ImageInput
from ..optimize import Temporal
from ..progress import CANCELLED, Count, Stop, requested
from ..video.flow import PRESET, FlowEstimator, Steadier
from ..video.io import VideoInfo, VideoReader, check_video_output, open_writer
from ..video.settings import FRAME_ITERATIONS, STABILITY, TEMPORAL_WEIGHT
from .one_pass import OnePass
from .realtime import Model, load_style_model, paint_tensor
from .transfer import run

#: A video's progress: frames done of the frames the container announces.
VideoProgress = Count
#: Frames read ahead of the painting, and painted frames waiting to be encoded.
QUEUE = 16

T = TypeVar("T")
Frame = np.ndarray | Image.Image


def _as_array(frame: Frame) -> np.ndarray:
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ConfigError(f"a frame must be (H, W, 3) uint8 RGB, not {frame.dtype} {tuple(frame.shape)}")
    return frame


def check_stability(stability: float) -> None:
    """ConfigError unless ``stability`` is from 0 to 1: the one check of it, for both ways of painting."""
    if not 0 <= stability <= 1:
        raise ConfigError(f"`stability` must be from 0 to 1 (got {stability})")


def paint_frames(model: str | os.PathLike[str] | Model, frames: Iterable[Frame], *,
                 stability: float = STABILITY, batch_size: int = 4, preserve_color: bool = False,
                 tile: int | None = None, device: str = "auto", backend: str = "auto",
                 flow: str = PRESET, stop: Stop | None = None) -> Generator[np.ndarray, None, None]:
    """Paint ``frames`` ((H, W, 3) uint8 RGB arrays or PIL images, all one size) with a real-time network or a painting
    in one pass (its statistics taken once for every frame), ``batch_size`` at a time, and yield the painted frames
    in order as uint8 arrays, steadied by ``stability`` (the blend weight of the previous painted frame; 0: each
    frame painted on its own; up to 1) along the optical flow of DIS preset ``flow``. ``stop`` (a
    ``threading.Event`` or anything with ``is_set()``), when set, ends it after the frames already painted."""
    check_stability(stability)
    if batch_size < 1:
        raise ConfigError("`batch_size` must be at least 1")
    loaded = model if isinstance(model, (feedforward.StyleModel, OnePass)) else load_style_model(
        model, backend=backend, device=device)
    steady = Steadier(stability, flow)
    batch: list[np.ndarray] = []
    for frame in frames:
        if requested(stop):
            return
        batch.append(_as_array(frame))
        if len(batch) == batch_size:
            yield from _paint(loaded, batch, steady, preserve_color, tile)
            batch = []
    if batch:
        yield from _paint(loaded, batch, steady, preserve_color, tile)


def _paint(model: Model, batch: list[np.ndarray], steady: Steadier, preserve_color: bool,
           tile: int | None) -> Iterator[np.ndarray]:
    if any(frame.shape != batch[0].shape for frame in batch):
        raise ConfigError("the frames of a video must all have one size")
    tensor = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div(255)
    with torch.inference_mode():
        painted = paint_tensor(model, tensor, preserve_color=preserve_color, tile=tile)
    pictures = painted.clamp(0, 1).mul(255).add(0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
    for frame, picture in zip(batch, pictures, strict=True):
        yield steady(frame, picture)


@dataclass
class VideoResult:
    """What :func:`paint_video` did: ``frames`` written to ``output`` in ``seconds``; ``stopped`` says why
    it ended early ("interrupted" by Ctrl-C, "cancelled" by the stop signal), None when it painted every
    frame."""

    output: Path
    info: VideoInfo
    frames: int
    seconds: float
    stopped: str | None = None


def paint_video(source: str | os.PathLike[str], output: str | os.PathLike[str], *,
                model: str | os.PathLike[str] | Model | None = None,
                styles: Sequence[ImageInput] = (), stability: float = STABILITY, size: int | None = None,
                start: float = 0.0, duration: float | None = None, fps: float | None = None, batch_size: int = 4,
                preserve_color: bool = False, tile: int | None = None, device: str = "auto", backend: str = "auto",
                frame_iterations: int = FRAME_ITERATIONS, flow: str = PRESET,
                callbacks: Sequence[Callable[[VideoProgress], None]] = (), stop: Stop | None = None,
                progress: Callable[[int, VideoInfo], None] | None = None, **options: object) -> VideoResult:
    """Paint the video ``source`` into ``output`` (.mp4, .mov or .mkv: H.264, the source's sound kept) with a
    real-time network (``model``) or by optimisation towards ``styles`` (``options`` as for :func:`run`;
    ``iterations`` for the first frame, ``frame_iterations`` for each later one), steadied by ``stability``
    (see the module's notes: a blend weight with a network, a loss weight's scale with the optimiser) along
    the optical flow of DIS preset ``flow`` (``video.flow.PRESETS``). ``callbacks`` receive a
    :data:`VideoProgress` after each frame. ``stop`` (a ``threading.Event`` or anything with ``is_set()``)
    and Ctrl-C end it with a playable video of the frames painted so far; any other failure leaves ``output``
    as it was. ``progress(frames_done, info)`` is the older form of ``callbacks`` (deprecated)."""
    if (model is None) == (not styles):
        raise ConfigError("give one of a real-time `model` and `styles` to optimise towards")
    for name, value in (("size", size), ("start", start), ("duration", duration), ("fps", fps),
                        ("batch_size", batch_size), ("frame_iterations", frame_iterations)):
        checks.within(name, value)
    checks.within("tile", tile, "one_pass_tile")
    output = check_video_output(output, (source, *styles))
    check_stability(stability)
    reader = VideoReader(source, start=start, duration=duration, fps=fps, size=size)
    if progress is not None:
        warnings.warn("paint_video's `progress` is deprecated: give `callbacks`, which receive VideoProgress "
                      "events (step, total, elapsed)", DeprecationWarning, stacklevel=2)
        callbacks = [*callbacks, lambda event: progress(event.step, reader.info)]
    with reader:
        if model is None:
            return _optimise(reader, output, list(styles), stability, frame_iterations, flow, preserve_color,
                             device, _Watch(callbacks, reader.info), stop, options)
        if options:
            raise ConfigError(f"unknown option {next(iter(options))!r} for a real-time model")
        loaded = model if isinstance(model, (feedforward.StyleModel, OnePass)) else load_style_model(
            model, backend=backend, device=device)
        watch, stopped = _Watch(callbacks, reader.info), None
        with open_writer(output, reader.info, reader.path, reader.start) as writer, \
                _Encoder(writer.write) as encoder:
            frames = _read_ahead(reader)
            painted = paint_frames(loaded, frames, stability=stability, batch_size=batch_size,
                                   preserve_color=preserve_color, tile=tile, flow=flow, stop=stop)
            try:
                for picture in painted:
                    encoder.put(picture)
                    watch(encoder.count)
                    if requested(stop):
                        stopped = CANCELLED
                        break
            except KeyboardInterrupt:
                stopped = "interrupted"
            finally:
                painted.close()
                frames.close()
    return VideoResult(output, reader.info, writer.frames, watch.elapsed(), stopped)


class _Watch:
    """A video's listeners: each is told the frames done after every frame, as a :data:`VideoProgress`."""

    def __init__(self, callbacks: Sequence[Callable[[VideoProgress], None]], info: VideoInfo) -> None:
        self.callbacks, self.total, self.began = callbacks, info.frames or None, time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the video began."""
        return time.perf_counter() - self.began

    def __call__(self, done: int) -> None:
        event = VideoProgress(done, self.total, self.elapsed())
        for callback in self.callbacks:
            callback(event)


def _optimise(reader: VideoReader, output: Path, styles: list[ImageInput], stability: float,
              frame_iterations: int, preset: str, preserve_color: bool, device: str, watch: _Watch,
              stop: Stop | None, options: dict[str, object]) -> VideoResult:
    """The optimiser's video: each frame a transfer, tied to the one before; frames kept in OUTPUT.frames/
    until the video is written, so that a rerun of the same command resumes. A frame stopped half-way is
    not kept."""
    checks.at_least("frame_iterations", frame_iterations, 1)
    info, stopped = reader.info, None
    folder = output.with_name(output.name + ".frames")
    settings = {"source": str(reader.path.resolve()), "bytes": reader.path.stat().st_size, "info": str(info),
                "start": reader.start, "styles": [str(s) for s in styles], "stability": stability,
                "frame_iterations": frame_iterations, "flow": preset, "preserve_color": preserve_color,
                **{k: str(v) for k, v in sorted(options.items())}}
    done = _frames_done(folder, settings)
    flow = FlowEstimator(preset) if stability else None
    common: dict[str, Any] = {"size": max(info.width, info.height), "device": device, "score": False,
                              "preserve_color": preserve_color, **options}
    previous: tuple[np.ndarray, np.ndarray] | None = None  # the last input frame and its result
    index = 0
    try:
        for index, frame in enumerate(reader):
            path = folder / f"{index:06d}.png"
            if index < done:
                previous = (frame, np.asarray(Image.open(path).convert("RGB"))) if flow else None
                continue
            if requested(stop):
                stopped = CANCELLED
                break
            picture = Image.fromarray(frame)
            if previous is None or flow is None:
                result = run("transfer", picture, styles, stop=stop, **common)
            else:
                motion = flow.motion(previous[0], frame)
                moved = motion.warp(previous[1], sharp=True)
                temporal = Temporal(images.to_tensor(Image.fromarray(moved)),
                                    torch.from_numpy(motion.reliable)[None, None], TEMPORAL_WEIGHT * stability)
                result = run("transfer", picture, styles, init_image=Image.fromarray(moved), temporal=temporal,
                             stop=stop, **{"single_scale": True, "iterations": frame_iterations, **common})
            if result.stopped == "interrupted":
                raise KeyboardInterrupt
            if result.stopped == CANCELLED:
                stopped = CANCELLED
                break
            painted = images.to_pil(result.image)
            images.save_image(painted, path)
            previous = (frame, np.asarray(painted)) if flow else None
            watch(index + 1)
    except KeyboardInterrupt:
        stopped = "interrupted"
    kept = sorted(folder.glob("[0-9]*.png"))
    if kept:
        with open_writer(output, info, reader.path, reader.start) as writer:
            for path in kept:
                writer.write(np.asarray(Image.open(path).convert("RGB")))
        if stopped is None:
            shutil.rmtree(folder, ignore_errors=True)
    return VideoResult(output, info, len(kept), watch.elapsed(), stopped)


def _frames_done(folder: Path, settings: dict[str, object]) -> int:
    """How many frames an earlier run of the same settings left in ``folder`` (made, with the settings, when
    new); a ConfigError when it holds another run's frames."""
    record = folder / "settings.json"
    if folder.exists():
        try:
            earlier = json.loads(record.read_text())
        except (OSError, ValueError):
            earlier = None
        if earlier != json.loads(json.dumps(settings)):
            raise ConfigError(f"{folder} holds the frames of another run (other settings or input); remove it "
                              "to start afresh, or repeat that run's command to resume it")
        count = 0
        while (folder / f"{count:06d}.png").exists():
            count += 1
        return count
    folder.mkdir()
    files.atomic_write_bytes(record, json.dumps(settings, indent=1).encode())
    return 0


_DONE = object()


def _read_ahead(items: Iterable[T], depth: int = QUEUE) -> Generator[T, None, None]:
    """``items`` read by a thread of their own, up to ``depth`` ahead; its errors are raised here."""
    box: queue.Queue[Any] = queue.Queue(depth)
    halt = threading.Event()

    def offer(item: object) -> bool:
        """Queue ``item`` unless the consumer has gone; return whether it was queued."""
        while not halt.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            offer(exc)

    thread = threading.Thread(target=read, name="stylecraft-decode", daemon=True)
    thread.start()
    try:
        while (item := box.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        halt.set()
        thread.join()


class _Encoder:
    """Runs ``write`` on a thread of its own over the items :meth:`put` gives it, in order; waits for the
    last one on leaving the block, and raises here what failed there."""

    def __init__(self, write: Callable[[np.ndarray], None]) -> None:
        self._write, self.count = write, 0
        self._box: queue.Queue[Any] = queue.Queue(QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stylecraft-encode", daemon=True)

    def __enter__(self) -> _Encoder:
        self._thread.start()
        return self

    def _run(self) -> None:
        while (item := self._box.get()) is not _DONE:
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    self._error = exc

    def put(self, picture: np.ndarray) -> None:
        """Queue one painted frame (waits while the queue is full)."""
        if self._error is not None:
            raise self._error
        self._box.put(picture)
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self._box.put(_DONE)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error
