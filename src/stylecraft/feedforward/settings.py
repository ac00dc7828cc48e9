"""What the real-time networks are trained and run with: the training settings and their defaults, the
networks' widths, the tile size and the runtimes, free of torch so that the command line's ``--help`` reads
them without loading it."""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from ..errors import ConfigError

#: Named widths: the paper's network and a compact one with a quarter of its channels (1/16 of its work).
WIDTHS = {"full": 32, "compact": 8}

#: The largest side run whole unless asked, and the tiles' side beyond it: large enough that 1080p video frames
#: run whole, small enough to bound the memory; a larger picture goes through exact tiles, which cost several
#: whole runs (one pass per normalisation layer). The measurements behind it are in docs/performance.md.
TILE = 2048

#: Where a network runs: torch, ONNX Runtime or OpenVINO; ``auto`` picks ONNX Runtime for an ONNX file.
BACKENDS = ("auto", "torch", "onnx", "openvino")

#: Inference precisions OpenVINO is asked for, by stylecraft's names.
PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting with its default. Layer names and weights mean what they mean for ``transfer``.

    The paper's schedule was 2 epochs of the 83k COCO photos at batch 4 and 256 px (40k steps); ``steps``
    overrides ``epochs``. Content at relu2_2 and style at relu1_2, relu2_2, relu3_3, relu4_3 follow it.
    ``network_width`` is the transformer network's width: full, compact or a number of channels.
    ``saturation_weight`` weighs :func:`.net.saturation_penalty`, which keeps the output tanh out of its flat
    ends (0 turns it off). ``spike_weight`` weighs :func:`.net.spike_penalty`, which keeps the normalisations'
    inputs free of the local spikes that show as blots of one colour (0, the paper's loss, turns it off).
    ``color_weight`` weighs the colour term of ``transfer`` (the distance between the
    pictures' pixel colours and the painting's), which the paper's loss does not have. ``loss_margin`` pixels
    at each side of a crop are left out of the content and style terms (the TV term still covers them): VGG's
    zero padding makes its features there unlike anywhere else, and the network can learn to paint a dotted
    line along the edges to match the style with them. ``teacher_weight`` weighs the L1 distance between the
    network's pictures and a trained teacher network's (``train_network``'s ``teacher``), which a compact network
    learns from a full one in far fewer steps than from the losses alone.
    """

    size: int = 256
    batch_size: int = 4
    epochs: float = 2.0
    steps: int | None = None
    lr: float = 1e-3
    network_width: str = "full"
    content_layers: tuple[str, ...] = ("relu2_2",)
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 1.0
    color_weight: float = 0.0
    saturation_weight: float = 1.0
    spike_weight: float = 0.0
    teacher_weight: float = 10.0
    loss_margin: int = 16
    style_size: int | None = None
    sample_every: int = 500
    checkpoint_every: int = 1000
    seed: int = 0
    workers: int = 0

    def replace(self, **changes: object) -> TrainConfig:
        """A copy with ``changes``; unknown names are a ConfigError."""
        return checks.replace(self, **changes)

    def channels(self) -> int:
        """The network's base width: a named width or a number of channels."""
        if self.network_width in WIDTHS:
            return WIDTHS[self.network_width]
        if str(self.network_width).isdigit() and int(self.network_width) > 0:
            return int(self.network_width)
        raise ConfigError(f"`network_width`: {self.network_width!r} is not one of {', '.join(WIDTHS)} or a number "
                          "of channels")

    def validate(self) -> None:
        """ConfigError for values that cannot work."""
        self.channels()
        if self.size < 32 or self.size % 4:
            raise ConfigError(f"`size` must be a multiple of 4 and at least 32 (got {self.size})")
        for name in ("batch_size", "sample_every", "checkpoint_every", "steps"):
            checks.within(name, getattr(self, name))
        if self.loss_margin < 0 or self.size - 2 * self.loss_margin < 32:
            raise ConfigError(f"`loss_margin` {self.loss_margin} must be >= 0 and leave at least 32 px of the "
                              f"{self.size} px crop (`loss_margin` 0 turns it off)")
        for name in ("epochs", "lr", "content_weight", "style_weight", "tv_weight", "color_weight",
                     "saturation_weight", "spike_weight", "teacher_weight"):
            checks.non_negative(name, getattr(self, name))
