"""Training a real-time style network (Johnson et al. 2016) with the perceptual objective of the optimiser.

Random square crops of a photo folder (``data``), batches, Adam; the loss is the same weighted
content/style/TV objective as an optimisation run (:class:`~stylecraft.objective.Objective`), with the content
target taken from each batch photo and the style target from the one style image. Progress goes to callbacks
as :class:`TrainProgress` events; a stop signal (:class:`stylecraft.progress.Stop`) ends it after the step
under way; checkpoints keep the optimiser's state so that a run can resume.

Several styles train one network (Dumoulin et al. 2017): shared convolutions, a scale and shift per style in
each normalisation, the styles taking turns step by step, each with its own style targets (computed once).
Styles are added to a trained network of several (``base``) by training their scales and shifts alone.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import ImageError
from ..features import VGG
from ..losses import StyleTarget
from ..objective import Objective, Targets
from ..photos import PhotoFolder, check_batch, collate
from ..progress import CANCELLED, Stop, requested
from ..runtime import Runtime
from .apply import stylise
from .distributed import SINGLE, Processes, all_agree, total
from .net import StyleNorm, TransformerNet, saturation_penalty, spike_penalty
from .settings import TrainConfig


@dataclass
class TrainProgress:
    """What a callback receives after every training step. ``sample()`` stylises the validation photo;
    ``total`` is ``steps`` by the name every progress event shares (:class:`stylecraft.progress.Event`)."""

    step: int
    steps: int
    losses: dict[str, float]
    elapsed: float
    images_per_second: float
    skipped: int
    sample: Callable[[], torch.Tensor]

    @property
    def total(self) -> int:
        """The steps of the whole run (``steps``)."""
        return self.steps

    def notes(self) -> dict[str, str]:
        """The unreadable photos skipped so far (the rate, which changes every step, is not a note)."""
        return {"skipped": str(self.skipped)}


@dataclass
class TrainResult:
    """The trained network, the steps done, skipped photos and photos seen (over all processes), and why it
    stopped early (if it did)."""

    net: TransformerNet
    steps: int
    skipped: int
    seen: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str | None = None
    checkpoint: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Session:
    """One training run's parts: the network, its optimiser, the objective with each style's targets (and the
    network's row of each style), the photos, where it runs and who it reports to."""

    config: TrainConfig
    net: TransformerNet
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    objective: Objective
    style_targets: list[dict[str, StyleTarget]]
    colour_targets: list[StyleTarget | None]
    rows: list[int]
    loader: DataLoader[torch.Tensor | None]
    sampler: DistributedSampler[int] | None
    runtime: Runtime
    processes: Processes
    steps: int
    step: int = 0
    teacher: TransformerNet | None = None


def extended(base: TransformerNet, added: int) -> TransformerNet:
    """``base`` with ``added`` more styles, whose scales and shifts start as the mean of the base's rows."""
    net = TransformerNet(base.width, base.residual_blocks, styles=base.styles + added)
    state = base.state_dict()
    for name, norm in base.named_modules():
        if isinstance(norm, StyleNorm):
            for table in ("scales", "shifts"):
                rows = state[f"{name}.{table}"]
                state[f"{name}.{table}"] = torch.cat([rows, rows.mean(0, keepdim=True).expand(added, -1)])
    net.load_state_dict(state)
    return net


def _only_rows(net: TransformerNet, rows: Sequence[int]) -> list[torch.nn.Parameter]:
    """The scale and shift tables, their gradients kept for ``rows`` alone: what adding a style trains."""
    keep = torch.zeros(net.styles, 1)
    keep[list(rows)] = 1
    tables = [p for norm in net.modules() if isinstance(norm, StyleNorm) for p in (norm.scales, norm.shifts)]
    for table in tables:
        table.register_hook(lambda grad: grad * keep.to(grad.device))  # type: ignore[no-untyped-call]
    return tables


def _session(config: TrainConfig, vgg: VGG, styles: Sequence[torch.Tensor], data: PhotoFolder, runtime: Runtime,
             resume: dict[str, Any] | None, processes: Processes, base: TransformerNet | None,
             teacher: TransformerNet | None) -> _Session:
    torch.manual_seed(config.seed)
    random.seed(config.seed + processes.rank)  # the crops differ between processes
    net = TransformerNet(width=config.channels(), styles=len(styles)) if base is None else extended(base, len(styles))
    rows = list(range(net.styles - len(styles), net.styles))
    net = net.to(runtime.device).requires_grad_(True)
    if runtime.device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stub lacks memory_format
    trained = _only_rows(net, rows) if base is not None else list(net.parameters())
    optimizer = torch.optim.Adam(trained, lr=config.lr)
    step = 0
    if resume:
        net.load_state_dict(resume["state_dict"])
        if "optimizer" in resume:  # a checkpoint; a trained network's weights alone start a new run
            optimizer.load_state_dict(resume["optimizer"])
            step = int(resume["step"])
    objective = Objective(vgg, content_layers=config.content_layers, style_layers=config.style_layers,
                          content_weight=config.content_weight, style_weight=config.style_weight,
                          tv_weight=config.tv_weight, color_weight=config.color_weight, autocast=runtime.autocast)
    per_step = config.batch_size * processes.world_size
    check_batch(data, per_step)
    steps = config.steps or max(1, math.ceil(config.epochs * len(data) / per_step))
    sampler: DistributedSampler[int] | None = (
        DistributedSampler(data, processes.world_size, processes.rank, shuffle=True, seed=config.seed + step,
                           drop_last=True) if processes.distributed else None)
    loader = DataLoader(data, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                        drop_last=True, collate_fn=collate, num_workers=config.workers,
                        generator=torch.Generator().manual_seed(config.seed + step))
    model = DistributedDataParallel(net) if processes.distributed else net
    with runtime.work():
        style_targets = [objective.style_targets([style.to(runtime.device)], [1.0]) for style in styles]
        colour_targets = [objective.colour_target([style.to(runtime.device)], [1.0]) for style in styles]
    if teacher is not None:
        teacher = teacher.to(runtime.device).eval().requires_grad_(False)
    return _Session(config, net, model, optimizer, objective, style_targets, colour_targets, rows, loader, sampler,
                    runtime, processes, steps, step, teacher)


@contextlib.contextmanager
def _normalised_inputs(net: TransformerNet, wanted: bool) -> Iterator[list[torch.Tensor]]:
    """The inputs of ``net``'s normalisation layers in the forward passes run inside, when ``wanted``."""
    inputs: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _layer, args, _output: inputs.append(args[0]))
             for layer in net.modules() if wanted and isinstance(layer, (StyleNorm, torch.nn.InstanceNorm2d))]
    try:
        yield inputs
    finally:
        for hook in hooks:
            hook.remove()


