"""Training the universal decoders on photos alone: each learns to rebuild a photo from its VGG-19 features.

No painting is needed: a decoder that inverts the encoder's features well also inverts them after they take a
painting's statistics (:mod:`.transforms`). One step encodes a batch of crops once, to the deepest level, and
trains every level's decoder on its own features (their weights are separate, so one optimiser serves all).
Progress goes to callbacks as :class:`DecoderProgress` events; a stop signal or Ctrl-C ends the run after the
step under way; checkpoints keep the optimiser's state so that a run can resume.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..errors import ImageError
from ..features import VGG
from ..photos import collate
from ..progress import CANCELLED, Stop, requested
from ..runtime import Runtime
from .decoders import Decoders
from .settings import DecoderConfig


@dataclass
class DecoderProgress:
    """What a callback receives after every step: the step, the planned steps and each level's losses."""

    step: int
    total: int
    elapsed: float
    losses: dict[str, float]
    skipped: int

    def notes(self) -> dict[str, str]:
        """The unreadable photos skipped so far."""
        return {"skipped": str(self.skipped)}


@dataclass
class DecoderResult:
    """The trained decoders, the steps done (this run's and before it), why it stopped early (if it did) and
    the checkpoint that resumes it."""

    decoders: Decoders
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str | None = None
    checkpoint: dict[str, Any] = field(default_factory=dict)


def _quiet_worker(_worker: int) -> None:
    """A data-loading process leaves Ctrl-C and SIGTERM to the main one, which stops after the step under way and
    saves the decoders: a signal sent to the whole process group would otherwise kill the workers first and
    fail the run with nothing saved."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def relative_error(picture: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error over the target's squared values: 0 for a perfect match, 1 for a picture of zeros."""
    return (picture.float() - target.float()).pow(2).mean() / target.float().pow(2).mean().clamp_min(1e-12)


def losses(decoders: Decoders, vgg: VGG, batch: torch.Tensor, runtime: Runtime,
           feature_weight: float) -> dict[str, torch.Tensor]:
    """Each level's pixel and feature losses on ``batch`` and their weighted ``total``."""
    levels = decoders.levels
    with torch.no_grad(), runtime.autocast():
        targets = vgg(batch, levels)
    terms: dict[str, torch.Tensor] = {}
    total = batch.new_zeros(())
    for level in levels:
        target = targets[level]
        with runtime.autocast():
            picture = decoders[level](target)
            again = vgg(picture, [level])[level]
        pixel = F.mse_loss(picture.float(), batch)
        feature = relative_error(again, target)
        terms[f"{level}/pixel"], terms[f"{level}/feature"] = pixel, feature
        total = total + pixel + feature_weight * feature
    terms["total"] = total
    return terms


def checkpoint(decoders: Decoders, optimizer: torch.optim.Optimizer, step: int,
               config: DecoderConfig) -> dict[str, Any]:
    """What resuming needs: the decoders, their record, the optimiser's state and the steps done."""
    return {"decoders": decoders.record(), "state_dict": {k: v.detach().cpu() for k, v in
                                                          decoders.state_dict().items()},
            "optimizer": optimizer.state_dict(), "step": step, "config": vars(config) | {"levels": decoders.levels}}


def train_decoders(config: DecoderConfig, vgg: VGG, data: Dataset[torch.Tensor | None], *, runtime: Runtime,
                   resume: dict[str, Any] | None = None,
                   callbacks: Sequence[Callable[[DecoderProgress], None]] = (),
                   on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
                   stop: Stop | None = None) -> DecoderResult:
    """Train decoders for ``config.levels`` on random crops of ``data`` (a photo folder); ``config`` is
    validated by the caller and ``vgg`` reaches the deepest level.

    ``resume`` is a checkpoint from :func:`checkpoint` (the run goes on from its step, to ``config.steps`` in
    all) or a trained set's ``state_dict`` alone (a fresh optimiser from those weights). ``stop`` and Ctrl-C
    end the run after the step under way, ``stopped`` "cancelled" or "interrupted".
    """
    torch.manual_seed(config.seed)
    decoders = Decoders(config.levels, config.width).to(runtime.device)
    optimizer = torch.optim.Adam(decoders.parameters(), lr=config.lr)
    step = 0
    if resume:
        decoders.load_state_dict({k: v.float() for k, v in resume["state_dict"].items()})
        if "optimizer" in resume:
            optimizer.load_state_dict(resume["optimizer"])
            for group in optimizer.param_groups:  # the run's own step size: a resumed run may lower it
                group["lr"] = config.lr
            step = int(resume["step"])
    random.seed(config.seed + step)  # a resumed run sees other crops than the steps it already took
    loader = DataLoader(data, batch_size=config.batch_size, shuffle=True, drop_last=True, collate_fn=collate,
                        num_workers=config.workers, generator=torch.Generator().manual_seed(config.seed + step),
                        persistent_workers=config.workers > 0, worker_init_fn=_quiet_worker)
    history: list[dict[str, float]] = []
    skipped, stopped, began = 0, None, time.perf_counter()
    decoders.train()
    try:
        while step < config.steps and not stopped:
            taken = False
            for batch, bad in loader:
                skipped += bad
                if batch is None:
                    continue
                terms = losses(decoders, vgg, batch.to(runtime.device), runtime, config.feature_weight)
                optimizer.zero_grad(set_to_none=True)
                terms["total"].backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
                optimizer.step()
                step, taken = step + 1, True
                values = {k: float(v.detach()) for k, v in terms.items()}
                if not math.isfinite(values["total"]):
                    stopped = f"the loss became non-finite ({values['total']}) at step {step}"
                    break
                history.append({"step": step, **values})
                event = DecoderProgress(step, config.steps, time.perf_counter() - began, values, skipped)
                for callback in callbacks:
                    callback(event)
                if on_checkpoint and step % config.checkpoint_every == 0:
                    on_checkpoint(checkpoint(decoders, optimizer, step, config))
                if step >= config.steps:
                    break
                if requested(stop):
                    stopped = CANCELLED
                    break
            if not taken and not stopped:
                raise ImageError(f"none of the {len(data)} photos could be read ({skipped} skipped)")  # type: ignore[arg-type]
    except KeyboardInterrupt:
        stopped = "interrupted"
    decoders.eval()
    return DecoderResult(decoders, step, history, stopped, checkpoint(decoders, optimizer, step, config))


def evaluate(decoders: Decoders, vgg: VGG, photos: Sequence[torch.Tensor],
             runtime: Runtime) -> dict[str, dict[str, float]]:
    """Each level's reconstruction of ``photos`` ((1, 3, H, W) tensors, sides a multiple of 8): the mean PSNR
    (dB, of the clamped picture) and the mean relative feature error at that level, as in training."""
    found: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for level in decoders.levels:
            psnrs, errors = [], []
            for photo in photos:
                with runtime.autocast():
                    picture = decoders[level](vgg(photo, [level])[level]).float().clamp(0, 1)
                    again = vgg(picture, [level])[level]
                    target = vgg(photo, [level])[level]
                mse = float(F.mse_loss(picture, photo))
                psnrs.append(10 * math.log10(1 / max(mse, 1e-12)))
                errors.append(float(relative_error(again, target)))
            found[level] = {"psnr": sum(psnrs) / len(psnrs), "feature": sum(errors) / len(errors)}
    return found
