"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2015): the settings and the loop.

The loop optimises the pixels of one image so that its VGG activations match a content image at a middle
layer and its Gram matrices match one or more style images over several layers, plus total variation. It
takes tensors and a feature network, never paths; it never prints and never picks a device. Progress goes
to callbacks as :class:`Progress` events (the CLI's progress bar, snapshots and the web page's live view are
all callbacks).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F

from . import images
from .errors import ConfigError
from .features import POOLINGS, VGG, canonical_layer
from .features.weights import BLOCKS, FORMATS
from .perceptual import Objective, Targets, check_size, normalised

MODES = ("transfer", "reconstruct", "texture")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("noise", "content", "style")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
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
    iterations: int = 400
    single_scale: bool = False
    scales: int | None = None
    min_size: int = 128
    scale_iterations: tuple[int, ...] | None = None
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
    precision: str = "auto"

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
        _choice("precision", self.precision, PRECISIONS)
        if self.min_size < 1 or (self.scales is not None and self.scales < 1):
            raise ConfigError("--min-size and --scales must be at least 1")
        if self.scale_iterations is not None and min(self.scale_iterations, default=0) < 1:
            raise ConfigError("--scale-iterations: every scale needs at least 1 iteration")
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


@dataclass
class Progress:
    """What a callback receives after every iteration.

    ``losses`` holds the weighted total and each term ("content", "style", "tv", and per layer
    "content:relu4_2", "style:relu1_1", ...); reading it waits for the device, so callbacks that do not need
    the values every iteration should not read it every iteration. ``image()`` returns the current picture
    as a (1, 3, H, W) tensor in [0, 1] on the CPU; it costs a copy. ``scale`` counts from 1 to ``scales``
    (coarse to fine) and ``size`` is that scale's (width, height).
    """

    iteration: int
    iterations: int
    elapsed: float
    image: Callable[[], torch.Tensor]
    scale: int = 1
    scales: int = 1
    size: tuple[int, int] = (0, 0)
    record: dict = field(default_factory=dict, repr=False)

    @property
    def losses(self) -> dict[str, float]:
        """The loss terms of this iteration as floats."""
        return {k: float(v) for k, v in self.record.items()
                if k not in ("iteration", "scale", "width", "height", "elapsed")}


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


def schedule(config: TransferConfig, full: tuple[int, int]) -> list[tuple[tuple[int, int], int]]:
    """The coarse-to-fine plan: [((width, height), iterations), ...] from the smallest scale to ``full``.

    Sides grow by sqrt(2) from about ``min_size`` to the full size (``scales`` fixes their number). The
    ``iterations`` are shared out so that small, cheap scales get the most: weights n, n-1, ..., 1 from the
    coarsest to the finest. At 512 px that is 5 scales and about a quarter of the work of the same number of
    full-size steps. ``single_scale`` or an image no larger than ``min_size`` gives one scale.
    """
    width, height = full
    long_side = max(full)
    if config.single_scale:
        count = 1
    elif config.scales is not None:
        count = config.scales
    elif config.scale_iterations is not None:
        count = len(config.scale_iterations)
    else:
        count = 1 + max(0, int(math.floor(2 * math.log2(long_side / config.min_size) + 0.05)))
    sides = [long_side / math.sqrt(2) ** k for k in reversed(range(count))]
    if count > 1 and (config.scales is not None or config.scale_iterations is not None):
        ratio = (long_side / config.min_size) ** (1 / (count - 1))
        sides = [long_side / ratio**k for k in reversed(range(count))]
    sizes = [images.fit_long_side(width, height, round(side)) for side in sides[:-1]] + [full]
    if config.scale_iterations is not None:
        counts = list(config.scale_iterations)
        if len(counts) != count:
            raise ConfigError(f"--scale-iterations: {len(counts)} numbers for {count} scales")
    else:
        shares = list(range(count, 0, -1))
        counts = [max(1, round(config.iterations * share / sum(shares))) for share in shares]
    return list(zip(sizes, counts, strict=True))


def _make_optimizer(config: TransferConfig, pixels: torch.Tensor,
                    previous: torch.optim.Optimizer | None) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam([pixels], lr=config.learning_rate())
        if previous is not None:
            # Warm start: Adam's moment estimates are images too; carry them up to the new scale.
            old = next(iter(previous.state.values()))
            size = pixels.shape[-2:]
            optimizer.state[pixels] = {
                "step": old["step"],
                "exp_avg": F.interpolate(old["exp_avg"], size=size, mode="bilinear", align_corners=False),
                "exp_avg_sq": F.interpolate(old["exp_avg_sq"], size=size, mode="bilinear",
                                            align_corners=False).clamp_min(0),
            }
        return optimizer
    # One function evaluation per step() call, so that every iteration reports progress; tolerances of 0
    # stop torch from ending the run early because relative losses have small gradients per pixel.
    return torch.optim.LBFGS([pixels], lr=config.learning_rate(), max_iter=1, history_size=100,
                             tolerance_grad=0.0, tolerance_change=0.0)


