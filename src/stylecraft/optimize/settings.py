"""What an optimisation run computes: the mode, the start image and every setting, with the defaults the CLI,
the API and the docs share. Where it runs (device, precision) and with which feature network are not here:
see :mod:`stylecraft.runtime` and :class:`stylecraft.features.FeatureNetwork`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .. import checks
from ..choices import STYLE_LOSSES
from ..errors import ConfigError
from ..features.layers import canonical_layer


class Mode(str, Enum):
    """What the optimisation matches: content and style, content alone, or style alone."""

    TRANSFER = "transfer"
    RECONSTRUCT = "reconstruct"
    TEXTURE = "texture"

    @property
    def uses_content(self) -> bool:
        """Whether the mode has a content image (all but a texture)."""
        return self is not Mode.TEXTURE

    @property
    def uses_style(self) -> bool:
        """Whether the mode has style images (all but a reconstruction)."""
        return self is not Mode.RECONSTRUCT


MODES = tuple(mode.value for mode in Mode)
OPTIMIZERS = ("lbfgs", "adam")
#: Start images by name; a picture of one's own is given as ``init_image`` instead. "palette" is the content
#: recoloured to the style's colours (their mean and covariance), so the picture starts in the painting's palette;
#: "one-pass" is the photo painted in one pass with the universal decoders (``apply PAINTING.jpg``), made at the API
#: boundary and handed to the optimiser as a start picture.
INITS = ("noise", "content", "style", "palette", "one-pass")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
#: The split of scale control where none is given: the first style layer taken from the coarse style
#: (the most balanced in the sweep of benchmarks/regions.py --parts scale; docs/regions.md).
SCALE_SPLIT = "relu3_1"
#: Named sets of defaults, from a quick look to a final picture ("standard" is the plain defaults); what each
#: costs and scores on one CPU is measured in docs/quality.md. Options given with a preset override it.
#: "print" (3072 px, 10 scales) keeps the full size's share of the measured presets: 27 iterations there, as
#: standard's 512 px and fine's 29, where 400 would leave it 7 and a soft picture.
PRESETS: dict[str, dict[str, int]] = {
    "draft": {"size": 384, "iterations": 160},
    "standard": {},
    "fine": {"size": 1024, "iterations": 800},
    "print": {"size": 3072, "iterations": 1500},
}


@dataclass(frozen=True)
class TransferConfig:
    """Every setting of an optimisation run, with the defaults the CLI, the API and the docs share.

    Weights of layers and styles are relative: they are divided by their sum. ``init=None`` means the
    content recoloured to the style's palette for a transfer (the content itself with ``preserve_color``) and
    noise for a reconstruction or a texture (:meth:`start`); ``lr=None`` means the
    optimiser's own default (L-BFGS 1.0, Adam 0.02 in [0, 1] pixel units). ``tile``: a scale with a side over
    that many pixels runs tile by tile, exactly, in tiles of that many pixels, even where it would fit whole
    (None: only a scale that would not fit in memory); the rule of a real-time network's ``tile`` too.
    ``color_weight`` weighs the colour term (the picture's pixel colours against the styles', see
    :class:`~stylecraft.objective.Objective`), off with ``preserve_color``; ``style_loss`` is how style is
    compared (``choices.STYLE_LOSSES``). ``scale_split`` turns on scale control (Gatys et al. 2017) for two
    styles: the style layers from that one on (the large shapes) take the first style, coarse, and the layers
    before it (the strokes) the second, fine; the colours and the start image come from the coarse one. Why
    the palette start and the colour term are the defaults:
    docs/quality.md.
    """

    size: int = 512
    style_size: int | None = None
    style_scale: float = 1.0
    width: int | None = None
    height: int | None = None
    iterations: int = 400
    single_scale: bool = False
    scales: int | None = None
    min_size: int = 128
    scale_iterations: tuple[int, ...] | None = None
    optimizer: str = "lbfgs"
    lr: float | None = None
    tile: int | None = None
    init: str | None = None
    content_layers: tuple[str, ...] = ("relu4_2",)
    content_layer_weights: tuple[float, ...] | None = None
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: tuple[float, ...] | None = None
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    color_weight: float = 100.0
    style_loss: str = "gram"
    style_blend: tuple[float, ...] | None = None
    preserve_color: bool = False
    scale_split: str | None = None
    seed: int | None = None

    def with_preset(self, name: str) -> TransferConfig:
        """A copy with the settings of the preset ``name`` (one of ``PRESETS``)."""
        checks.choice("preset", name, tuple(PRESETS))
        return self.replace(**PRESETS[name])

    def replace(self, **changes: object) -> TransferConfig:
        """A copy with ``changes``; unknown names are a ConfigError listing the valid ones."""
        return checks.replace(self, **changes)

    def start(self, mode: Mode) -> str:
        """The start image's name for ``mode``: ``init``, or the default when it is None."""
        if self.init is not None:
            return self.init
        if mode is not Mode.TRANSFER:
            return "noise"
        return "content" if self.preserve_color else "palette"

    def learning_rate(self) -> float:
        """The step size in use: ``lr`` or the optimiser's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def blend(self, count: int) -> list[float]:
        """The shares of ``count`` styles in the colour term and the start image (and in every style layer
        without ``scale_split``)."""
        return [1.0, 0.0] if self.scale_split is not None else checks.normalised(self.style_blend, count)

    def layer_blend(self, model: str) -> dict[str, tuple[float, float]] | None:
        """With ``scale_split``, each style layer's blend of the coarse and the fine style (None without)."""
        if self.scale_split is None:
            return None
        layers = [canonical_layer(layer, model) for layer in self.style_layers]
        split = layers.index(canonical_layer(self.scale_split, model))
        return {layer: (1.0, 0.0) if index >= split else (0.0, 1.0) for index, layer in enumerate(layers)}

    def validate(self, mode: Mode | str = Mode.TRANSFER, styles: int = 1, model: str = "vgg19",
                 content: bool = True) -> None:
        """Raise ConfigError, naming the parameter and the valid choices, for any value that cannot work,
        and for a missing input ``mode`` needs (``content``: whether a content image is given; ``styles``:
        how many style images). Layer names are checked against ``model``'s. The one check of these settings:
        the API calls it before any work, and the loop trusts it."""
        checks.choice("mode", mode, MODES)
        mode = Mode(mode)
        if mode.uses_content and not content:
            raise ConfigError(f"a {mode.value} needs a content image (`content`)")
        if mode.uses_style and not styles:
            raise ConfigError(f"a {mode.value} needs at least one style image (`styles`)")
        checks.choice("optimizer", self.optimizer, OPTIMIZERS)
        checks.choice("style_loss", self.style_loss, STYLE_LOSSES)
        if self.init is not None and self.init not in INITS:
            raise ConfigError(f"`init`: {self.init!r} is not one of {', '.join(INITS)}; give a picture of your own "
                              "as `init_image`")
        self._check_numbers()
        for kind, used in (("content", mode.uses_content), ("style", mode.uses_style)):
            layers = getattr(self, f"{kind}_layers")
            if not layers and used:
                raise ConfigError(f"`{kind}_layers`: give at least one layer")
            canonical = [canonical_layer(layer, model) for layer in layers]
            if len(set(canonical)) != len(canonical):
                raise ConfigError(f"`{kind}_layers`: a layer is named twice")
            checks.weights(f"{kind}_layer_weights", getattr(self, f"{kind}_layer_weights"), len(layers))
        if mode.uses_style:
            checks.weights("style_blend", self.style_blend, styles)
        self._check_split(mode, styles, model)
        self._check_mode(mode)

    def _check_numbers(self) -> None:
        """Every number within its bounds (``checks.BOUNDS``, shared with the CLI and the studio)."""
        for name in ("size", "style_size", "width", "height", "min_size", "tile", "iterations", "scales",
                     "style_scale", "lr", "content_weight", "style_weight", "tv_weight", "color_weight", "seed"):
            checks.within(name, getattr(self, name))
        for count in self.scale_iterations or ():
            checks.within("scale_iterations", count)
        if self.scale_iterations is not None and not self.scale_iterations:
            raise ConfigError("`scale_iterations`: give one number per scale")

    def _check_split(self, mode: Mode, styles: int, model: str) -> None:
        if self.scale_split is None:
            return
        if not mode.uses_style or styles != 2 or self.style_blend is not None:
            raise ConfigError("`scale_split` takes two styles, coarse then fine, and no `style_blend`")
        layers = [canonical_layer(layer, model) for layer in self.style_layers]
        split = canonical_layer(self.scale_split, model)
        if split not in layers[1:]:
            raise ConfigError(f"`scale_split` must be one of the style layers after the first "
                              f"({', '.join(self.style_layers[1:])}), got {self.scale_split!r}")

    def _check_mode(self, mode: Mode) -> None:
        if self.preserve_color and not mode.uses_content:
            raise ConfigError("`preserve_color` needs a content image; a texture has none")
        if self.init in ("content", "palette", "one-pass") and not mode.uses_content:
            raise ConfigError(f"`init` {self.init} needs a content image; a texture has none")
        if self.init in ("style", "palette", "one-pass") and not mode.uses_style:
            raise ConfigError(f"`init` {self.init} needs a style image; a reconstruction has none")
        active = {"content": self.content_weight if mode.uses_content else 0.0,
                  "style": self.style_weight if mode.uses_style else 0.0, "tv": self.tv_weight}
        if not any(active.values()):
            raise ConfigError(f"every loss weight of a {mode.value} is 0 ({', '.join(active)}): nothing to optimise")
