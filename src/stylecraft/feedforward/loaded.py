"""What a loaded real-time network is, whichever backend runs it: the names that apply, model, export and
runtimes share, so that none of them imports another for a type.

:data:`Network` is the torch :class:`.TransformerNet` or a :class:`RuntimeNet` running an export (``runtimes.py``
makes those); :class:`StyleModel` pairs a network with its record. Nothing here imports an optional package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from .exact import Stages
from .net import TransformerNet

#: The names of an export's input and output, and the ONNX metadata key that carries the model's record.
INPUT, OUTPUT = "image", "stylised"
METADATA_KEY = "stylecraft"

#: Runs a compiled part of an exported graph: its inputs by name -> its outputs, in the order asked for.
Run = Callable[[dict[str, NDArray[np.float32]]], Sequence[NDArray[np.float32]]]

#: Compiles a serialised ONNX graph into a :data:`Run` giving the named outputs (a runtime's own compiler).
Compile = Callable[[bytes, list[str]], Run]


class RuntimeNet:
    """A network run by an inference runtime (``runtimes.py`` makes them): takes and returns tensors on the CPU;
    :meth:`stages` gives the exact-tile form of the same network, made by ``stages`` when first asked for."""

    def __init__(self, run: Run, stages: Callable[[], Stages]) -> None:
        self.run = run
        self._make_stages = stages
        self._stages: Stages | None = None

    @property
    def device(self) -> torch.device:
        """Where results come back: always the CPU (the runtimes take and return NumPy arrays)."""
        return torch.device("cpu")

    def stages(self) -> Stages:
        """The network in the form that runs exact tiles (``exact.py``)."""
        if self._stages is None:
            self._stages = self._make_stages()
        return self._stages

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        batch = image.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(self.run({INPUT: batch})[0])


#: A network as loaded: the torch backend's TransformerNet, or a RuntimeNet running an export.
Network = TransformerNet | RuntimeNet


@dataclass
class StyleModel:
    """A trained network with what it was trained on; ``net`` is a TransformerNet or a RuntimeNet running an export.

    A network of several styles has a ``styles`` list of records in ``metadata`` and a thumbnail per style in
    ``thumbnails``; ``thumbnail`` is the (first) style's."""

    net: Network
    metadata: dict[str, Any]
    thumbnail: Image.Image | None = None
    thumbnails: list[Image.Image] = field(default_factory=list)
