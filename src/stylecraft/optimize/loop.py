"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2015): the loop.

It optimises the pixels of one image so that its VGG activations match a content image at a middle layer
and its Gram matrices match one or more style images over several layers, plus total variation; coarse to
fine, one scale after another (:func:`synthesise`), each scale a run of the optimiser (:func:`_run_scale`)
watched by a guard against non-finite losses (:class:`_Guard`). It takes tensors and an
:class:`~stylecraft.objective.Objective`, never paths; it never prints and never picks a device. Progress goes
to callbacks as :class:`Progress` events (the CLI's progress bar, snapshots and the web page's live view are
all callbacks; their fields are those of every long operation's events, :class:`stylecraft.progress.Event`). A
stop signal (:class:`stylecraft.progress.Stop`) ends it between iterations.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .. import colour, images
from ..errors import ConfigError
from ..features import VGG
from ..objective import Objective, Regions, Targets, check_size
from ..progress import CANCELLED, Stop, requested
from ..tiling import Tiling
from .memory import HISTORY, MemoryPlan
from .schedule import schedule, style_canvas
from .settings import Mode, TransferConfig

Callback = Callable[["Progress"], None]


@dataclass
class Progress:
    """What a callback receives after every iteration.

    ``losses`` holds the weighted total and each term ("content", "style", "tv", and per layer
    "content:relu4_2", "style:relu1_1", ...); reading it waits for the device, so callbacks that do not need
    the values every iteration should not read it every iteration. ``image()`` returns the current picture
    as a (1, 3, H, W) tensor in [0, 1] on the CPU; it costs a copy. ``scale`` counts from 1 to ``scales``
    (coarse to fine) and ``size`` is that scale's (width, height); ``tiles`` is how many tiles each of its
    iterations runs through (1: the whole picture at once).
    """

    iteration: int
    iterations: int
    elapsed: float
    image: Callable[[], torch.Tensor]
    scale: int = 1
    scales: int = 1
    size: tuple[int, int] = (0, 0)
    terms: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    tiles: int = 1

    @property
    def step(self) -> int:
        """The iterations done (``iteration``)."""
        return self.iteration

    @property
    def total(self) -> int:
        """The iterations of the whole run (``iterations``)."""
        return self.iterations

    @property
    def losses(self) -> dict[str, float]:
        """The loss terms of this iteration as floats."""
        return {k: float(v) for k, v in self.terms.items()}

    def notes(self) -> dict[str, str]:
        """The scale (which of how many, and its size) and, when it runs tile by tile, its tiles."""
        notes = {"scale": f"{self.scale}/{self.scales} {self.size[0]}x{self.size[1]}"}
        if self.tiles > 1:
            notes["tiles"] = str(self.tiles)
        return notes

    def record(self) -> dict[str, float]:
        """The iteration as a row of the loss history."""
        return {"iteration": self.iteration, "scale": self.scale, "width": self.size[0],
                "height": self.size[1], "elapsed": self.elapsed, **self.losses}


@dataclass
class Result:
    """The picture and how it was made: history of every loss term, the seed, and why it stopped early
    ("interrupted" by Ctrl-C, "cancelled" by the stop signal, or the fault that ended it)."""

    image: torch.Tensor
    iterations: int
    history: list[dict[str, float]] = field(default_factory=list)
    seed: int = 0
    stopped: str | None = None
    elapsed: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    checkpoint: Checkpoint | None = None


@dataclass
class Checkpoint:
    """Where a run that was stopped (interrupted or cancelled) stands, to go on from exactly there: the
    ``scale`` it was at (from 1), the iterations ``done`` in all, the picture at that scale at full precision
    (``pixels``, (1, 3, H, W), not clamped), the optimiser's ``state`` (its ``state_dict``), the loss
    ``history`` so far and the ``plan`` it followed ([((width, height), iterations), ...])."""

    scale: int
    done: int
    pixels: torch.Tensor
    state: dict[str, Any]
    history: list[dict[str, float]]
    plan: list[tuple[tuple[int, int], int]]

    def payload(self) -> dict[str, Any]:
        """The checkpoint as plain containers and tensors, for ``torch.save`` and a weights-only load."""
        return {"scale": self.scale, "done": self.done, "pixels": self.pixels, "state": self.state,
                "history": self.history, "plan": [[list(size), count] for size, count in self.plan]}

    def problem(self, plan: list[tuple[tuple[int, int], int]]) -> str | None:
        """Why this checkpoint cannot go on along ``plan`` (the run's scales and iterations), or None: another
        plan, iterations done outside the scale it names, pixels of another shape or not finite, an optimiser
        state with a value that is not finite. A damaged or edited file is told here, before any work, rather
        than painting a black picture over a good one."""
        if self.plan != plan:
            return "it followed another plan of scales and iterations"
        if not 1 <= self.scale <= len(plan):
            return f"its scale {self.scale} is not one of the plan's 1 to {len(plan)}"
        before = sum(count for _, count in plan[:self.scale - 1])
        if not before <= self.done <= before + plan[self.scale - 1][1]:
            return (f"{self.done} iterations done is outside its scale's {before} to "
                    f"{before + plan[self.scale - 1][1]}")
        width, height = plan[self.scale - 1][0]
        if self.pixels.dtype != torch.float32 or tuple(self.pixels.shape) != (1, 3, height, width):
            return f"its pixels are {tuple(self.pixels.shape)} {self.pixels.dtype}, not a {width} x {height} picture"
        if not bool(torch.isfinite(self.pixels).all()):
            return "its pixels are not all finite numbers"
        if not all(bool(torch.isfinite(value).all()) for value in _tensors(self.state)):
            return "its optimiser state holds numbers that are not finite"
        return None

    @classmethod
    def from_payload(cls, payload: object) -> Checkpoint:
        """The checkpoint :meth:`payload` gave (a ValueError, KeyError or TypeError for anything else)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("pixels"), torch.Tensor):
            raise ValueError("not a checkpoint")
        plan = [((int(size[0]), int(size[1])), int(count)) for size, count in payload["plan"]]
        return cls(int(payload["scale"]), int(payload["done"]), payload["pixels"], payload["state"],
                   list(payload["history"]), plan)


def _tensors(value: object) -> list[torch.Tensor]:
    """The floating-point tensors anywhere in ``value`` (nested dicts, lists and tuples)."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in _tensors(item)]
    return []


@dataclass(frozen=True)
class Temporal:
    """What ties a video frame to the one before it: that frame's result moved by the motion (``previous``,
    (1, 3, H, W) in [0, 1]), where the motion is ``reliable`` ((1, 1, H, W), 0..1), and the term's
    ``weight``."""

    previous: torch.Tensor
    reliable: torch.Tensor
    weight: float


def build_objective(config: TransferConfig, mode: Mode, net: VGG,
                    autocast: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
                    temporal: Temporal | None = None) -> Objective:
    """The objective of ``config`` for ``mode`` on ``net``: a texture has no content term, a reconstruction
    no style term, and no colour term either when the content's colours are kept; a video frame's
    ``temporal`` term where given."""
    return Objective(
        net, content_layers=config.content_layers, content_layer_weights=config.content_layer_weights,
        style_layers=config.style_layers, style_layer_weights=config.style_layer_weights,
        content_weight=config.content_weight if mode.uses_content else 0.0,
        style_weight=config.style_weight if mode.uses_style else 0.0, tv_weight=config.tv_weight,
        style_loss=config.style_loss,
        color_weight=config.color_weight if mode.uses_style and not config.preserve_color else 0.0,
        temporal_weight=temporal.weight if temporal is not None else 0.0, autocast=autocast,
        layer_blend=config.layer_blend(net.model))


def _noise(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    return (0.5 + 0.15 * torch.randn(shape, generator=generator)).clamp(0, 1)


def _palette(content: torch.Tensor, styles: Sequence[torch.Tensor], blend: Sequence[float],
             regions: Regions | None) -> torch.Tensor:
    """The content recoloured to the styles' palette; with ``regions``, each region to its own style's, and
    the content kept where no mask covers it (masks that overlap share their pixels)."""
    if regions is None:
        return colour.match_colour(content.detach(), styles, blend).cpu()
    masks = regions.masks.to(content.device)
    cover = masks.sum(0, keepdim=True)
    start = content.detach() * (1 - cover).clamp_min(0)
    for mask, style in zip(masks, styles, strict=True):
        start = start + mask / cover.clamp_min(1) * colour.match_colour(content.detach(), style)
    return start.cpu()


def _initial_image(config: TransferConfig, mode: Mode, shape: torch.Size, content: torch.Tensor | None,
                   styles: Sequence[torch.Tensor], blend: Sequence[float], init: torch.Tensor | None,
                   generator: torch.Generator, regions: Regions | None = None) -> torch.Tensor:
    """The start picture: ``init``, or ``config.start(mode)``'s by name (a choice that
    :meth:`TransferConfig.validate` found good for ``mode``'s inputs); with ``regions``, each region's own
    palette."""
    size = (shape[-1], shape[-2])
    if init is not None:
        return images.resize(init.cpu(), size)
    choice = config.start(mode)
    if choice == "noise":
        return _noise(shape, generator)
    if choice == "style":
        return images.resize(styles[0].detach().cpu(), size)
    assert content is not None  # "content" and "palette" are refused for a mode without one
    if choice == "content":
        return content.detach().cpu().clone()
    return _palette(content, styles, blend, regions)


def _make_optimizer(config: TransferConfig, pixels: torch.Tensor, previous: torch.optim.Optimizer | None,
                    history: int = HISTORY) -> torch.optim.Optimizer:
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
    return torch.optim.LBFGS([pixels], lr=config.learning_rate(), max_iter=1, history_size=history,
                             tolerance_grad=0.0, tolerance_change=0.0)


def _closure(objective: Objective, targets: Targets, pixels: torch.Tensor, optimizer: torch.optim.Optimizer,
             terms: dict[str, torch.Tensor], tiling: Tiling | None) -> Callable[[], torch.Tensor]:
    """The optimiser's closure: evaluate and back-propagate (tile by tile with ``tiling``), keeping the terms
    in ``terms``."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        values = objective.evaluate(pixels, targets, tiling)
        terms.clear()
        terms.update(values)
        return values["total"]

    return closure


class _Guard:
    """Keeps the last picture that a finite loss vouched for, checking every ``every`` iterations (each check
    waits for the device), and the loss history of the checked iterations."""

    def __init__(self, pixels: torch.Tensor, every: int, history: list[dict[str, float]]) -> None:
        self.good = pixels.detach().clone()
        self.every = every
        self.history = history
        self.pending: list[Progress] = []

    def due(self, last: bool) -> bool:
        """Whether the coming iteration is checked (``last``: it ends the run)."""
        return len(self.pending) + 1 >= self.every or last

    def check(self, event: Progress, before: torch.Tensor | None) -> Progress | None:
        """Add ``event``; when ``before`` (the picture before its step) is given, check the pending losses and
        return the first non-finite one (its picture is then ``good``), or None."""
        self.pending.append(event)
        if before is None:
            return None
        totals = torch.stack([e.terms["total"] for e in self.pending])
        finite = torch.isfinite(totals)
        if not bool(finite.all()):
            bad = self.pending[int((~finite).nonzero()[0])]
            self.history += [e.record() for e in self.pending[: self.pending.index(bad)]]
            return bad
        # Each loss was evaluated before its step: a finite window vouches for ``before``.
        self.good = before
        self.flush()
        return None

    def flush(self) -> None:
        """Move the pending iterations into the history."""
        self.history += [e.record() for e in self.pending]
        self.pending = []


@dataclass
class _Run:
    """What the scales of one run share: the settings, the objective, the inputs (at full size, on the
    device), the listeners and the count of iterations done."""

    config: TransferConfig
    objective: Objective
    mode: Mode
    content: torch.Tensor | None
    styles: Sequence[torch.Tensor]
    init: torch.Tensor | None
    generator: torch.Generator
    callbacks: Sequence[Callback]
    stop: Stop | None
    memory: MemoryPlan | None
    total: int
    scales: int
    temporal: Temporal | None = None
    regions: Regions | None = None
    began: float = field(default_factory=time.perf_counter)
    done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def tiling(self, size: tuple[int, int]) -> Tiling | None:
        """How the scale of ``size`` runs: tile by tile, or whole (None)."""
        return self.memory.tiling(self.objective.net, size) if self.memory is not None else None

    def start(self, size: tuple[int, int], previous: torch.Tensor | None) -> tuple[torch.Tensor, Targets]:
        """The pixels to optimise at ``size`` (the previous scale's picture, upsampled, or the start image)
        and the targets at that size."""
        config, net = self.config, self.objective.net
        content = images.resize(self.content, size) if self.content is not None else None
        styles = [images.resize(s, style_canvas(config, size, _size_of(s))) for s in self.styles]
        blend = config.blend(len(styles)) if styles else []
        regions = None
        if self.regions is not None:  # the masks at this scale, each source mask at its painting's size
            regions = Regions(images.resize(self.regions.masks, size), tuple(
                None if m is None else images.resize(m, _size_of(s)) for m, s in zip(self.regions.sources, styles,
                                                                                      strict=True)))
        targets = self.objective.targets(content, styles, blend, self.tiling(size), regions)
        if self.temporal is not None:
            targets.previous = images.resize(self.temporal.previous, size)
            targets.reliable = images.resize(self.temporal.reliable, size)
        if previous is None:
            shape = torch.Size((1, 3, size[1], size[0]))
            start = _initial_image(config, self.mode, shape, content, styles, blend, self.init, self.generator,
                                   regions)
            start = start.to(next(net.parameters()).device)
        else:
            start = images.resize(previous.detach(), size)
        check_size(start, net, "image")
        return start.contiguous().clone().requires_grad_(True), targets


def _run_scale(run: _Run, scale: int, size: tuple[int, int], count: int, pixels: torch.Tensor,
               optimizer: torch.optim.Optimizer, targets: Targets, current: Callable[[], torch.Tensor],
               guard: _Guard) -> str | None:
    """``count`` iterations at one scale; return why the run must stop, or None."""
    terms: dict[str, torch.Tensor] = {}
    tiling = run.tiling(size)
    closure = _closure(run.objective, targets, pixels, optimizer, terms, tiling)
    tiles = tiling.count(*size) if tiling is not None else 1
    for _ in range(count):
        before = pixels.detach().clone() if guard.due(run.done + 1 == run.total) else None
        optimizer.step(closure)  # type: ignore[arg-type]  # the stub wants a float; torch's closures return the loss
        if run.config.optimizer == "adam":
            with torch.no_grad():
                pixels.clamp_(0, 1)
        run.done += 1
        event = Progress(run.done, run.total, time.perf_counter() - run.began, current, scale, run.scales, size,
                         dict(terms), tiles)
        bad = guard.check(event, before)
        if bad is not None:
            run.done = bad.iteration - 1
            with torch.no_grad():
                pixels.copy_(guard.good)
            return f"the loss became {float(bad.terms['total'])} at iteration {bad.iteration}"
        for callback in run.callbacks:
            callback(event)
        if requested(run.stop):
            guard.flush()
            return CANCELLED
    guard.flush()
    return None


def synthesise(config: TransferConfig, objective: Objective, *, mode: Mode = Mode.TRANSFER,
               content: torch.Tensor | None = None, styles: Sequence[torch.Tensor] = (),
               init: torch.Tensor | None = None, canvas: tuple[int, int] | None = None,
               callbacks: Sequence[Callback] = (), seed: int = 0, stop: Stop | None = None,
               memory: MemoryPlan | None = None, temporal: Temporal | None = None,
               regions: Regions | None = None, resume: Checkpoint | None = None) -> Result:
    """Optimise a picture, coarse to fine, and return its Result (``config`` is validated by the caller).

    ``content`` is a (1, 3, H, W) tensor in [0, 1] at the output size; ``styles`` are at any size (each scale
    resizes them in proportion to its canvas); all on the objective's device. ``init`` is a starting image or
    None for ``config.init``'s (see :meth:`TransferConfig.start`). ``canvas`` (width, height) sets a
    texture's size. ``memory`` says which scales run tile by tile and how long L-BFGS's history is (None:
    every scale whole, 100 pairs); ``temporal`` ties a video frame to the previous one (the objective must
    carry its weight); ``regions`` say where each style goes, at any size (each scale resizes them). A
    non-finite loss stops the run with the last good image; ``stop`` (when set) and Ctrl-C stop it with the
    current one and a :class:`Checkpoint` in the Result, from which ``resume`` goes on exactly where it stopped
    (the same settings and inputs: the caller checks them, and the plan must be the checkpoint's). The inputs
    ``mode`` needs are there: :meth:`TransferConfig.validate` checked them with the settings.
    """
    if content is not None and mode.uses_content:
        full = (content.shape[-1], content.shape[-2])
    else:
        full = canvas or images.fit_long_side(styles[0].shape[-1], styles[0].shape[-2], config.size)
    plan = schedule(config, full)
    original = content
    if config.preserve_color and content is not None:
        luminance = colour.luminance(content)
        styles = [colour.match_luminance(colour.luminance(s), luminance) for s in styles]
        content = luminance
    run = _Run(config, objective, mode, content, styles, init, torch.Generator().manual_seed(seed), callbacks,
               stop, memory, sum(count for _, count in plan), len(plan), temporal, regions)
    if resume is not None:
        problem = resume.problem(plan)
        if problem is not None:
            raise ConfigError(f"`resume`: the checkpoint cannot go on: {problem}")
        run.done, run.history = resume.done, list(resume.history)
    every = 1 if next(objective.net.parameters()).device.type == "cpu" or config.optimizer == "lbfgs" else 10
    pixels: torch.Tensor | None = None
    guard: _Guard | None = None
    optimizer: torch.optim.Optimizer | None = None
    stopped = None
    at = 0  # the scale ``pixels`` and ``optimizer`` belong to

    def current() -> torch.Tensor:
        assert pixels is not None
        image = pixels.detach().clamp(0, 1)
        if config.preserve_color and original is not None:
            image = colour.restore_colour(image, images.resize(original, _size_of(image)))
        return image.cpu()

    try:
        for scale, (size, count) in enumerate(plan, start=1):
            if resume is not None and scale < resume.scale:
                continue
            resumed = resume if resume is not None and scale == resume.scale else None
            device = next(objective.net.parameters()).device
            start, targets = run.start(size, resumed.pixels.to(device) if resumed is not None else pixels)
            history = memory.history_for(size) if memory is not None else HISTORY
            made = _make_optimizer(config, start, optimizer if config.optimizer == "adam" else None, history)
            if resumed is not None:  # the optimiser as it was, and the iterations of this scale still to do
                made.load_state_dict(resumed.state)
                count -= resumed.done - sum(n for _, n in plan[:scale - 1])
            pixels, optimizer, at = start, made, scale
            guard = _Guard(pixels, every, run.history)
            stopped = _run_scale(run, scale, size, count, pixels, optimizer, targets, current, guard)
            if stopped:
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
        if pixels is None or guard is None:
            raise
    checkpoint = None
    if stopped in ("interrupted", CANCELLED) and pixels is not None and optimizer is not None and guard is not None:
        with torch.no_grad():
            if torch.isfinite(pixels).all():
                checkpoint = Checkpoint(at, run.done, pixels.detach().cpu().clone(), optimizer.state_dict(),
                                        list(run.history), plan)
            else:
                pixels.copy_(guard.good)
    return Result(image=current(), iterations=run.done, history=run.history, seed=seed, stopped=stopped,
                  elapsed=time.perf_counter() - run.began, checkpoint=checkpoint)


def _size_of(image: torch.Tensor) -> tuple[int, int]:
    return image.shape[-1], image.shape[-2]
