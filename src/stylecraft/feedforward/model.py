"""The model file of a trained real-time network: self-describing, loaded without executing code.

A ``torch.save``d dict that ``torch.load(weights_only=True)`` reads: ``format`` and ``version``, the
network's ``state_dict``, a JSON ``metadata`` string (architecture, style name and SHA-256, training
settings, step count) and a small PNG ``thumbnail`` of the style as a uint8 tensor.

A network of several styles (``net.styles`` > 1) keeps the same layout: its metadata has a ``styles`` list,
one record per style in the order of the normalisation tables' rows (each with at least a ``name``), and
``thumbnails`` holds one PNG per style. Weights may be stored in float16 (``half``): the built-in styles ship
that way, and loading gives float32 as always.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
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


def _png_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def _png(tensor: torch.Tensor | None) -> Image.Image | None:
    return Image.open(io.BytesIO(tensor.numpy().tobytes())) if tensor is not None and tensor.numel() else None


def save_model(net: TransformerNet, path: str | os.PathLike[str], metadata: dict[str, Any],
               thumbnails: Sequence[bytes] = (), half: bool = False) -> None:
    """Write the model file atomically: ``thumbnails`` holds a PNG per style (or none), ``metadata`` a
    ``styles`` list of records for a network of several styles; ``half`` stores the weights in float16."""
    styles = metadata.get("styles")
    if net.styles > 1 and (not isinstance(styles, list) or len(styles) != net.styles):
        raise ValueError(f"a network of {net.styles} styles needs a `styles` list of {net.styles} records")
    dtype = torch.float16 if half else torch.float32
    payload = {
        "format": FORMAT, "version": VERSION,
        "state_dict": {k: v.detach().cpu().to(dtype) for k, v in net.state_dict().items()},
        "metadata": json.dumps({**metadata, "width": net.width, "residual_blocks": net.residual_blocks}),
        "thumbnail": _png_tensor(thumbnails[0] if thumbnails else b""),
        "thumbnails": [_png_tensor(data) for data in thumbnails],
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
        styles = metadata.get("styles")
        net = TransformerNet(width=int(metadata["width"]), residual_blocks=int(metadata["residual_blocks"]),
                             styles=len(styles) if isinstance(styles, list) else 1)
        net.load_state_dict(payload["state_dict"])
        thumbnails = [_png(tensor) for tensor in payload.get("thumbnails") or [payload.get("thumbnail")]]
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
        raise WeightsError(f"{path}: damaged model file ({one_line(exc, 200)})") from exc
    net.eval().requires_grad_(False)
    return StyleModel(net=net, metadata=metadata, thumbnail=thumbnails[0] if thumbnails else None,
                      thumbnails=[t for t in thumbnails if t is not None])
