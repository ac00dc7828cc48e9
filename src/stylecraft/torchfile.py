"""PyTorch files, read safely and written atomically: weight files, model files and training checkpoints."""

from __future__ import annotations

import io
import os

import torch

from . import files
from .errors import WeightsError


def load_safely(path: str | os.PathLike[str], kind: str) -> object:
    """``torch.load(weights_only=True)`` onto the CPU, so no code in the file runs; a file that does not load
    is a one-line WeightsError "PATH: not KIND (why)"."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own message suggests weights_only=False, which would run the file's code
        raise WeightsError(f"{path}: not {kind} (it does not load as a safe PyTorch file)") from exc


def save_atomically(payload: object, path: str | os.PathLike[str], mode: int | None = None) -> None:
    """``torch.save`` to ``path``: the complete new file or the old one untouched (``mode``: its permissions,
    default what the umask allows)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    files.atomic_write_bytes(path, buffer.getvalue(), mode)
