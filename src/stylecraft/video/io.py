"""Reading and writing videos with PyAV (FFmpeg's libraries): upright RGB frames in, H.264 with the source's
sound out.

A reader picks a part (``start``, ``duration``), a frame rate (frames are dropped or repeated by their time)
and a size, and turns frames upright by their display rotation. A writer encodes frames as they come and
interleaves the source's audio packets up to each frame's time, copied as they are (re-encoded to AAC only
where the container cannot hold the codec), so a writer closed early still leaves a playable file whose sound
ends with its pictures. The file is written beside the output and renamed over it when complete: a failed
run never clobbers an existing output.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from .. import checks, files, images
from ..errors import ImageError

#: Output containers by file type; the video in each is H.264.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: Audio codecs a container holds as they are (None: any); others are re-encoded to AAC.
COPYABLE: dict[str, set[str] | None] = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
    "matroska": None,
}
#: x264's constant-quality setting: 18 is visually lossless for most material.
QUALITY = 18


def _av() -> Any:
    return checks.require("av", "video", "video")


@dataclass(frozen=True)
class VideoInfo:
    """What a reader gives: ``frames`` upright frames (an estimate from the container) of ``width`` x
    ``height`` at ``fps``, ``duration`` seconds, and the source's ``audio`` codec (None: no sound)."""

    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    audio: str | None


def _even(value: int) -> int:
    """H.264 in 4:2:0 needs even sides."""
    return max(2, value - value % 2)


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__).strip()


def _open(path: Path) -> Any:
    av = _av()
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise ImageError(f"{path}: not a video FFmpeg can read ({_reason(exc)})") from None