def _take_step(session: _Session, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """One optimiser step on ``batch``; return the loss terms."""
    config, runtime = session.config, session.runtime
    memory_format = torch.channels_last if runtime.device.type == "cuda" else torch.contiguous_format
    batch = batch.to(runtime.device, memory_format=memory_format)
    turn = session.step % len(session.rows)  # the styles take turns
    if session.net.styles > 1:
        mix = F.one_hot(torch.tensor(session.rows[turn]), session.net.styles).tolist()
        session.net.select(mix)
        if session.teacher is not None:
            session.teacher.select(mix)
    with runtime.work():
        targets = Targets(session.objective.content_targets(batch, config.loss_margin), session.style_targets[turn],
                          session.colour_targets[turn])
        with runtime.autocast(), _normalised_inputs(session.net, bool(config.spike_weight)) as inputs:
            output, logits = session.model(batch, with_logits=True)
        terms: dict[str, torch.Tensor] = session.objective(output.float(), targets, margin=config.loss_margin)
        if config.saturation_weight:
            terms["saturation"] = config.saturation_weight * saturation_penalty(logits.float())
            terms["total"] = terms["total"] + terms["saturation"]
        if config.spike_weight:
            terms["spikes"] = config.spike_weight * torch.stack([spike_penalty(x) for x in inputs]).mean()
            terms["total"] = terms["total"] + terms["spikes"]
        if session.teacher is not None:
            with torch.no_grad(), runtime.autocast():
                taught = session.teacher(batch).float()
            terms["teacher"] = config.teacher_weight * F.l1_loss(output.float(), taught)
            terms["total"] = terms["total"] + terms["teacher"]
        session.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        session.optimizer.step()
    session.step += 1
    return terms


def train(config: TrainConfig, vgg: VGG, styles: Sequence[torch.Tensor], data: PhotoFolder, *, sample: torch.Tensor,
          runtime: Runtime, resume: dict[str, Any] | None = None,
          callbacks: Sequence[Callable[[TrainProgress], None]] = (),
          on_checkpoint: Callable[[dict[str, Any]], None] | None = None, processes: Processes = SINGLE,
          stop: Stop | None = None, base: TransformerNet | None = None,
          teacher: TransformerNet | None = None) -> TrainResult:
    """Train a TransformerNet to paint in ``styles`` ((1, 3, H, W) tensors at their working size; one network
    of several styles when there are several); ``config`` is validated by the caller.

    With ``base``, a trained network of several styles, the result is ``base`` with the new styles added,
    trained by their scales and shifts alone (the convolutions and the base's styles are kept as they are).
    With ``teacher``, a trained network of the same styles in the same order (any width), the loss adds the L1
    distance to its pictures, weighed by ``config.teacher_weight``.

    ``resume`` is a checkpoint dict (``state_dict``, ``optimizer``, ``step``) to continue from, or a
    ``state_dict`` alone to start from those weights with a fresh optimiser;
    ``on_checkpoint`` receives such a dict every ``checkpoint_every`` steps. ``stop`` (when set, in any
    process) and Ctrl-C end the run after the step under way and return the network as it is, ``stopped``
    "cancelled" or "interrupted". With several ``processes`` (see ``distributed``) each trains on its shard
    of ``data`` and only the main one calls ``callbacks`` and ``on_checkpoint``.
    """
    session = _session(config, vgg, styles, data, runtime, resume, processes, base, teacher)
    net, device = session.net, runtime.device

    def stylise_sample() -> torch.Tensor:
        net.eval()
        picture = stylise(net.painting(F.one_hot(torch.tensor(session.rows[-1]), net.styles).tolist())
                          if net.styles > 1 else net, sample)
        net.train()
        return picture

    history: list[dict[str, float]] = []
    skipped, stopped, began, seen, epoch = 0, None, time.perf_counter(), 0, 0
    done_before = session.step >= session.steps  # a checkpoint resumed with no steps left: nothing to read
    net.train()
    try:
        while session.step < session.steps:
            if session.sampler is not None:
                session.sampler.set_epoch(epoch)
            epoch += 1
            for batch, bad in session.loader:
                skipped += bad
                # Every process takes the step, or none does: DDP averages gradients across all of them.
                if not all_agree(processes, batch is not None, device):
                    continue
                terms = _take_step(session, batch)
                seen += batch.shape[0]
                elapsed = time.perf_counter() - began
                losses = {k: float(v.detach()) for k, v in terms.items()}
                if not all_agree(processes, math.isfinite(losses["total"]), device):
                    stopped = f"the loss became non-finite ({losses['total']}) at step {session.step}"
                    break
                history.append({"step": session.step, "elapsed": elapsed, **losses})
                if processes.main:
                    event = TrainProgress(session.step, session.steps, losses, elapsed,
                                          seen * processes.world_size / max(elapsed, 1e-9), skipped, stylise_sample)
                    for callback in callbacks:
                        callback(event)
                    if on_checkpoint and session.step % config.checkpoint_every == 0:
                        on_checkpoint(checkpoint(net, session.optimizer, session.step))
                if session.step >= session.steps:
                    break
                if not all_agree(processes, not requested(stop), device):
                    stopped = CANCELLED
                    break
            if stopped or not all_agree(processes, seen > 0, device):
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    if stopped != "interrupted":  # after Ctrl-C the other processes may be gone
        seen, skipped = int(total(processes, seen, device)), int(total(processes, skipped, device))
    if seen == 0 and not stopped and not done_before:
        raise ImageError(f"none of the {len(data)} photos could be read ({skipped} skipped)")
    net.eval()
    return TrainResult(net=net, steps=session.step, skipped=skipped, seen=seen, history=history, stopped=stopped,
                       checkpoint=checkpoint(net, session.optimizer, session.step))


def checkpoint(net: TransformerNet, optimizer: torch.optim.Optimizer, step: int) -> dict[str, Any]:
    """What ``resume`` needs: the network, the optimiser's state and the step count (all CPU tensors)."""
    return {"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "optimizer": optimizer.state_dict(), "step": step}
