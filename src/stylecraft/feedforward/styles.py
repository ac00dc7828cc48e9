"""Styles by name: the built-in styles shipped with stylecraft, and the styles of any network of several.

The built-in styles are one network of several styles (Dumoulin et al. 2017; ``net.py``), shipped as package
data (``builtin/styles.pt``, float16) with a record per painting, its model card: the painting's title, artist,
year and provenance, and how its row was trained. A style is asked for by name (``great-wave``) or as a blend
(``great-wave:0.7,udnie:0.3``); :func:`open_model` turns a model file or such a name into the one-style model
that apply, video, export and the studio run. Everything that takes a network asks here, never for a path.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .. import checks
from ..errors import ConfigError, WeightsError
from .loaded import StyleModel
from .model import load_model
from .net import TransformerNet


def builtin_file() -> Path:
    """Where the built-in styles' network is installed (it may be missing in a source tree being built)."""
    return Path(str(resources.files(__package__) / "builtin" / "styles.pt"))


def painting_file(name: str) -> Path:
    """The painting of the built-in style ``name`` (512 px, shipped beside the network), for the studio to show
    and the optimiser to paint with; a ConfigError naming the known styles for another name."""
    known = names(load_builtin())
    if name not in known:
        raise ConfigError(f"unknown style {name!r}; known styles: {', '.join(known)}")
    return builtin_file().with_name(f"{name}.jpg")


def load_builtin() -> StyleModel:
    """The built-in styles' network, all its styles (a WeightsError if this installation has none)."""
    path = builtin_file()
    if not path.is_file():
        raise WeightsError("this installation of stylecraft has no built-in styles (stylecraft/feedforward/builtin/"
                           "styles.pt is missing)")
    return as_builtin(load_model(path))


def as_builtin(model: StyleModel) -> StyleModel:
    """``model`` (a network of the built-in styles: the shipped one, or a candidate to ship) marked as painting
    the built-in paintings, which :func:`palette_paintings` then finds; its styles and blends keep the mark, and
    so does its ONNX export."""
    model.metadata["builtin"] = True
    return model


def palette_paintings(model: StyleModel) -> list[tuple[Path, float]]:
    """The shipped paintings a built-in style or blend paints, each with its share (for the palette step of
    ``api.apply_many``); none for another network, which ships no painting."""
    if not model.metadata.get("builtin"):
        return []
    blend = model.metadata.get("blend") or {names(model)[0]: 1.0}
    return [(builtin_file().with_name(f"{name}.jpg"), float(share)) for name, share in blend.items()]


def records(model: StyleModel) -> list[dict[str, Any]]:
    """The record of each style a model paints, in its network's order (a one-style model: one record)."""
    styles = model.metadata.get("styles")
    if isinstance(styles, list):
        return styles
    return [{"name": model.metadata.get("style_name") or Path(str(model.metadata.get("style", "style"))).stem}]


def names(model: StyleModel) -> list[str]:
    """The names of the styles a model paints."""
    return [str(record["name"]) for record in records(model)]


def parse_mix(spec: str, known: Sequence[str]) -> list[float]:
    """One share per style of ``known`` (summing to 1) from ``name`` or ``name:weight,name:weight,...`` (a name
    alone weighs 1; :func:`checks.blend` reads the weights); an unknown name is a ConfigError naming the known
    ones."""
    parts = [(name, weight) for name, _, weight in (part.strip().partition(":") for part in spec.split(","))]
    for name, _ in parts:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"unknown style {name!r}; {hint}known styles: {', '.join(known)}")
    mix = [0.0] * len(known)
    for (name, _), share in zip(parts, checks.blend(parts, f"`style` {spec!r}"), strict=True):
        mix[known.index(name)] += share
    return mix


def painting(model: StyleModel, spec: str | None = None) -> StyleModel:
    """The one-style model painting ``spec`` (a style's name or a blend; default: the first style) of a network
    of several styles; a one-style model is returned as it is."""
    net = model.net
    if not isinstance(net, TransformerNet) or net.styles == 1:
        if spec is not None:
            raise ConfigError(f"`style` {spec!r}: this network paints one style ({names(model)[0]})")
        return model
    known = names(model)
    mix = parse_mix(spec or known[0], known)
    blend = {name: round(weight, 6) for name, weight in zip(known, mix, strict=True) if weight > 0}
    first = max(range(len(mix)), key=mix.__getitem__)
    metadata = {**{k: v for k, v in model.metadata.items() if k != "styles"}, "style_name": spec or known[0],
                "blend": blend, "style_records": [r for r, w in zip(records(model), mix, strict=True) if w > 0]}
    thumbnail = model.thumbnails[first] if first < len(model.thumbnails) else model.thumbnail
    return StyleModel(net=net.painting(mix), metadata=metadata, thumbnail=thumbnail,
                      thumbnails=[thumbnail] if thumbnail else [])


def open_model(model: str | os.PathLike[str], style: str | None = None) -> StyleModel:
    """A model file (``style`` picks or blends the styles of a network of several), or a built-in style's name
    or blend, as the one-style model that paints it. A name that is neither is a ConfigError naming the
    built-in styles."""
    path = Path(model)
    if path.exists() or path.suffix.lower() in (".pt", ".pth", ".ckpt", ".onnx") or os.sep in str(model):
        loaded = load_model(path)
        shipped = builtin_file()
        is_builtin = path.exists() and shipped.exists() and path.samefile(shipped)
        return painting(as_builtin(loaded) if is_builtin else loaded, style)
    if style is not None:
        raise ConfigError(f"`style` goes with a network file of several styles; a built-in style is named in place "
                          f"of the model ({model} is no file)")
    builtin = load_builtin()
    try:
        return painting(builtin, str(model))
    except ConfigError as exc:
        raise ConfigError(f"{model}: no such model file, and not a built-in style ({exc})") from None
