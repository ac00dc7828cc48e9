"""The studio's settings: where its data lives, who may use it, and its limits (the CLI's defaults)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data() -> Path:
    """The default data folder: ``$XDG_DATA_HOME/stylecraft/studio`` (``~/.local/share/...``)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "stylecraft" / "studio"


@dataclass(frozen=True)
class StudioConfig:
    """Where the studio keeps its data, who may use it and its limits."""

    data: Path = field(default_factory=default_data)
    db: Path | None = None
    models: Path | None = None
    token: str | None = None
    device: str = "auto"
    max_upload_mb: float = 25.0
    max_pixels: int = 50_000_000
    max_queue: int = 20
    max_styles: int = 4
    max_size: int = 2048
    max_iterations: int = 5000
    preview_every: int = 10
    #: Bound to a loopback address: requests must name localhost (a defence against DNS rebinding).
    loopback: bool = True
    #: Further host names accepted when ``loopback`` is set.
    extra_hosts: tuple[str, ...] = ()

    @property
    def models_folder(self) -> Path:
        """The folder listed for real-time models (default: ``models`` in the data folder)."""
        return Path(self.models) if self.models else Path(self.data) / "models"

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
