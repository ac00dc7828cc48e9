"""The live camera: a WebSocket at ``/api/live`` that paints the frames a page sends and sends them back.

The protocol, one connection per page:

- The page sends its settings as text, ``{"style": "great-wave", "strength": 1.0}`` (again whenever they
  change), and its camera's frames as binary JPEG or WebP messages, one frame in flight: the next goes after
  the answer, or after a timeout.
- The studio answers each frame it paints with a text ``{"type": "frame", "seq": N, "decode_ms": ...,
  "network_ms": ..., "steady_ms": ..., "encode_ms": ...}`` (N counts the frames received, from 1), then the
  painted JPEG as binary. It keeps only the latest frame: frames that arrive while one is painted replace each
  other, and the ones replaced are never answered.
- ``{"type": "ready", ...}`` says a style is loaded, ``{"type": "status", "text": ...}`` what is under way and
  ``{"type": "error", "error": ...}`` a setting refused (the connection stays open).

The network runs off the event loop, steadied along the camera's optical flow as videos are
(``video.flow.Steadier``, when OpenCV is installed). Nothing is written to disk. The handshake is checked
before it is accepted (:func:`.security.websocket_refusal`: closed with 1008); the token comes from the login
cookie or, without one, as the first message ``{"token": "..."}``. A frame too large (1009), too frequent
(1008), or not a picture (1003) closes the connection with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import torch
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import api, images
from ..api.realtime import Model, paint_tensor
from ..errors import ConfigError, StylecraftError, one_line, shorten
from ..runtime import cpu_has_bf16
from ..video.settings import STABILITY
from .config import StudioConfig
from .models import list_builtin, model_source
from .security import COOKIE, granted, in_page_words, same_secret, websocket_refusal
from .store import ID_PATTERN, JobStore

T = TypeVar("T")

router = APIRouter()

#: Close codes (RFC 6455): a policy refused (origin, token, rate, connections), data that is not a picture, a
#: message too big.
POLICY, UNSUPPORTED, TOO_BIG = 1008, 1003, 1009
#: Seconds a connection without the login cookie has to send its token.
TOKEN_SECONDS = 10.0
#: The most pixels a frame may have: the largest size the page offers, 1280 x 720, with room for a portrait
#: camera's 720 x 1280.
MAX_FRAME_PIXELS = 1280 * 720
#: Quality of the painted JPEGs sent back.
JPEG_QUALITY = 80
#: The size, as a share of the frame's, at which the live view finds the optical flow that steadies it: at half
#: size the two flows of a 640x360 frame take a tenth of the time (12 to 1.2 ms each, measured beside a training)
#: and steady a panned clip nearly as well (warping error 0.16x the unsteadied against 0.13x; tests/test_video.py).
FLOW_SCALE = 0.5
#: Loaded styles kept for the live view (switching back to one is then instant).
KEPT_STYLES = 4
#: A style given as an uploaded painting: ``upload:ID``, painted in one pass.
UPLOAD_PREFIX = "upload:"


class LiveSettings(BaseModel):
    """What the page asks the live view for: the style (a built-in style or blend, a model file's name, or an
    uploaded painting as ``upload:ID``; default: the first built-in style) and the strength (1: the painting
    only, 0: the photo)."""

    model_config = ConfigDict(extra="forbid")

    style: str | None = Field(None, min_length=1, max_length=400)
    strength: float = Field(1.0, ge=0, le=1, allow_inf_nan=False)


class Refused(Exception):
    """Ends a live connection: the close code and the reason the page shows."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def fastest_backend(device: str) -> tuple[str, str]:
    """The fastest backend installed for the live view and its precision: OpenVINO (bf16 where the CPU computes
    it natively), else ONNX Runtime, else torch (always, on a GPU)."""
    def installed(*modules: str) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in modules)

    if device != "cpu":
        return "torch", "fp32"
    if installed("openvino", "onnx", "onnxscript"):
        return "openvino", "bf16" if cpu_has_bf16() else "fp32"
    if installed("onnxruntime", "onnx", "onnxscript"):
        return "onnx", "fp32"
    return "torch", "fp32"


def live_backend(config: StudioConfig) -> tuple[str, str]:
    """The backend and precision that paint ``config``'s live view."""
    if config.live_backend == "auto":
        return fastest_backend(config.device)
    if config.live_backend == "openvino":
        return "openvino", "bf16" if cpu_has_bf16() else "fp32"
    return config.live_backend, "fp32"


def steady_available() -> bool:
    """Whether the live view can be steadied: the optical flow needs OpenCV (the ``video`` extra)."""
    return importlib.util.find_spec("cv2") is not None


