"""The installed stylecraft version."""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    """The installed stylecraft version."""
    try:
        return metadata.version("stylecraft")
    except metadata.PackageNotFoundError:
        return "0+unknown"
