"""Training a real-time style network (Johnson et al. 2016) with the perceptual objective of the optimiser.

Random square crops of a photo folder, batches, Adam; the loss is the same weighted content/style/TV
objective as an optimisation run (``perceptual.Objective``), with the content target taken from each batch
photo and the style target from the one style image. Progress goes to callbacks as :class:`TrainProgress`
events; checkpoints keep the optimiser's state so that a run can resume.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .. import images
from ..errors import ConfigError, ImageError
from ..features import VGG
from ..losses import total_variation
from ..perceptual import Objective
from .apply import stylise
from .distributed import SINGLE, Processes, all_agree, total
from .net import WIDTHS, TransformerNet, saturation_penalty

PHOTO_TYPES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting with its default. Layer names and weights mean what they mean for ``transfer``.

    The paper's schedule was 2 epochs of the 83k COCO photos at batch 4 and 256 px (40k steps); ``steps``
    overrides ``epochs``. Content at relu2_2 and style at relu1_2, relu2_2, relu3_3, relu4_3 follow it.
    ``saturation_weight`` weighs :func:`.net.saturation_penalty`, which keeps the output tanh out of its flat
    ends (0 turns it off). ``loss_margin`` pixels at each side of a crop are left out of the content and
    style terms (the TV term still covers them): VGG's zero padding makes its features there unlike anywhere
    else, and the network can learn to paint a dotted line along the edges to match the style with them.
    """

    size: int = 256
    batch_size: int = 4
    epochs: float = 2.0
    steps: int | None = None
    lr: float = 1e-3
    width: str = "full"
    content_layers: tuple[str, ...] = ("relu2_2",)
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 1.0
    saturation_weight: float = 1.0
    loss_margin: int = 16
    style_size: int | None = None
    sample_every: int = 500
    checkpoint_every: int = 1000
    seed: int = 0
    workers: int = 0

    def replace(self, **changes: object) -> TrainConfig:
        """A copy with ``changes``; unknown names are a ConfigError."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown training option {unknown[0]!r}; valid: {', '.join(sorted(names))}")
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        return TrainConfig(**{**asdict(self), **changes})

    def channels(self) -> int:
        """The network's base width: a named width or a number of channels."""
        if self.width in WIDTHS:
            return WIDTHS[self.width]
        if str(self.width).isdigit() and int(self.width) > 0:
            return int(self.width)
        raise ConfigError(f"--width: {self.width!r} is not one of {', '.join(WIDTHS)} or a number of channels")

    def validate(self) -> None:
        """ConfigError for values that cannot work."""
        self.channels()
        if self.size < 32 or self.size % 4:
            raise ConfigError(f"--size must be a multiple of 4 and at least 32 (got {self.size})")
        for name in ("batch_size", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.loss_margin < 0 or self.size - 2 * self.loss_margin < 32:
            raise ConfigError(f"--loss-margin {self.loss_margin} must be >= 0 and leave at least 32 px of the "
                              f"{self.size} px crop (--loss-margin 0 turns it off)")
        if self.steps is not None and self.steps < 1:
            raise ConfigError("--steps must be at least 1")
        for name in ("epochs", "lr", "content_weight", "style_weight", "tv_weight", "saturation_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0 (got {value})")


class PhotoFolder(Dataset):
    """Every photo under a folder, as random ``size`` x ``size`` crops; unreadable files come back as None."""

    def __init__(self, folder: str | Path, size: int) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise ImageError(f"{folder}: no such folder of training photos")
        self.paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_TYPES and p.is_file())
        if not self.paths:
            raise ImageError(f"{folder}: no photos (.jpg, .png, ...) in this folder")
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor | None:
        try:
            photo = images.to_tensor(images.load_image(self.paths[index]))
        except ImageError:
            return None
        height, width = photo.shape[-2:]
        scale = self.size / min(height, width)
        photo = images.resize(photo, (max(self.size, round(width * scale)), max(self.size, round(height * scale))))
        top = random.randint(0, photo.shape[-2] - self.size)
        left = random.randint(0, photo.shape[-1] - self.size)
        return photo[0, :, top:top + self.size, left:left + self.size]


def _collate(items: list[torch.Tensor | None]) -> tuple[torch.Tensor | None, int]:
    good = [item for item in items if item is not None]
    return (torch.stack(good) if good else None), len(items) - len(good)


@dataclass
class TrainProgress:
    """What a callback receives after every training step. ``sample()`` stylises the validation photo."""

    step: int
    steps: int
    losses: dict[str, float]
    elapsed: float
    images_per_second: float
    skipped: int
    sample: Callable[[], torch.Tensor]


@dataclass
class TrainResult:
    """The trained network, the steps done, skipped photos and photos seen (over all processes), and why it
    stopped early (if it did)."""

    net: TransformerNet
    steps: int
    skipped: int
    seen: int = 0
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None
    checkpoint: dict = field(default_factory=dict)