class Painters:
    """The styles loaded for the live view, the last few kept, shared by its connections; and the number of
    connections open. Loading runs in a worker thread, one at a time."""

    def __init__(self, config: StudioConfig, store: JobStore) -> None:
        self.config, self.store = config, store
        self.backend, self.precision = live_backend(config)
        self.open = 0
        self._kept: OrderedDict[str, tuple[Model, str]] = OrderedDict()
        self._lock = threading.Lock()

    def default_style(self) -> str:
        """The first built-in style (a ConfigError when this installation has none)."""
        builtin = list_builtin()
        if not builtin:
            raise ConfigError("this installation has no built-in styles: pick a model or a painting")
        return str(builtin[0]["name"])

    def load(self, style: str) -> tuple[Model, str]:
        """The painter of ``style``, loaded once, and what runs it (a StylecraftError for a style that cannot be
        painted)."""
        with self._lock:
            if style in self._kept:
                self._kept.move_to_end(style)
                return self._kept[style]
            painter = self._load(style)
            self._kept[style] = painter
            while len(self._kept) > KEPT_STYLES:
                self._kept.popitem(last=False)
            return painter

    def _load(self, style: str) -> tuple[Model, str]:
        device = self.config.device
        if style.startswith(UPLOAD_PREFIX):
            upload = style[len(UPLOAD_PREFIX):]
            if not ID_PATTERN.fullmatch(upload):
                raise ConfigError("an uploaded painting is named upload:ID")
            return api.load_one_pass(self.store.upload_path(upload), device=device), "one pass (torch)"
        path, part = model_source(self.config.models_folder, style)
        backend = self.backend
        if path.suffix.lower() == ".onnx" and backend == "torch":
            backend = "onnx"
        precision = self.precision if backend == "openvino" else "fp32"
        painter = api.load_style_model(path, backend=backend, precision=precision, device=device, style=part)
        return painter, backend + (f" {precision}" if backend == "openvino" else "")