def _closure(objective: Objective, targets: Targets, pixels: torch.Tensor, optimizer: torch.optim.Optimizer,
             terms: dict[str, torch.Tensor]) -> Callable[[], torch.Tensor]:
    """The optimiser's closure: evaluate, keep the terms (detached) in ``terms``, back-propagate."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        values = objective(pixels, targets)
        values["total"].backward()
        terms.clear()
        terms.update({k: v.detach() for k, v in values.items()})
        return values["total"]

    return closure


def stylise(config: TransferConfig, net: VGG, *, content: torch.Tensor | None = None,
            styles: Sequence[torch.Tensor] = (), init: torch.Tensor | None = None,
            canvas: tuple[int, int] | None = None, mode: str = "transfer",
            callbacks: Sequence[Callable[[Progress], None]] = (), seed: int = 0) -> Result:
    """Run the optimisation, coarse to fine, and return its Result.

    ``content`` is a (1, 3, H, W) tensor in [0, 1] at the output size; ``styles`` are at any size (each scale
    resizes them in proportion to its canvas); all on the network's device. ``init`` is a starting image or
    None for the mode's default (``config.init`` may name "noise", "content" or "style"). ``canvas``
    (width, height) sets a texture's size. A non-finite loss stops the run with the last good image; Ctrl-C
    stops it with the current one.
    """
    config.validate(mode, len(styles))
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    objective = Objective(
        net, content_layers=config.content_layers, content_layer_weights=config.content_layer_weights,
        style_layers=config.style_layers, style_layer_weights=config.style_layer_weights,
        content_weight=config.content_weight if mode != "texture" else 0.0,
        style_weight=config.style_weight if mode != "reconstruct" else 0.0, tv_weight=config.tv_weight,
        autocast=autocast(config, device))
    blend = normalised(config.style_blend, len(styles)) if styles else []

    if mode != "texture" and content is None:
        raise ConfigError(f"{mode} needs a content image")
    if mode != "reconstruct" and not styles:
        raise ConfigError(f"{mode} needs at least one style image")
    if mode != "texture":
        full = (content.shape[-1], content.shape[-2])
    else:
        full = canvas or images.fit_long_side(styles[0].shape[-1], styles[0].shape[-2], config.size)
    plan = schedule(config, full)
    total_iterations = sum(count for _, count in plan)
    original_content = content
    if config.preserve_color:
        luminance = images.luminance(content)
        styles = [images.match_luminance(images.luminance(s), luminance) for s in styles]
        content = luminance
    check_every = 1 if device.type == "cpu" or config.optimizer == "lbfgs" else 10

    history: list[dict] = []
    began = time.perf_counter()
    stopped = None
    done = 0
    pixels: torch.Tensor | None = None
    good: torch.Tensor | None = None
    optimizer: torch.optim.Optimizer | None = None

    def current() -> torch.Tensor:
        image = pixels.detach().clamp(0, 1)
        if config.preserve_color:
            image = images.restore_colour(image, images.resize(original_content, _size_of(image)))
        return image.cpu()

    try:
        for scale, (size, count) in enumerate(plan, start=1):
            scaled_content = images.resize(content, size) if content is not None else None
            scaled_styles = [images.resize(s, style_canvas(config, size, _size_of(s))) for s in styles]
            targets = objective.targets(scaled_content, scaled_styles, blend)
            if pixels is None:
                shape = torch.Size((1, 3, size[1], size[0]))
                start = _initial_image(config, mode, shape, scaled_content, scaled_styles, init, generator)
                start = start.to(device)
            else:
                start = images.resize(pixels.detach(), size)
            check_size(start, net, "image")
            pixels = start.contiguous().clone().requires_grad_(True)
            good = pixels.detach().clone()
            optimizer = _make_optimizer(config, pixels, optimizer if config.optimizer == "adam" else None)
            terms: dict[str, torch.Tensor] = {}
            closure = _closure(objective, targets, pixels, optimizer, terms)

            pending: list[dict] = []
            for _ in range(count):
                checking = len(pending) + 1 >= check_every or done + 1 == total_iterations
                before = pixels.detach().clone() if checking else None
                optimizer.step(closure)
                if config.optimizer == "adam":
                    with torch.no_grad():
                        pixels.clamp_(0, 1)
                done += 1
                record = {"iteration": done, "scale": scale, "width": size[0], "height": size[1],
                          "elapsed": time.perf_counter() - began, **terms}
                pending.append(record)
                if checking:
                    # Each loss was evaluated before its step: a finite window vouches for ``before``.
                    bad = _first_non_finite(pending)
                    if bad is not None:
                        stopped = f"the loss became {float(bad['total'])} at iteration {bad['iteration']}"
                        history += _floats(pending[: pending.index(bad)])
                        done = bad["iteration"] - 1
                        with torch.no_grad():
                            pixels.copy_(good)
                        break
                    good = before
                    history += _floats(pending)
                    pending = []
                event = Progress(done, total_iterations, record["elapsed"], current, scale, len(plan), size,
                                 record)
                for callback in callbacks:
                    callback(event)
            if stopped:
                break
            history += _floats(pending)
    except KeyboardInterrupt:
        stopped = "interrupted"
        if pixels is None:
            raise
        with torch.no_grad():
            if not torch.isfinite(pixels).all():
                pixels.copy_(good)
    return Result(image=current(), iterations=done, history=history, seed=seed, stopped=stopped,
                  elapsed=time.perf_counter() - began)


def _size_of(image: torch.Tensor) -> tuple[int, int]:
    return image.shape[-1], image.shape[-2]


def _first_non_finite(records: list[dict]) -> dict | None:
    totals = torch.stack([r["total"] for r in records])
    finite = torch.isfinite(totals)
    if bool(finite.all()):
        return None
    return records[int((~finite).nonzero()[0])]


def _floats(records: list[dict]) -> list[dict]:
    return [{k: float(v) if isinstance(v, torch.Tensor) else v for k, v in r.items()} for r in records]


def autocast(config: TransferConfig, device: torch.device) -> Callable:
    """A context factory: bf16/fp16 autocast for the feature network on CUDA, or nothing."""
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)