class VideoReader:
    """The frames of the video at ``path`` from ``start`` seconds for ``duration`` seconds (default: to the
    end), at ``fps`` frames a second (default: the source's) with ``size`` px on the long side (default: the
    source's), upright. Use as a context manager, or :meth:`close` it."""

    def __init__(self, path: str | os.PathLike[str], *, start: float = 0.0, duration: float | None = None,
                 fps: float | None = None, size: int | None = None) -> None:
        checks.non_negative("start", start)
        if duration is not None:
            checks.positive("duration", duration)
        if fps is not None:
            checks.positive("fps", fps)
        if size is not None:
            checks.at_least("size", size, 16)
        self.path, self.start = Path(path), start
        if not self.path.is_file():
            raise ImageError(f"{self.path}: no such file")
        self._container = _open(self.path)
        try:
            still = self._container.format.name
            if still.endswith("_pipe") or still == "image2":  # FFmpeg reads a picture as a video of one frame
                raise ImageError(f"{self.path}: a still picture, not a video")
            if not self._container.streams.video:
                raise ImageError(f"{self.path}: has no video stream")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            self.rotation = self._first_rotation()
            self.info = self._describe(duration, fps, size)
        except BaseException:
            self._container.close()
            raise

    def _first_rotation(self) -> int:
        """The display rotation of the first frame, in degrees counterclockwise (a phone's portrait video)."""
        av = _av()
        with _open(self.path) as probe:
            try:
                frame = next(probe.decode(probe.streams.video[0]), None)
            except av.FFmpegError as exc:
                raise ImageError(f"{self.path}: its video cannot be decoded ({_reason(exc)})") from None
        if frame is None:
            raise ImageError(f"{self.path}: has no frames")
        return int(round(frame.rotation)) % 360

    def _describe(self, duration: float | None, fps: float | None, size: int | None) -> VideoInfo:
        stream, container = self._stream, self._container
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        if stream.duration:
            whole = float(stream.duration * stream.time_base)
        else:
            whole = container.duration / 1e6 if container.duration else math.inf
        if self.start >= whole:
            raise ImageError(f"{self.path}: `start` {self.start:g} s is past its end ({whole:.2f} s)")
        length = min(whole - self.start, duration if duration is not None else math.inf)
        width, height = stream.codec_context.width, stream.codec_context.height
        if self.rotation % 180:
            width, height = height, width
        if size is not None:
            width, height = images.fit_long_side(width, height, size)
        self._rate = rate
        out_rate = Fraction(fps).limit_denominator(1001) if fps is not None else rate
        frames = max(1, round(length * out_rate)) if math.isfinite(length) else 0
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return VideoInfo(_even(width), _even(height), out_rate, frames, length, audio)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the file."""
        self._container.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 RGB frames at the reader's rate and size: each output time shows the source frame
        on screen at that time (dropped or repeated to change the rate)."""
        av = _av()
        start, end = self.start, self.start + self.info.duration
        step, shown = 1 / float(self.info.fps), 1 / float(self._rate)
        slack = step / 1000
        wanted, current, time = 0, None, 0.0

        def shown_until(limit: float) -> Iterator[np.ndarray]:
            """The current frame once for each output time before ``limit``."""
            nonlocal wanted
            picture = None
            while start + wanted * step < min(limit, end) - slack:
                wanted += 1
                picture = self._picture(current) if picture is None else picture
                yield picture

        if start > 0:
            self._container.seek(int(start / self._stream.time_base), stream=self._stream)
        try:
            for frame in self._container.decode(self._stream):
                time = frame.time if frame.time is not None else time + shown
                if time >= end:
                    break
                if current is not None:
                    yield from shown_until(time)
                current = frame
        except av.FFmpegError as exc:
            raise ImageError(f"{self.path}: cannot be decoded ({_reason(exc)})") from None
        if current is not None:
            yield from shown_until((current.time if current.time is not None else time) + shown)
        if wanted == 0:
            raise ImageError(f"{self.path}: has no frames" + (f" after {start:g} s" if start else ""))

    def _picture(self, frame: Any) -> np.ndarray:
        picture = frame.to_ndarray(format="rgb24")
        if self.rotation:
            picture = np.rot90(picture, self.rotation // 90)
        if (picture.shape[1], picture.shape[0]) != (self.info.width, self.info.height):
            resized = Image.fromarray(np.ascontiguousarray(picture)).resize(
                (self.info.width, self.info.height), Image.Resampling.LANCZOS)
            return np.asarray(resized)
        return np.ascontiguousarray(picture)


class VideoWriter:
    """H.264 frames at ``info.fps`` into ``stream`` (a ``container`` format), with the sound of ``source``
    (from ``start`` seconds) interleaved up to each frame's time."""

    def __init__(self, stream: IO[bytes], container: str, info: VideoInfo, source: Path | None = None,
                 start: float = 0.0) -> None:
        av = _av()
        self._output = av.open(stream, "w", format=container)
        video = self._output.add_stream("libx264", rate=info.fps)
        video.width, video.height, video.pix_fmt = info.width, info.height, "yuv420p"
        video.options = {"crf": str(QUALITY), "preset": "veryfast"}
        self._video, self._step, self.frames = video, Fraction(1) / info.fps, 0
        self._sound: _Sound | None = None
        if source is not None and info.audio:
            self._sound = _Sound(source, self._output, COPYABLE[container], start)

    def write(self, picture: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame, after the sound that comes before it."""
        av = _av()
        if self._sound is not None:
            self._sound.until(self.frames * self._step)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
        frame.pts, frame.time_base = self.frames, self._step
        for packet in self._video.encode(frame):
            self._output.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Finish the file: the encoder's last packets and the sound up to the end of the last frame."""
        for packet in self._video.encode(None):
            self._output.mux(packet)
        if self._sound is not None:
            self._sound.until(self.frames * self._step)
            self._sound.close()
        self._output.close()

    def abandon(self) -> None:
        """Stop without finishing (the file is thrown away)."""
        if self._sound is not None:
            self._sound.close()
        with contextlib.suppress(Exception):
            self._output.close()


class _Sound:
    """The audio of ``source`` from ``start`` seconds, moved into ``output`` packet by packet: copied where
    ``copyable`` allows its codec, else decoded and encoded as AAC."""

    def __init__(self, source: Path, output: Any, copyable: set[str] | None, start: float) -> None:
        self._input = _open(source)
        stream = self._input.streams.audio[0]
        self._start = start
        if start > 0:
            self._input.seek(int(start / stream.time_base), stream=stream)
        self._packets = iter(self._input.demux(stream))
        self._pending: Any = None
        self._copy = copyable is None or stream.codec_context.name in copyable
        if self._copy:
            self._stream = output.add_stream_from_template(stream)
        else:
            self._stream = output.add_stream("aac", rate=stream.codec_context.sample_rate)
            self._decoder = stream.codec_context
        self._output = output

    def until(self, time: Fraction) -> None:
        """Move the packets that start before ``time`` seconds of the output."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if packet.pts is None:
                continue
            at = float(packet.pts * packet.time_base) - self._start
            if at < -1e-6:
                continue
            if at >= time:
                self._pending = packet
                return
            self._move(packet)

    def _move(self, packet: Any) -> None:
        if not self._copy:
            for frame in self._decoder.decode(packet):
                frame.pts = None
                for encoded in self._stream.encode(frame):
                    self._output.mux(encoded)
            return
        shift = round(self._start / packet.time_base)
        packet.pts -= shift
        packet.dts = packet.dts - shift if packet.dts is not None else packet.pts
        packet.stream = self._stream
        self._output.mux(packet)

    def close(self) -> None:
        if not self._copy:
            for encoded in self._stream.encode(None):
                self._output.mux(encoded)
        self._input.close()


def check_video_output(path: str | os.PathLike[str], inputs: tuple[object, ...] = ()) -> Path:
    """Fail early if ``path`` cannot receive a video: an unknown type, no folder, or one of ``inputs``."""
    path = Path(path)
    if path.suffix.lower() not in CONTAINERS:
        raise ImageError(f"{path}: unknown video type {path.suffix or '(none)'!r}; use one of "
                         + ", ".join(sorted(CONTAINERS)))
    return files.check_writable(path, inputs)


@contextlib.contextmanager
def open_writer(path: str | os.PathLike[str], info: VideoInfo, source: Path | None = None,
                start: float = 0.0) -> Iterator[VideoWriter]:
    """A VideoWriter to ``path`` that leaves a complete file there when the block ends normally, and
    ``path`` as it was when the block raises."""
    path = Path(path)
    with files.atomic_file(path) as stream:
        writer = VideoWriter(stream, CONTAINERS[path.suffix.lower()], info, source, start)
        try:
            yield writer
        except BaseException:
            writer.abandon()
            raise
        writer.close()
