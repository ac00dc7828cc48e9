"""What the universal decoders are trained with and how a painting is taken in one pass: the settings and their
defaults, free of torch so that the command line's ``--help`` reads them without loading it."""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks
from ..errors import ConfigError

#: The encoder's levels that can have a decoder, shallow to deep.
LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: How a level's photo features take the painting's statistics: whitening and colouring (Li et al. 2017) or
#: AdaIN's per-channel mean and standard deviation (Huang and Belongie 2017), cheaper and weaker.
TRANSFORMS = ("wct", "adain")


@dataclass(frozen=True)
class DecoderConfig:
    """Every setting of the decoders' training, with its default.

    Each step takes ``batch_size`` random ``size`` px crops of the photos, encodes them once to the deepest
    level, decodes every level and scores each picture against the crop: the pixels' mean squared error plus
    ``feature_weight`` times the relative error of the picture's own features at that level (squared error over
    the crop's squared features), which keeps edges and texture that a pixel loss alone blurs. ``width`` scales
    the decoders' inner channels (1.0: the encoder's own widths).
    """

    levels: tuple[str, ...] = LEVELS[:4]
    width: float = 0.5
    size: int = 128
    batch_size: int = 8
    steps: int = 20000
    lr: float = 3e-4
    feature_weight: float = 0.1
    checkpoint_every: int = 100
    seed: int = 0
    workers: int = 1

    def replace(self, **changes: object) -> DecoderConfig:
        """A copy with ``changes``; unknown names are a ConfigError."""
        return checks.replace(self, **changes)

    def validate(self) -> None:
        """ConfigError for values that cannot work."""
        unknown = [level for level in self.levels if level not in LEVELS]
        if not self.levels or unknown:
            raise ConfigError(f"`levels`: use some of {', '.join(LEVELS)}")
        deepest = max(LEVELS.index(level) for level in self.levels)
        if self.size < 2 ** (deepest + 2) or self.size % 16:
            raise ConfigError(f"`size` must be a multiple of 16 and at least {2 ** (deepest + 2)} (got {self.size})")
        if not 0 < self.width <= 1:
            raise ConfigError(f"`width` must be in (0, 1] (got {self.width})")
        for name in ("batch_size", "steps", "checkpoint_every"):
            checks.within(name, getattr(self, name))
        checks.at_least("workers", self.workers, 0)
        for name in ("lr", "feature_weight"):
            checks.non_negative(name, getattr(self, name))


#: Each level's share of ``strength`` where ``strengths`` is not given. relu4_1 moves 0.8 of the way: on the
#: 30 pairs of benchmarks/any_painting.py that kept more of the photo's shapes at no cost in style distance (21
#: pairs meeting the target against 15 with 1.0; docs/any-painting.md).
LEVEL_SHARE = {"relu4_1": 0.8}
#: The largest side painted whole; a larger picture goes through exact tiles of this side (the whole picture's
#: statistics first, from sums over the tiles, then each tile with a halo), which bounds the memory.
TILE = 1024


@dataclass(frozen=True)
class PaintConfig:
    """How a painting is taken in one pass, with the defaults.

    ``levels`` run as a cascade, deepest first (Li et al. 2017): each level's features of the picture so far take
    the painting's statistics by ``transform`` and are decoded, and the next level starts from that picture.
    relu1_1 (which the built-in decoders have) is left out by default: it measured as good as the palette step
    alone for colour, and costs a fifth of the time (docs/any-painting.md).
    ``strength`` (0..1) is how far each level moves from the photo's own features toward the painting's
    statistics, times the level's :data:`LEVEL_SHARE`; ``strengths``, one per level, replaces it level by level
    (``strengths=(1, 1, 1)`` moves every level the whole way). ``style_size`` is the long side the
    painting is read at, which sets the scale of its strokes. ``palette`` moves the finished picture's colours
    to the painting's whole palette (``colour.match_palette``: their distribution, not only their mean and
    covariance), by ``strength``; ``preserve_color`` keeps the photo's colours instead.
    """

    levels: tuple[str, ...] = ("relu4_1", "relu3_1", "relu2_1")
    transform: str = "wct"
    strength: float = 1.0
    strengths: tuple[float, ...] | None = None
    style_size: int = 512
    palette: bool = True
    preserve_color: bool = False
    tile: int = TILE

    def replace(self, **changes: object) -> PaintConfig:
        """A copy with ``changes``; unknown names are a ConfigError."""
        return checks.replace(self, **changes)

    def level_strengths(self) -> list[float]:
        """Each level's strength, in the order of ``levels``."""
        if self.strengths is not None:
            return list(self.strengths)
        return [self.strength * LEVEL_SHARE.get(level, 1.0) for level in self.levels]

    def validate(self) -> None:
        """ConfigError for values that cannot work."""
        checks.choice("transform", self.transform, TRANSFORMS)
        unknown = [level for level in self.levels if level not in LEVELS]
        if not self.levels or unknown:
            raise ConfigError(f"`levels`: use some of {', '.join(LEVELS)}")
        if self.strengths is not None and len(self.strengths) != len(self.levels):
            raise ConfigError(f"`strengths` needs one value per level ({len(self.levels)}), got {len(self.strengths)}")
        for value in [self.strength, *(self.strengths or ())]:
            if not 0 <= value <= 1:  # also refuses NaN
                raise ConfigError(f"a strength must be a number from 0 to 1 (got {value})")
        checks.at_least("style_size", self.style_size, 64)
        checks.at_least("tile", self.tile, 128)
