"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2015): the settings and the loop.

The loop optimises the pixels of one image so that its VGG activations match a content image at a middle
layer and its Gram matrices match one or more style images over several layers, plus total variation. It
takes tensors and a feature network, never paths; it never prints and never picks a device. Progress goes
to callbacks as :class:`Progress` events (the CLI's progress bar, snapshots and the web page's live view are
all callbacks).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields

import torch

from . import images, losses
from .errors import ConfigError, ImageError
from .features import POOLINGS, VGG, canonical_layer
from .features.weights import BLOCKS, FORMATS

MODES = ("transfer", "reconstruct", "texture")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("noise", "content", "style")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


@dataclass(frozen=True)
class TransferConfig:
    """Every setting of an optimisation run, with the defaults the CLI, the API and the docs share.

    Weights of layers and styles are relative: they are divided by their sum. ``init=None`` means the
    content image for a transfer and noise for a reconstruction or a texture; ``lr=None`` means the
    optimiser's own default (L-BFGS 1.0, Adam 0.02 in [0, 1] pixel units).
    """

    size: int = 512
    style_size: int | None = None
    style_scale: float = 1.0
    width: int | None = None
    height: int | None = None
    iterations: int = 300
    optimizer: str = "lbfgs"
    lr: float | None = None
    init: str | None = None
    model: str = "vgg19"
    weights: str | None = None
    weights_format: str | None = None
    pooling: str = "max"
    content_layers: tuple[str, ...] = ("relu4_2",)
    content_layer_weights: tuple[float, ...] | None = None
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: tuple[float, ...] | None = None
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    style_blend: tuple[float, ...] | None = None
    preserve_color: bool = False
    seed: int | None = None
    device: str = "auto"

    def replace(self, **changes: object) -> TransferConfig:
        """A copy with ``changes``; unknown names are a ConfigError listing the valid ones."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r}; valid options: {', '.join(sorted(names))}")
        changes = {k: tuple(v) if isinstance(v, list) else os.fspath(v) if isinstance(v, os.PathLike) else v
                   for k, v in changes.items()}
        return TransferConfig(**{**asdict(self), **changes})

    def learning_rate(self) -> float:
        """The step size in use: ``lr`` or the optimiser's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def validate(self, mode: str = "transfer", styles: int = 1) -> None:
        """Raise ConfigError, naming the option and the valid choices, for any value that cannot work."""
        _choice("mode", mode, MODES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("pooling", self.pooling, POOLINGS)
        _choice("model", self.model, tuple(BLOCKS))
        if self.weights_format is not None:
            _choice("weights-format", self.weights_format, FORMATS)
        _choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda", "mps"))
        if self.iterations < 1:
            raise ConfigError(f"--iterations must be at least 1 (got {self.iterations})")
        for name in ("size", "style_size", "width", "height"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive number of pixels (got {value})")
        for name in ("content_weight", "style_weight", "tv_weight", "style_scale", "lr"):
            value = getattr(self, name)
            if value is not None:
                _non_negative(name, value)
        if self.style_scale <= 0 or (self.lr is not None and self.lr <= 0):
            raise ConfigError("--style-scale and --lr must be greater than 0")
        for kind in ("content", "style"):
            layers = getattr(self, f"{kind}_layers")
            used = mode != ("texture" if kind == "content" else "reconstruct")
            if not layers and used:
                raise ConfigError(f"--{kind}-layers: give at least one layer")
            canonical = [canonical_layer(layer, self.model) for layer in layers]
            if len(set(canonical)) != len(canonical):
                raise ConfigError(f"--{kind}-layers: a layer is named twice")
            _weights(f"{kind}-layer-weights", getattr(self, f"{kind}_layer_weights"), len(layers))
        if mode != "reconstruct":
            _weights("style-blend", self.style_blend, styles)
        if self.preserve_color and mode == "texture":
            raise ConfigError("--preserve-color needs a content image; a texture has none")
        if self.init == "content" and mode == "texture":
            raise ConfigError("--init content needs a content image; a texture has none")
        if self.init == "style" and mode == "reconstruct":
            raise ConfigError("--init style needs a style image; a reconstruction has none")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed must be between 0 and 2**63 - 1 (got {self.seed})")
        active = {"content": self.content_weight if mode != "texture" else 0.0,
                  "style": self.style_weight if mode != "reconstruct" else 0.0, "tv": self.tv_weight}
        if not any(active.values()):
            raise ConfigError(f"every loss weight of a {mode} is 0 ({', '.join(active)}): nothing to optimise")


def _choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"--{name}: {value!r} is not one of {', '.join(choices)}")


def _non_negative(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0 (got {value})")


def _weights(name: str, values: Sequence[float] | None, count: int) -> None:
    if values is None:
        return
    if len(values) != count:
        raise ConfigError(f"--{name}: {len(values)} weights for {count} items")
    for value in values:
        _non_negative(name.replace("-", "_"), value)
    if sum(values) <= 0:
        raise ConfigError(f"--{name}: at least one weight must be greater than 0")


def _normalised(values: Sequence[float] | None, count: int) -> list[float]:
    values = list(values) if values is not None else [1.0] * count
    total = sum(values)
    return [v / total for v in values]


@dataclass
class Progress:
    """What a callback receives after every iteration.

    ``losses`` holds the weighted total and each term ("content", "style", "tv", and per layer
    "content:relu4_2", "style:relu1_1", ...). ``image()`` returns the current picture as a (1, 3, H, W)
    tensor in [0, 1] on the CPU; it costs a copy, so callbacks call it only when they need it.
    """

    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed: float
    image: Callable[[], torch.Tensor]


@dataclass
class Result:
    """The picture and how it was made: history of every loss term, the seed, and why it stopped early."""

    image: torch.Tensor
    iterations: int
    history: list[dict[str, float]] = field(default_factory=list)
    seed: int = 0
    stopped: str | None = None
    elapsed: float = 0.0
    settings: dict = field(default_factory=dict)


def style_canvas(config: TransferConfig, content_size: tuple[int, int] | None,
                 style_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) to resize a style image to: ``style_size``, or ``style_scale`` times the canvas."""
    if config.style_size is not None:
        long_side = config.style_size
    else:
        canvas = max(content_size) if content_size else config.size
        long_side = max(1, round(canvas * config.style_scale))
    return images.fit_long_side(*style_size, long_side)


def _check_size(image: torch.Tensor, net: VGG, what: str) -> None:
    height, width = image.shape[-2:]
    if min(height, width) < net.min_size:
        raise ImageError(f"the {what} is {width} x {height} px at this size, too small for layer "
                         f"{net.names[-1]} (it needs at least {net.min_size} px per side); "
                         "use a larger --size or shallower layers")


def _weighted(parts: dict[str, torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    return sum(w * v for v, w in zip(parts.values(), weights, strict=True))


def _noise(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    return (0.5 + 0.15 * torch.randn(shape, generator=generator)).clamp(0, 1)


def _initial_image(config: TransferConfig, mode: str, shape: torch.Size, content: torch.Tensor | None,
                   styles: Sequence[torch.Tensor], init: torch.Tensor | None,
                   generator: torch.Generator) -> torch.Tensor:
    size = (shape[-1], shape[-2])
    if init is not None:
        return images.resize(init.cpu(), size)
    choice = config.init or ("content" if mode == "transfer" else "noise")
    if choice == "noise":
        return _noise(shape, generator)
    if choice == "content" and content is not None:
        return content.detach().cpu().clone()
    if choice == "style" and styles:
        return images.resize(styles[0].detach().cpu(), size)
    raise ConfigError(f"--init {choice!r}: give noise, content, style or the path of an image")


def _make_optimizer(config: TransferConfig, pixels: torch.Tensor) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam([pixels], lr=config.learning_rate())
    # One function evaluation per step() call, so that every iteration reports progress; tolerances of 0
    # stop torch from ending the run early because relative losses have small gradients per pixel.
    return torch.optim.LBFGS([pixels], lr=config.learning_rate(), max_iter=1, history_size=100,
                             tolerance_grad=0.0, tolerance_change=0.0)


def stylise(config: TransferConfig, net: VGG, *, content: torch.Tensor | None = None,
            styles: Sequence[torch.Tensor] = (), init: torch.Tensor | None = None,
            canvas: tuple[int, int] | None = None, mode: str = "transfer",
            callbacks: Sequence[Callable[[Progress], None]] = (), seed: int = 0) -> Result:
    """Run the optimisation and return its Result.

    ``content`` and each of ``styles`` are (1, 3, H, W) tensors in [0, 1] already at their working size, on
    the network's device. ``init`` is a starting image (resized to the canvas) or None for the mode's default
    (``config.init`` may name "noise", "content" or "style"). ``canvas`` (width, height) sets a texture's size.
    A non-finite loss stops the run with the last good image; Ctrl-C stops it with the current one.
    """
    config.validate(mode, len(styles))
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    content_weight = config.content_weight if mode != "texture" else 0.0
    style_weight = config.style_weight if mode != "reconstruct" else 0.0
    content_layers = [canonical_layer(n, net.model) for n in config.content_layers] if content_weight else []
    style_layers = [canonical_layer(n, net.model) for n in config.style_layers] if style_weight else []
    content_weights = _normalised(config.content_layer_weights, len(config.content_layers))
    style_weights = _normalised(config.style_layer_weights, len(config.style_layers))

    if mode != "texture" and content is None:
        raise ConfigError(f"{mode} needs a content image")
    if mode != "reconstruct" and not styles:
        raise ConfigError(f"{mode} needs at least one style image")
    if content is not None and mode != "texture":
        shape = content.shape
    else:
        width, height = canvas or images.fit_long_side(styles[0].shape[-1], styles[0].shape[-2], config.size)
        shape = torch.Size((1, 3, height, width))
    original_content = content
    if config.preserve_color:
        luminance = images.luminance(content)
        styles = [images.match_luminance(images.luminance(s), luminance) for s in styles]
        content = luminance

    with torch.no_grad():
        targets: dict[str, torch.Tensor] = {}
        if content_layers:
            _check_size(content, net, "content image")
            targets.update(net(content, content_layers))
        if style_layers:
            blend = _normalised(config.style_blend, len(styles))
            for style, share in zip(styles, blend, strict=False):
                _check_size(style, net, "style image")
                for name, feats in net(style, style_layers).items():
                    gram = losses.gram_matrix(feats) * share
                    key = f"gram:{name}"
                    targets[key] = targets[key] + gram if key in targets else gram

    start = _initial_image(config, mode, shape, content, styles, init, generator).to(device)
    _check_size(start, net, "image")
    pixels = start.contiguous().clone().requires_grad_(True)
    optimizer = _make_optimizer(config, pixels)
    layers = list(dict.fromkeys(content_layers + style_layers))
    state: dict = {"good": start.detach().clone(), "losses": {}, "finite": True}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        feats = net(pixels, layers) if layers else {}
        terms: dict[str, torch.Tensor] = {}
        total = pixels.new_zeros(())
        if content_layers:
            parts = {n: losses.content_loss(feats[n], targets[n]) for n in content_layers}
            terms.update({f"content:{n}": v for n, v in parts.items()})
            terms["content"] = content_weight * _weighted(parts, content_weights)
            total = total + terms["content"]
        if style_layers:
            parts = {n: losses.style_loss(feats[n], targets[f"gram:{n}"]) for n in style_layers}
            terms.update({f"style:{n}": v for n, v in parts.items()})
            terms["style"] = style_weight * _weighted(parts, style_weights)
            total = total + terms["style"]
        if config.tv_weight:
            terms["tv"] = config.tv_weight * losses.total_variation(pixels)
            total = total + terms["tv"]
        terms["total"] = total
        state["losses"] = {k: float(v.detach()) for k, v in terms.items()}
        state["finite"] = math.isfinite(state["losses"]["total"])
        if state["finite"]:
            state["good"] = pixels.detach().clone()
            total.backward()
        else:
            pixels.grad = torch.zeros_like(pixels)
        return total

    def current() -> torch.Tensor:
        image = pixels.detach().clamp(0, 1)
        if config.preserve_color:
            image = images.restore_colour(image, original_content)
        return image.cpu()

    history: list[dict[str, float]] = []
    began = time.perf_counter()
    stopped = None
    done = 0
    try:
        for iteration in range(1, config.iterations + 1):
            optimizer.step(closure)
            if not state["finite"]:
                stopped = f"the loss became {state['losses']['total']} at iteration {iteration}"
                with torch.no_grad():
                    pixels.copy_(state["good"])
                break
            if config.optimizer == "adam":
                with torch.no_grad():
                    pixels.clamp_(0, 1)
            done = iteration
            record = {"iteration": iteration, "elapsed": time.perf_counter() - began, **state["losses"]}
            history.append(record)
            event = Progress(iteration, config.iterations, state["losses"], record["elapsed"], current)
            for callback in callbacks:
                callback(event)
    except KeyboardInterrupt:
        stopped = "interrupted"
        with torch.no_grad():
            if not torch.isfinite(pixels).all():
                pixels.copy_(state["good"])
    return Result(image=current(), iterations=done, history=history, seed=seed, stopped=stopped,
                  elapsed=time.perf_counter() - began)
