"""The real-time models a studio offers, chosen by name, never by path: the built-in styles shipped with
stylecraft (one network of several, ``feedforward.styles``) and a folder of ``.pt`` files from
`stylecraft train` and their ``.onnx`` exports.

The two never share a name: a file is named with its suffix (``udnie.pt``), a built-in style without one
(``udnie``), so a file beside the built-in styles is offered as well, never in their place.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .. import api
from ..errors import ConfigError, StylecraftError, one_line, shorten
from ..feedforward import StyleModel, load_model, styles
from .store import NotFound, Unrunnable

#: Model files the studio lists: from `stylecraft train`, and ONNX exports (run by onnxruntime if installed).
MODEL_SUFFIXES = (".pt", ".onnx")
#: What the page shows of a built-in style's record (its model card).
BUILTIN_FIELDS = ("name", "title", "artist", "year")


def list_models(folder: Path) -> list[dict[str, Any]]:
    """The real-time model files (``*.pt``, ``*.onnx``) in ``folder``: name, file size and modification time,
    sorted."""
    if not folder.is_dir():
        return []
    return [{"name": path.name, "bytes": path.stat().st_size, "modified": path.stat().st_mtime, "builtin": False}
            for path in sorted(folder.iterdir()) if path.suffix.lower() in MODEL_SUFFIXES and path.is_file()]


def builtin_network() -> StyleModel | None:
    """The built-in styles' network, loaded once (None if this installation has none)."""
    path = styles.builtin_file()
    if not path.is_file():
        return None
    return _load(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _load(path: Path, modified: int) -> StyleModel:
    """The network in ``path`` as it was at ``modified`` (a file replaced in place is loaded again)."""
    return load_model(path)


def list_builtin() -> list[dict[str, Any]]:
    """The built-in styles in the network's order: name, title, artist and year of each painting."""
    network = builtin_network()
    if network is None:
        return []
    return [{**{key: record.get(key) for key in BUILTIN_FIELDS}, "builtin": True} for record in styles.records(network)]


def builtin_style(name: str) -> dict[str, Any]:
    """The built-in style called ``name``; NotFound naming the known ones for another name."""
    for record in list_builtin():
        if record["name"] == name:
            return record
    known = ", ".join(record["name"] for record in list_builtin()) or "none in this installation"
    raise NotFound(f"no built-in style {shorten(name)!r}; built-in styles: {known}")


def offered(folder: Path) -> list[dict[str, Any]]:
    """Every model the studio offers: the built-in styles, then the files in ``folder``."""
    return [*list_builtin(), *list_models(folder)]


def model_source(folder: Path, name: str) -> tuple[Path, str | None]:
    """The network file and the style of it that the model called ``name`` paints: a model file listed in
    ``folder`` (its own style), or a built-in style or blend such as ``great-wave:0.7,udnie:0.3`` (the built-in
    network, that style), read by the parser `stylecraft apply` uses. A blend with a bad part is a ConfigError
    saying which; any other name is NotFound."""
    for model in list_models(folder):
        if model["name"] == name:
            path: Path = folder / model["name"]
            return path, None
    try:
        styles.parse_mix(name, [record["name"] for record in list_builtin()])
        return styles.builtin_file(), name
    except ConfigError:
        if ":" in name or "," in name:
            raise
    known = ", ".join(m["name"] for m in offered(folder))
    known = known or "none: put .pt files from `stylecraft train` (or their .onnx exports) in the models folder"
    raise NotFound(f"no model {shorten(name)!r}; available: {known}")


def check_model(folder: Path, name: str) -> None:
    """NotFound or a ConfigError as :func:`model_source` for a name it does not know; Unrunnable (one line, no
    server folder) for a model file that cannot be loaded (damaged, or an ONNX file without ONNX Runtime), so
    that a job is refused when submitted rather than failing when it runs."""
    path, style = model_source(folder, name)
    if style is not None:  # the built-in network, loaded and checked when the studio lists it
        return
    found = path.stat()
    problem = _problem(path, found.st_mtime_ns, found.st_size)
    if problem is not None:
        raise Unrunnable(f"model {shorten(name)!r} cannot be used: {problem}")


@functools.lru_cache(maxsize=32)
def _problem(path: Path, modified: int, size: int) -> str | None:
    """Why the model file at ``path`` (as it was at ``modified``, ``size`` bytes) cannot be loaded, or None: found
    once a version of the file, not at every submission."""
    try:
        api.load_style_model(path, device="cpu")
    except StylecraftError as exc:
        return one_line(exc).replace(f"{path.parent}/", "")
    return None
