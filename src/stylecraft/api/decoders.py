"""Training the universal decoders (:mod:`stylecraft.universal`) on folders of photos, and writing them with
their card: the file that ``apply PAINTING.jpg`` and :func:`.one_pass.load_one_pass` paint with."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch.utils.data import ConcatDataset

from .. import files, universal
from ..errors import ConfigError, WeightsError
from ..photos import PhotoFolder, check_batch
from ..progress import Stop
from ..runtime import Runtime, cpu_name
from ..torchfile import load_safely, save_atomically
from .version import version


def _checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    state = load_safely(path, "a stylecraft decoders checkpoint")
    if not isinstance(state, dict) or not {"state_dict", "optimizer", "step", "decoders"} <= set(state):
        raise WeightsError(f"{path}: not a stylecraft decoders checkpoint")
    return state


def train_decoders(data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
                   *, config: universal.DecoderConfig | None = None, device: str = "auto", precision: str = "auto",
                   resume: str | os.PathLike[str] | None = None, init: str | os.PathLike[str] | None = None,
                   callbacks: Sequence[Callable[[universal.DecoderProgress], None]] = (), stop: Stop | None = None,
                   **options: object) -> universal.DecoderResult:
    """Train decoders on the photos under ``data`` (a folder or several) and write them to ``output``.

    A checkpoint (``output`` + ``.ckpt``) is written every ``checkpoint_every`` steps and at the end; ``resume``
    continues from one (to ``steps`` in all). ``init`` starts from a decoders file (the built-in set, say) with a
    fresh optimiser, its steps counted in the card. ``stop`` and Ctrl-C end the run after the step under way,
    with the decoders so far written all the same. ``options`` override fields of ``config``.
    """
    config = (config or universal.DecoderConfig()).replace(**options)
    config.validate()
    if resume is not None and init is not None:
        raise ConfigError("`init` starts a new run from trained decoders: it goes without `resume`")
    folders = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    output = files.check_writable(output, [*folders, resume, init])
    checkpoint_path = output.with_name(output.name + ".ckpt")
    runtime = Runtime.resolve(device, precision, cpu_bf16=True)
    photos: ConcatDataset[torch.Tensor | None] = ConcatDataset([PhotoFolder(folder, config.size) for folder in folders])
    check_batch(photos, config.batch_size)
    state: dict[str, Any] | None = _checkpoint(resume) if resume is not None else None
    before = int(state.get("steps_before", 0)) if state else 0
    if init is not None:
        decoders, card = universal.load_decoders(init)
        if decoders.levels != list(config.levels) or decoders.width != config.width:
            raise ConfigError(f"`init` {init}: decoders of levels {','.join(decoders.levels)} and width "
                              f"{decoders.width:g}; this run trains {','.join(config.levels)} at {config.width:g}")
        state, before = {"state_dict": decoders.state_dict()}, int(card.get("steps") or 0)
    vgg = universal.model.encoder_for(universal.Decoders(config.levels, config.width), runtime.device)
    result = universal.train_decoders(
        config, vgg, photos, runtime=runtime, resume=state, callbacks=callbacks, stop=stop,
        on_checkpoint=lambda payload: save_atomically({**payload, "steps_before": before}, checkpoint_path))
    save_atomically({**result.checkpoint, "steps_before": before}, checkpoint_path)
    card = {"stylecraft": version(), "steps": before + result.steps, "photos": [str(f) for f in folders],
            "photo_count": len(photos), "training": asdict(config), "cpu": cpu_name(),
            "precision": runtime.precision, "stopped": result.stopped}
    if init is not None:
        card["initialised_from"] = str(init)
    universal.save_decoders(result.decoders, output, card)
    return result