def train(config: TrainConfig, vgg: VGG, style: torch.Tensor, data: PhotoFolder, *, sample: torch.Tensor,
          device: torch.device, resume: dict | None = None,
          callbacks: Sequence[Callable[[TrainProgress], None]] = (),
          on_checkpoint: Callable[[dict], None] | None = None,
          autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
          processes: Processes = SINGLE) -> TrainResult:
    """Train a TransformerNet to paint in ``style`` (a (1, 3, H, W) tensor at its working size).

    ``resume`` is a checkpoint dict (``state_dict``, ``optimizer``, ``step``) to continue from;
    ``on_checkpoint`` receives such a dict every ``checkpoint_every`` steps. Ctrl-C stops the run and
    returns the network as it is. With several ``processes`` (see ``distributed``) each trains on its shard
    of ``data`` and only the main one calls ``callbacks`` and ``on_checkpoint``.
    """
    config.validate()
    torch.manual_seed(config.seed)
    random.seed(config.seed + processes.rank)  # the crops differ between processes
    net = TransformerNet(width=config.channels()).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    step = 0
    if resume:
        net.load_state_dict(resume["state_dict"])
        optimizer.load_state_dict(resume["optimizer"])
        step = int(resume["step"])
    objective = Objective(vgg, content_layers=config.content_layers, style_layers=config.style_layers,
                          content_weight=config.content_weight, style_weight=config.style_weight,
                          autocast=autocast)  # TV is added below, over the whole picture
    model = DistributedDataParallel(net) if processes.distributed else net
    style_targets = objective.targets(None, [style.to(device)], [1.0]).grams
    per_step = config.batch_size * processes.world_size
    steps = config.steps or max(1, math.ceil(config.epochs * len(data) / per_step))
    sampler = DistributedSampler(data, processes.world_size, processes.rank, shuffle=True,
                                 seed=config.seed + step, drop_last=True) if processes.distributed else None
    loader = DataLoader(data, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                        drop_last=True, collate_fn=_collate, num_workers=config.workers,
                        generator=torch.Generator().manual_seed(config.seed + step))

    def inner(pictures: torch.Tensor) -> torch.Tensor:
        margin = config.loss_margin
        return pictures[..., margin:pictures.shape[-2] - margin, margin:pictures.shape[-1] - margin]

    def stylise_sample() -> torch.Tensor:
        net.eval()
        picture = stylise(net, sample)
        net.train()
        return picture

    history: list[dict] = []
    skipped, stopped, began, seen, epoch = 0, None, time.perf_counter(), 0, 0
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    net.train()
    try:
        while step < steps:
            if sampler is not None:
                sampler.set_epoch(epoch)
            epoch += 1
            for batch, bad in loader:
                skipped += bad
                # Every process takes the step, or none does: DDP averages gradients across all of them.
                if not all_agree(processes, batch is not None, device):
                    continue
                batch = batch.to(device, memory_format=memory_format)
                with torch.no_grad(), autocast():
                    targets = objective.targets(inner(batch))
                targets.grams = style_targets
                with autocast():
                    output, logits = model(batch, with_logits=True)
                terms = objective(inner(output.float()), targets)
                extra = {}
                if config.tv_weight:  # smoothness covers the edges that loss_margin leaves out
                    extra["tv"] = config.tv_weight * total_variation(output.float())
                if config.saturation_weight:
                    extra["saturation"] = config.saturation_weight * saturation_penalty(logits.float())
                for name, value in extra.items():
                    terms[name] = value
                    terms["total"] = terms["total"] + value
                optimizer.zero_grad(set_to_none=True)
                terms["total"].backward()
                optimizer.step()
                step += 1
                seen += batch.shape[0]
                elapsed = time.perf_counter() - began
                losses = {k: float(v.detach()) for k, v in terms.items()}
                if not all_agree(processes, math.isfinite(losses["total"]), device):
                    stopped = f"the loss became non-finite ({losses['total']}) at step {step}"
                    break
                history.append({"step": step, "elapsed": elapsed, **losses})
                if processes.main:
                    event = TrainProgress(step, steps, losses, elapsed,
                                          seen * processes.world_size / max(elapsed, 1e-9), skipped, stylise_sample)
                    for callback in callbacks:
                        callback(event)
                    if on_checkpoint and step % config.checkpoint_every == 0:
                        on_checkpoint(checkpoint(net, optimizer, step))
                if step >= steps:
                    break
            if stopped or not all_agree(processes, seen > 0, device):
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    if stopped != "interrupted":  # after Ctrl-C the other processes may be gone
        seen, skipped = int(total(processes, seen, device)), int(total(processes, skipped, device))
    if seen == 0 and not stopped:
        raise ImageError(f"none of the {len(data)} photos could be read ({skipped} skipped)")
    net.eval()
    return TrainResult(net=net, steps=step, skipped=skipped, seen=seen, history=history, stopped=stopped,
                       checkpoint=checkpoint(net, optimizer, step))


def checkpoint(net: TransformerNet, optimizer: torch.optim.Optimizer, step: int) -> dict:
    """What ``resume`` needs: the network, the optimiser's state and the step count (all CPU tensors)."""
    return {"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "optimizer": optimizer.state_dict(), "step": step}
