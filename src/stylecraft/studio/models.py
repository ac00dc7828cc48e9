"""The real-time model files a studio offers: a folder of ``.pt`` files from `stylecraft train` and their
``.onnx`` exports, chosen by name, never by path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import shorten
from .store import NotFound

#: Model files the studio lists: from `stylecraft train`, and ONNX exports (run by onnxruntime if installed).
MODEL_SUFFIXES = (".pt", ".onnx")


def list_models(folder: Path) -> list[dict[str, Any]]:
    """The real-time model files (``*.pt``, ``*.onnx``) in ``folder``: name, file size and modification time,
    sorted."""
    if not folder.is_dir():
        return []
    return [{"name": path.name, "bytes": path.stat().st_size, "modified": path.stat().st_mtime}
            for path in sorted(folder.iterdir()) if path.suffix.lower() in MODEL_SUFFIXES and path.is_file()]


def model_path(folder: Path, name: str) -> Path:
    """The model file called ``name`` among those listed in ``folder`` (a name, never a path)."""
    for model in list_models(folder):
        if model["name"] == name:
            path: Path = folder / model["name"]
            return path
    known = ", ".join(m["name"] for m in list_models(folder))
    known = known or "none: put .pt files from `stylecraft train` (or their .onnx exports) in the models folder"
    raise NotFound(f"no model {shorten(name)!r}; available: {known}")
