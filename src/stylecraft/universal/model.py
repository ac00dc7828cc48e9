"""The decoders' file: a set of decoders, float16, with its card (what it was trained on, how, how well).

The built-in set ships as package data (``builtin/decoders.pt``); a set trained by the user is the same kind of
file. A training checkpoint (:func:`.train.checkpoint`) loads too, so a run can be tried before it ends.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from ..features import VGG, FeatureNetwork
from ..runtime import Runtime
from ..torchfile import load_safely, save_atomically
from .decoders import Decoders, level_index
from .paint import Painter

#: What a decoders file says it is.
FORMAT = "stylecraft-decoders"


def builtin_file() -> Path:
    """Where the built-in decoders are installed."""
    return Path(str(resources.files(__package__) / "builtin" / "decoders.pt"))


def save_decoders(decoders: Decoders, path: str | os.PathLike[str], card: dict[str, Any]) -> None:
    """Write ``decoders`` as float16 with ``card``, atomically."""
    state = {k: v.detach().cpu().half() for k, v in decoders.state_dict().items()}
    save_atomically({"format": FORMAT, "decoders": decoders.record(), "state_dict": state, "card": card}, path)


def load_decoders(path: str | os.PathLike[str] | None = None) -> tuple[Decoders, dict[str, Any]]:
    """The decoders of a file (the built-in set by default) and their card."""
    path = builtin_file() if path is None else Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such decoders file")
    found = load_safely(path, "a stylecraft decoders file")
    if not isinstance(found, dict) or "state_dict" not in found or "decoders" not in found:
        raise WeightsError(f"{path}: not a stylecraft decoders file")
    card = found.get("card") or {"steps": found.get("step")}
    return Decoders.from_record(found["decoders"], found["state_dict"]), card


def encoder_for(decoders: Decoders, device: torch.device) -> VGG:
    """VGG-19 with the default weights (the decoders were trained on its features), to the deepest level."""
    deepest = max(decoders.levels, key=level_index)
    return FeatureNetwork().build([deepest], device)


def load_painter(path: str | os.PathLike[str] | None = None, runtime: Runtime | None = None) -> Painter:
    """A :class:`.Painter` with the decoders of ``path`` (default: the built-in set) on ``runtime`` (default:
    the CPU in fp32)."""
    runtime = runtime or Runtime(torch.device("cpu"))
    decoders, _ = load_decoders(path)
    return Painter(encoder_for(decoders, runtime.device), decoders.to(runtime.device), runtime)
