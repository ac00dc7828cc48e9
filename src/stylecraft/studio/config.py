"""The studio's settings: where its data lives, who may use it and its limits (the CLI's defaults).

A StudioConfig checks itself when made, so a studio never starts with settings it cannot honour (a token
that no browser can send, a NaN limit, a limit so large that its bytes or seconds overflow).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import checks
from ..choices import ENGINES, MAX_PIXELS
from ..errors import ConfigError, shorten


def default_data() -> Path:
    """The default data folder: ``$XDG_DATA_HOME/stylecraft/studio`` (``~/.local/share/...``)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "stylecraft" / "studio"


#: The shortest token accepted: long enough that guessing it over HTTP is hopeless.
MIN_TOKEN_LENGTH = 12
#: The largest value each numeric setting can mean: an upload of a TiB, a quota of a PiB, a century kept,
#: the largest picture the library opens (no limit beyond these does anything, and they keep bytes finite).
MOST = {"max_upload_mb": 2**20, "max_pixels": MAX_PIXELS, "max_video_mb": 2**20,
        "max_video_seconds": 24 * 3600, "max_video_pixels": MAX_PIXELS, "max_queue": 1_000_000,
        "max_styles": 100, "max_iterations": 1_000_000, "max_storage_mb": 2**30,
        "keep_uploads_hours": 100 * 365 * 24, "max_decoding": 64, "preview_every": 1_000_000,
        "header_timeout": 3600, "keep_alive": 3600, "max_connections": 65536, "max_live": 64,
        "max_live_frame_kb": 64 * 1024, "max_live_fps": 240}
#: The backends that paint the live view ("auto": the fastest one installed, ``studio.live.fastest_backend``).
LIVE_BACKENDS = ("auto", "torch", "onnx", "openvino")


@dataclass(frozen=True)
class StudioConfig:
    """Where the studio keeps its data, who may use it and its limits."""

    data: Path = field(default_factory=default_data)
    db: Path | None = None
    models: Path | None = None
    token: str | None = None
    device: str = "auto"
    #: The address the server listens on; a loopback one needs no token, and requests must then name
    #: localhost or this address (a defence against DNS rebinding).
    host: str = "127.0.0.1"
    max_upload_mb: float = 25.0
    #: The most pixels an upload and a result may have: a job's size may be anything its picture fits in.
    max_pixels: int = 50_000_000
    #: Videos: the largest upload, the longest, and the most pixels a frame may have (a job's too).
    max_video_mb: float = 200.0
    max_video_seconds: float = 60.0
    max_video_pixels: int = 1920 * 1080
    max_queue: int = 20
    max_styles: int = 4
    max_iterations: int = 5000
    #: The quota of uploads and results on disk.
    max_storage_mb: float = 5000.0
    #: Uploads that no job uses are removed after this many hours.
    keep_uploads_hours: float = 24.0
    #: Uploads decoded at once (each can take hundreds of MB while it is decoded); more wait their turn.
    max_decoding: int = 2
    preview_every: int = 10
    #: Slow and idle clients: seconds a request's headers may take to arrive, seconds a connection may stay
    #: idle after a response, and the most connections open at once (a page uses a few, and one for events).
    header_timeout: float = 5.0
    keep_alive: int = 5
    max_connections: int = 100
    #: Further host names accepted when the host is a loopback address.
    extra_hosts: tuple[str, ...] = ()
    #: Where jobs run: "local" (one at a time, in this process) or "ray" (several at once on a Ray cluster at
    #: ``address``: "auto" joins the running one, None starts one here), ``workers`` at once (default: as many
    #: as the cluster has room for) with ``gpus_per_worker`` GPUs each.
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    #: The live camera page: the backend that paints it, the live connections open at once for the token
    #: (the studio's one, or none), and the largest frame (a 1280x720 JPEG is 100-400 KB) and frame rate a
    #: connection may send.
    live_backend: str = "auto"
    max_live: int = 1
    max_live_frame_kb: int = 2048
    max_live_fps: int = 60
    #: HTTPS: the certificate chain and its private key (PEM files), both or neither. Browsers give a page the
    #: camera only in a secure context: HTTPS, or http on localhost.
    certfile: Path | None = None
    keyfile: Path | None = None

    def __post_init__(self) -> None:
        for name, most in MOST.items():
            value = getattr(self, name)
            if not 0 < value <= most:  # NaN compares false, so it is refused too
                raise ConfigError(f"`{name}` must be greater than 0 and at most {most:,}, not {shorten(repr(value))}")
        if self.token is not None:
            if len(self.token) < MIN_TOKEN_LENGTH:
                raise ConfigError(f"the token must be at least {MIN_TOKEN_LENGTH} characters (try: python -c "
                                  "'import secrets; print(secrets.token_urlsafe())')")
            if not (self.token.isascii() and self.token.isprintable()) or " " in self.token:
                raise ConfigError("the token may hold only printable ASCII characters without spaces, so that a "
                                  "browser can send it in a link and a cookie")
        checks.choice("engine", self.engine, ENGINES)
        if self.engine == "local" and (self.address is not None or self.workers is not None or self.gpus_per_worker):
            raise ConfigError("`address`, `workers` and `gpus_per_worker` go with `engine` ray")
        checks.at_least("workers", self.workers, 1)
        checks.non_negative("gpus_per_worker", self.gpus_per_worker)
        checks.choice("live_backend", self.live_backend, LIVE_BACKENDS)
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError("`certfile` and `keyfile` go together: HTTPS needs the certificate and its key")
        for name in ("certfile", "keyfile"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"`{name}` {path}: no such file")
        if not self.loopback and not self.token:
            raise ConfigError(f"host {self.host} can be reached from other machines: give a token "
                              "(`token`, or STYLECRAFT_TOKEN); every request will need it")

    @property
    def loopback(self) -> bool:
        """Whether the studio listens on this machine only."""
        return is_loopback(self.host)

    @property
    def host_names(self) -> tuple[str, ...]:
        """The names a request's Host header may give when the studio listens on a loopback address."""
        return ("localhost", "127.0.0.1", "::1", self.host.strip("[]"), *self.extra_hosts)

    @property
    def scheme(self) -> str:
        """How the studio is reached: "https" with a certificate, else "http"."""
        return "https" if self.certfile else "http"

    @property
    def models_folder(self) -> Path:
        """The folder listed for real-time models (default: ``models`` in the data folder)."""
        return Path(self.models) if self.models else Path(self.data) / "models"

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_video_bytes(self) -> int:
        """The video upload limit in bytes."""
        return int(self.max_video_mb * 1024 * 1024)

    @property
    def max_storage_bytes(self) -> int:
        """The storage quota in bytes."""
        return int(self.max_storage_mb * 1024 * 1024)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