@dataclass
class Session:
    """One live connection: its settings, the latest frame received, and the steadying of what it paints."""

    painters: Painters
    settings: LiveSettings = field(default_factory=lambda: LiveSettings.model_validate({}))
    received: int = 0
    latest: tuple[int, bytes] | None = None
    changed: bool = True
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    _allowance: float = 0.0
    _checked: float = field(default_factory=time.monotonic)
    _steady: Any = None
    _steady_key: tuple[str, tuple[int, int]] | None = None
    _working: asyncio.Future[Any] | None = None

    async def off_loop(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker thread. A cancelled caller stops waiting but the work goes on, and
        :meth:`settled` waits for it: a thread still in OpenVINO or torch when the process exits aborts it."""
        self._working = asyncio.ensure_future(run_in_threadpool(work, *args))
        return cast(T, await asyncio.shield(self._working))

    async def settled(self) -> None:
        """Once the work :meth:`off_loop` started has ended, however it ends."""
        if self._working is not None:
            await asyncio.wait([self._working])

    def __post_init__(self) -> None:
        self._allowance = float(self.painters.config.max_live_fps)  # a second's worth of frames at once

    def offer(self, data: bytes) -> None:
        """Keep frame ``data`` as the latest (the one before it, if not yet painted, is dropped); Refused for a
        frame too large, too soon after the others, or not a JPEG or WebP picture."""
        config = self.painters.config
        self.received += 1
        if len(data) > config.max_live_frame_kb * 1024:
            raise Refused(TOO_BIG, f"frame {self.received} is {len(data) // 1024} KB, more than the limit of "
                          f"{config.max_live_frame_kb} KB")
        now = time.monotonic()
        self._allowance = min(config.max_live_fps, self._allowance + (now - self._checked) * config.max_live_fps)
        self._checked = now
        if self._allowance < 1:
            raise Refused(POLICY, f"more than {config.max_live_fps} frames a second")
        self._allowance = max(self._allowance - 1, 0.0)
        if not _is_picture(data):
            raise Refused(UNSUPPORTED, f"frame {self.received} is not a JPEG or WebP picture")
        self.latest = (self.received, data)
        self.wake.set()

    def configure(self, text: str) -> str | None:
        """Take new settings from the page; the reason they are refused, or None."""
        try:
            self.settings = LiveSettings.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            return f"{where}: {first['msg']}" if where else str(first["msg"])
        self.changed = True
        self.wake.set()
        return None

    def paint(self, painter: Model, style: str, data: bytes, seq: int) -> tuple[bytes, dict[str, float]]:
        """Frame ``data`` painted by ``painter`` at the settings' strength, steadied, as a JPEG; with the
        milliseconds each stage took. Refused for a frame that cannot be decoded or has too many pixels."""
        started = time.perf_counter()
        try:
            picture = images.load_image(data, max_pixels=MAX_FRAME_PIXELS)
        except StylecraftError as exc:
            raise Refused(UNSUPPORTED, shorten(f"frame {seq}: {one_line(exc).removeprefix('bytes: ')}", 120)) \
                from None
        frame = np.asarray(picture)
        decoded = time.perf_counter()
        painted = paint_tensor(painter, images.to_tensor(picture))[0]
        result = (painted.permute(1, 2, 0).clamp(0, 1).mul(255).round().to(torch.uint8)).numpy()
        strength = self.settings.strength
        if strength < 1:
            result = (result * strength + frame * (1 - strength) + 0.5).astype(np.uint8)
        networked = time.perf_counter()
        result = self._steadier(style, picture.size)(frame, result)
        steadied = time.perf_counter()
        encoded = _jpeg(result)
        finished = time.perf_counter()
        return encoded, {"decode_ms": _ms(decoded - started), "network_ms": _ms(networked - decoded),
                         "steady_ms": _ms(steadied - networked), "encode_ms": _ms(finished - steadied)}

    def _steadier(self, style: str, size: tuple[int, int]) -> Any:
        """The steadying of this style at this size (a new one when either changes: there is no flow to follow
        across them)."""
        if self._steady_key != (style, size):
            from ..video.flow import Steadier

            self._steady = Steadier(STABILITY if steady_available() else 0.0, scale=FLOW_SCALE)
            self._steady_key = (style, size)
        return self._steady


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _is_picture(data: bytes) -> bool:
    """Whether ``data`` starts as a JPEG or a WebP file does (decoding tells the rest)."""
    return data.startswith(b"\xff\xd8\xff") or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


@router.websocket("/api/live")
async def live(websocket: WebSocket) -> None:
    """The live camera's socket (the protocol: this module's docstring)."""
    config: StudioConfig = websocket.app.state.config
    refusal = websocket_refusal(websocket.headers, config)
    if refusal:
        await websocket.close(POLICY, refusal)
        return
    await websocket.accept()
    shared: Painters = websocket.app.state.live
    session = Session(shared)
    counted = False
    try:
        await _authenticate(websocket, session, config)
        if shared.open >= config.max_live:
            raise Refused(POLICY, "the live view is open in another tab or window; close it there first")
        shared.open += 1
        counted = True
        await _serve(websocket, session)
    except Refused as exc:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(exc.code, exc.reason)
    except WebSocketDisconnect:
        pass
    finally:
        if counted:
            shared.open -= 1


async def _authenticate(websocket: WebSocket, session: Session, config: StudioConfig) -> None:
    """Refused unless the connection carries the token: the login cookie (or a bearer header), or else a first
    message ``{"token": ...}`` within :data:`TOKEN_SECONDS`."""
    if not config.token or granted(websocket.headers.get("authorization", ""), websocket.cookies.get(COOKIE, ""),
                                   config.token):
        return
    missing = Refused(POLICY, "this studio needs its token: open the link that `stylecraft live` printed")
    try:
        text = await asyncio.wait_for(websocket.receive_text(), TOKEN_SECONDS)
        supplied = json.loads(text).get("token")
    except (asyncio.TimeoutError, KeyError, ValueError, AttributeError):
        raise missing from None
    if not isinstance(supplied, str) or not same_secret(supplied, config.token):
        raise missing


async def _serve(websocket: WebSocket, session: Session) -> None:
    """Receive frames and settings while painting the latest frame, until the page goes or is refused."""
    painting = asyncio.create_task(_paint_loop(websocket, session))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if painting.done():
                painting.result()  # the painter's refusal (a frame that cannot be decoded)
            if message.get("bytes") is not None:
                session.offer(message["bytes"])
            elif message.get("text") is not None:
                problem = session.configure(message["text"])
                if problem:
                    await _send(websocket, session, {"type": "error", "error": problem})
    finally:
        painting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await painting
        await session.settled()


async def _paint_loop(websocket: WebSocket, session: Session) -> None:
    """Paint the latest frame with the current style whenever there is one, off the event loop; a refused
    frame closes the connection from here."""
    painter: Model | None = None
    style = ""
    try:
        while True:
            await session.wake.wait()
            session.wake.clear()
            if session.changed:
                session.changed = False
                loaded = await _load(websocket, session)
                if loaded is not None:
                    style, painter = loaded
            if painter is None or session.latest is None:
                continue
            seq, data = session.latest
            session.latest = None
            picture, timings = await session.off_loop(session.paint, painter, style, data, seq)
            async with session.sending:
                await websocket.send_text(json.dumps({"type": "frame", "seq": seq, **timings}))
                await websocket.send_bytes(picture)
    except Refused as exc:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(exc.code, exc.reason)


async def _load(websocket: WebSocket, session: Session) -> tuple[str, Model] | None:
    """The style the settings ask for, loaded (the page is told it is loading, then ready); None, and the page
    told why, for one that cannot be painted."""
    shared = session.painters
    try:
        style = session.settings.style or shared.default_style()
        await _send(websocket, session, {"type": "status", "text": f"Loading {style}…"})
        painter, backend = await session.off_loop(shared.load, style)
    except StylecraftError as exc:
        await _send(websocket, session, {"type": "error", "error": shorten(in_page_words(str(exc)), 300)})
        return None
    await _send(websocket, session, {"type": "ready", "style": style, "backend": backend,
                                     "steady": steady_available()})
    session.wake.set()  # a frame that came while loading is painted now
    return style, painter


async def _send(websocket: WebSocket, session: Session, message: dict[str, Any]) -> None:
    async with session.sending:
        await websocket.send_text(json.dumps(message))

