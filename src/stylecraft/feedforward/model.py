"""The model file of a trained real-time network: self-describing, loaded without executing code.

A ``torch.save``d dict that ``torch.load(weights_only=True)`` reads: ``format`` and ``version``, the
network's ``state_dict``, a JSON ``metadata`` string (architecture, style name and SHA-256, training
settings, step count) and a small PNG ``thumbnail`` of the style as a uint8 tensor.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import WeightsError, one_line
from ..torchfile import load_safely, save_atomically
from .loaded import StyleModel
from .net import TransformerNet

FORMAT = "stylecraft-transformer"
VERSION = 1


def style_fingerprint(style: Image.Image) -> tuple[str, bytes]:
    """The SHA-256 of the style's pixels and a 96 px PNG thumbnail of it."""
    digest = hashlib.sha256(style.tobytes()).hexdigest()
    thumb = style.copy()
    thumb.thumbnail((96, 96))
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return digest, buffer.getvalue()


def save_model(net: TransformerNet, path: str | os.PathLike[str], metadata: dict[str, Any],
               thumbnail: bytes = b"") -> None:
    """Write the model file atomically."""
    payload = {
        "format": FORMAT, "version": VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "metadata": json.dumps({**metadata, "width": net.width, "residual_blocks": net.residual_blocks}),
        "thumbnail": torch.frombuffer(bytearray(thumbnail), dtype=torch.uint8) if thumbnail else
        torch.zeros(0, dtype=torch.uint8),
    }
    save_atomically(payload, path)


def load_model(path: str | os.PathLike[str]) -> StyleModel:
    """Load and check a model file; every problem is a WeightsError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such model file")
    payload = load_safely(path, "a stylecraft model file")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a stylecraft model file (train one with `stylecraft train`)")
    if payload.get("version") != VERSION:
        raise WeightsError(f"{path}: model file version {payload.get('version')} is not supported "
                           f"(this stylecraft reads version {VERSION})")
    try:
        metadata = json.loads(payload["metadata"])
        net = TransformerNet(width=int(metadata["width"]), residual_blocks=int(metadata["residual_blocks"]))
        net.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: damaged model file ({one_line(exc, 200)})") from exc
    thumbnail = None
    if payload.get("thumbnail") is not None and payload["thumbnail"].numel():
        thumbnail = Image.open(io.BytesIO(payload["thumbnail"].numpy().tobytes()))
    net.eval().requires_grad_(False)
    return StyleModel(net=net, metadata=metadata, thumbnail=thumbnail)
