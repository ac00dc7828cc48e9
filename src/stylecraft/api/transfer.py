"""The optimisation front: paths or PIL images in, a Result or a PIL image out.

Inputs are validated here, once: the settings (:class:`TransferConfig`, :class:`FeatureNetwork`), the device
and precision (:class:`Runtime`), the pictures and the memory a run needs. Below this layer everything is a
tensor and every setting is known to be good.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch
from PIL import Image

from .. import checks, images, torchfile
from ..errors import ConfigError
from ..features import VGG, FeatureNetwork
from ..images import ImageInput
from ..objective import Regions
from ..optimize import (
    Callback,
    Checkpoint,
    Mode,
    Result,
    Temporal,
    TransferConfig,
    build_objective,
    schedule,
    soft_warning,
    synthesise,
)
from ..optimize.memory import MemoryPlan, plan_memory
from ..optimize.schedule import style_canvas
from ..optimize.timing import duration, expected_seconds
from ..progress import Stop
from ..runtime import Runtime
from .masks import load_regions
from .one_pass import load_one_pass
from .score import score_tensors
from .version import version

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

NETWORK_FIELDS = frozenset(f.name for f in fields(FeatureNetwork))
#: Settings a resumed run may change: they change how it runs, not the picture (tiles are exact).
RESUME_FREE = frozenset({"tile"})
#: Settings of any kind: a frozen dataclass such as TransferConfig or TrainConfig.
Settings = TypeVar("Settings", bound="DataclassInstance")


def route(config: Settings, network: FeatureNetwork, options: Mapping[str, object],
          also: Iterable[str] = ()) -> tuple[Settings, FeatureNetwork]:
    """``config`` and ``network`` with ``options``, each going to whichever of the two has the field: how every
    API call that takes settings and a loss network reads its keyword options. An unknown name is a
    ConfigError listing the valid ones (with ``also``, the call's own parameters)."""
    names = frozenset(f.name for f in fields(config))
    unknown = sorted(set(options) - names - NETWORK_FIELDS)
    if unknown:
        valid = ", ".join(sorted(names | NETWORK_FIELDS | set(also)))
        raise ConfigError(f"unknown option {unknown[0]!r}; valid options: {valid}")
    return (checks.replace(config, **{k: v for k, v in options.items() if k in names}),
            network.replace(**{k: v for k, v in options.items() if k in NETWORK_FIELDS}))


def settle(config: TransferConfig | None, network: FeatureNetwork | None, options: dict[str, object],
           preset: str | None = None) -> tuple[TransferConfig, FeatureNetwork]:
    """The run's settings and feature network: ``config`` (default: :class:`TransferConfig`), then the
    ``preset``'s settings, then ``options``, each going to whichever of the two has the field."""
    config = config or TransferConfig()
    if preset is not None:
        config = config.with_preset(preset)
    return route(config, network or FeatureNetwork(), options, ("device", "precision", "init_image", "preset"))


def resume_file(picture: str | os.PathLike[str]) -> Path:
    """Where a stopped run's checkpoint lives next to its picture: ``out.png`` -> ``out.png.resume.pt``."""
    path = Path(picture)
    return path.with_name(path.name + ".resume.pt")


def save_resume(checkpoint: Checkpoint | None, picture: str | os.PathLike[str]) -> None:
    """Write a stopped run's ``checkpoint`` (a Result's) next to ``picture`` (atomically, readable by its owner
    alone: it holds the picture), so that ``resume=picture`` goes on from it; None (a run that ran to its end)
    removes the one found there."""
    target = resume_file(picture)
    if checkpoint is None:
        target.unlink(missing_ok=True)
    else:
        torchfile.save_atomically(checkpoint.payload(), target, mode=0o600)


def _load_resume(picture: str | os.PathLike[str]) -> tuple[dict[str, object], Checkpoint]:
    """The settings recorded with ``picture`` and the checkpoint next to it; a ConfigError (one line) for a
    picture without either."""
    if not Path(picture).is_file():
        raise ConfigError(f"`resume`: there is no picture {picture}")
    recorded = images.read_metadata(picture)
    if not recorded or "seed" not in recorded:
        raise ConfigError(f"`resume`: {picture} holds no stylecraft settings")
    sidecar = resume_file(picture)
    if not sidecar.is_file():
        raise ConfigError(f"`resume`: {picture} has no {sidecar.name} next to it (a stopped run leaves one; a "
                          "finished run has nothing to resume)")
    payload = torchfile.load_safely(sidecar, "a stylecraft checkpoint")
    try:
        return recorded, Checkpoint.from_payload(payload)
    except (KeyError, TypeError, ValueError, IndexError):
        raise ConfigError(f"`resume`: {sidecar} is not a stylecraft checkpoint") from None


def _resumed_settings(picture: str | os.PathLike[str], recorded: Mapping[str, object], mode: Mode,
                      config: TransferConfig | None, options: dict[str, object],
                      preset: str | None) -> tuple[TransferConfig, FeatureNetwork]:
    """The settings recorded with ``picture``, with ``options`` and ``preset`` where they agree; a ConfigError
    naming the first setting given that would paint another picture."""
    if config is not None:
        raise ConfigError("`resume` takes the settings recorded with the picture: give changes as options")
    if recorded.get("mode") != mode.value:
        raise ConfigError(f"`resume`: {picture} is a {recorded.get('mode')}, not a {mode.value}")
    names = {f.name for f in fields(TransferConfig)}
    base = TransferConfig().replace(**{k: v for k, v in recorded.items() if k in names})
    network = FeatureNetwork().replace(**{k: v for k, v in recorded.items() if k in NETWORK_FIELDS})
    chosen = {k: v for k, v in options.items() if v is not None}  # None: not given (a seed: the recorded one)
    given, given_network = settle(base, network, chosen, preset)
    for before, after in ((base, given), (network, given_network)):
        for field in fields(before):
            old, new = getattr(before, field.name), getattr(after, field.name)
            if old != new and field.name not in RESUME_FREE:
                raise ConfigError(f"`resume`: {picture} was painted with `{field.name}` {old}, not {new}")
    return given, given_network


def _fingerprints(content: Image.Image | None, styles: Sequence[torch.Tensor]) -> dict[str, str]:
    """Short digests of the content's and the styles' pixels: the same inputs, whatever their files are called."""
    found = {}
    for kind, pictures in (("content", [images.to_tensor(content)] if content is not None else []),
                           ("styles", styles)):
        digest = hashlib.sha256()
        for picture in pictures:
            digest.update(repr(tuple(picture.shape)).encode())
            digest.update(picture.detach().cpu().contiguous().numpy().tobytes())
        found[kind] = digest.hexdigest()[:16]
    return found


def _check_inputs(picture: str | os.PathLike[str], recorded: Mapping[str, object], inputs: dict[str, str]) -> None:
    """A ConfigError when the content or the styles are not the pictures ``picture`` was painted from."""
    before = recorded.get("inputs")
    for kind, found in inputs.items():
        if isinstance(before, dict) and before.get(kind) != found:
            which = "another content picture" if kind == "content" else "other style pictures"
            raise ConfigError(f"`resume`: {picture} was painted from {which}")


def _name(source: ImageInput | None) -> str | None:
    if source is None:
        return None
    return "<image>" if isinstance(source, (Image.Image, bytes)) else str(source)


def _as_list(styles: ImageInput | Sequence[ImageInput] | None) -> list[ImageInput]:
    if styles is None:
        return []
    if isinstance(styles, (list, tuple)):
        return list(styles)
    return [styles]  # type: ignore[list-item]


def _texture_canvas(config: TransferConfig, style: torch.Tensor) -> tuple[int, int]:
    height, width = style.shape[-2:]
    if config.width and config.height:
        return config.width, config.height
    if config.width:
        return config.width, max(1, round(config.width * height / width))
    if config.height:
        return max(1, round(config.height * width / height)), config.height
    return images.fit_long_side(width, height, config.size)


def _check_masks(mode: Mode, config: TransferConfig, masks: Sequence[ImageInput] | None,
                 style_masks: Sequence[ImageInput | None] | None, styles: int) -> None:
    if masks is None and style_masks is None:
        return
    if mode is not Mode.TRANSFER:
        raise ConfigError(f"`masks` and `style_masks` go with a transfer, not a {mode.value}")
    if config.scale_split is not None:
        raise ConfigError("`masks` and `scale_split` do not go together: give one or the other")
    if config.style_blend is not None:
        raise ConfigError("`style_blend` does not go with `masks`: each mask says where its style goes")
    if masks is None and styles != 1:
        raise ConfigError("`style_masks` for several styles need `masks` too, to say where each style goes")


def run(mode: Mode | str, content: ImageInput | None = None,
        styles: ImageInput | Sequence[ImageInput] | None = None,
        config: TransferConfig | None = None, callbacks: Sequence[Callback] = (), *,
        network: FeatureNetwork | None = None, device: str = "auto", precision: str = "auto",
        init_image: ImageInput | None = None, stop: Stop | None = None,
        max_memory: float | None = None, on_plan: Callable[[str], None] | None = None,
        temporal: Temporal | None = None, score: bool = True, preset: str | None = None,
        masks: Sequence[ImageInput] | None = None, style_masks: Sequence[ImageInput | None] | None = None,
        resume: str | os.PathLike[str] | None = None, **options: object) -> Result:
    """Run ``mode`` ("transfer", "reconstruct" or "texture") and return the full Result.

    ``options`` override fields of ``config`` (default: :class:`TransferConfig`) or of ``network`` (default:
    :class:`FeatureNetwork`, the Oxford VGG-19); ``preset`` (one of ``optimize.PRESETS``: draft, standard,
    fine, print) changes the defaults of ``config`` before them. ``device`` and ``precision`` say where it runs
    (:class:`Runtime`; ``auto`` precision is bf16 autocast of the feature network on CUDA and on CPUs with
    native bf16, fp32 elsewhere); ``init_image`` is a start picture of one's own; ``stop`` (a ``threading.Event`` or
    anything with ``is_set()``), when set, ends the run after the current iteration with the picture so far
    and ``stopped`` "cancelled". ``max_memory`` (GiB, default: what the device has free) is the budget: a
    run that would not fit goes tile by tile, exactly (``optimize.memory``); ``on_plan`` receives one line
    saying how, before any work. ``temporal`` ties a video frame to the previous one (``api.video``). The
    Result's ``settings`` hold everything needed to reproduce the picture, the seed included, and for a
    transfer with one style that ran to its end its ``quality`` (:mod:`stylecraft.quality`'s numbers, scored
    on the CPU; ``score`` False leaves them out, as a video's frames do). ``masks`` (a transfer's, one per
    style, over the photo: white is that style, black not, grey a partial weight) say where each style goes,
    the photo kept where none does; ``style_masks`` (one per style, None for all of it) which part of each
    painting to take the style from (:mod:`.masks`; ``on_plan`` hears of masks resized to fit). A run that
    stops (Ctrl-C, ``stop``) keeps a :class:`~stylecraft.optimize.Checkpoint` in the Result: with
    :func:`save_resume` next to its picture, ``resume`` (that picture, saved with the Result's ``settings``)
    goes on from exactly there, to the picture the run would have made; the settings recorded with it are
    used, and options, the content or the styles that would paint another picture are a ConfigError.
    """
    checks.choice("mode", mode, tuple(m.value for m in Mode))
    mode = Mode(mode)
    recorded: Mapping[str, object] = {}
    checkpoint = None
    if resume is not None:
        recorded, checkpoint = _load_resume(resume)
        config, network = _resumed_settings(resume, recorded, mode, config, options, preset)
        preset = preset or str(recorded.get("preset") or "") or None
    else:
        config, network = settle(config, network, options, preset)
    style_list = _as_list(styles)
    network.validate()
    config.validate(mode, len(style_list), network.model, content=content is not None)
    _check_masks(mode, config, masks, style_masks, len(style_list))
    checks.within("max_memory", max_memory)
    runtime = Runtime.resolve(device, precision, cpu_bf16=True)
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    layers = list(config.content_layers) if mode.uses_content else []
    layers += list(config.style_layers) if mode.uses_style else []
    net = network.build(layers, runtime.device)

    content_image = images.load_image(content) if content is not None and mode.uses_content else None
    style_tensors = [images.to_tensor(images.load_image(s)) for s in style_list] if mode.uses_style else []
    inputs = _fingerprints(content_image, style_tensors) if resume is not None else None
    if resume is not None and inputs is not None:
        _check_inputs(resume, recorded, inputs)
    if content_image is not None:
        full = images.fit_long_side(*content_image.size, config.size)
    else:
        full = _texture_canvas(config, style_tensors[0])
    images.check_pixels(full, "the result", "width` and `height" if content_image is None else "size")
    for style in style_tensors:  # each at its largest, the full size's
        images.check_pixels(style_canvas(config, full, (style.shape[-1], style.shape[-2])), "a style image",
                            "style_size")
    if resume is not None and checkpoint is not None:
        problem = checkpoint.problem(schedule(config, full))
        if problem is not None:
            raise ConfigError(f"`resume`: {resume_file(resume)} cannot go on ({problem}); {resume} is left as it is")
    memory = _plan(net, config, full, runtime, max_memory, on_plan)
    config = config.replace(optimizer=memory.optimizer)
    content_tensor = images.resize(images.to_tensor(content_image), full) if content_image is not None else None
    regions = None
    if content_image is not None and (masks is not None or style_masks is not None):
        regions = load_regions(masks if masks is not None else [Image.new("L", content_image.size, 255)],
                               style_masks, content_image, style_tensors, full, on_plan).to(runtime.device)
    init = _start_picture(config, mode, content_tensor, style_tensors, init_image, regions, device)
    runtime.reset_peak_memory()
    if temporal is not None:
        checks.non_negative("temporal_weight", temporal.weight)
        temporal = Temporal(temporal.previous.to(runtime.device), temporal.reliable.to(runtime.device),
                            temporal.weight)
    with runtime.work():
        result = synthesise(config, build_objective(config, mode, net, runtime.autocast, temporal), mode=mode,
                            content=None if content_tensor is None else content_tensor.to(runtime.device),
                            styles=[s.to(runtime.device) for s in style_tensors], init=init,
                            canvas=full if mode is Mode.TEXTURE else None, callbacks=callbacks, seed=seed,
                            stop=stop, memory=memory, temporal=temporal, regions=regions, resume=checkpoint)
    result.settings = {"stylecraft": version(), "mode": mode.value,
                       "content": _name(content) if mode.uses_content else None,
                       "styles": [_name(s) for s in style_list] if mode.uses_style else [],
                       "preset": preset, **asdict(config), **asdict(network), "init_image": _name(init_image),
                       **({"masks": [_name(m) for m in masks or []],
                           "style_masks": [_name(m) for m in style_masks or []]} if regions is not None else {}),
                       "seed": seed, "start": "picture" if init_image is not None else config.start(mode),
                       "device": str(runtime.device), "precision": runtime.precision, "lbfgs_history": memory.history,
                       "tiled_scales": [list(s) for s in memory.tiled],
                       "iterations_done": result.iterations, "peak_memory_mb": runtime.peak_memory_mb()}
    if checkpoint is not None:
        result.settings["resumed_at"] = checkpoint.done
    if result.checkpoint is not None:  # what a resumed run checks its inputs against
        result.settings["inputs"] = inputs or _fingerprints(content_image, style_tensors)
    if score and mode is Mode.TRANSFER and len(style_tensors) == 1 and content_image is not None:
        _score(result, content_image, style_tensors[0])
    return result


def _plan(net: VGG, config: TransferConfig, full: tuple[int, int], runtime: Runtime, max_memory: float | None,
          on_plan: Callable[[str], None] | None) -> MemoryPlan:
    """How the run fits the memory budget (whole or in tiles, which optimiser), told to ``on_plan`` with the
    expected time before any work."""
    scales = schedule(config, full)
    memory = plan_memory(net, scales, runtime, config, int(max_memory * 2**30) if max_memory is not None else None)
    if on_plan is not None:
        with runtime.work():
            seconds = expected_seconds(net, scales, lambda size: memory.tiling(net, size), runtime.autocast)
        on_plan(f"{memory.describe(net, scales)}; expected time about {duration(seconds)}")
        warning = soft_warning(scales)
        if warning:
            on_plan(warning)
    return memory


def _start_picture(config: TransferConfig, mode: Mode, content: torch.Tensor | None, styles: Sequence[torch.Tensor],
                   init_image: ImageInput | None, regions: Regions | None, device: str) -> torch.Tensor | None:
    """The start picture handed to the optimiser: the user's own, or with ``init`` one-pass the photo painted in
    one pass (with the styles' blend, or each in its region); None for the optimiser's named starts."""
    if init_image is not None:
        return images.to_tensor(images.load_image(init_image))
    if config.start(mode) != "one-pass":
        return None
    assert content is not None  # validate() refuses one-pass without a content image and a style
    pictures = [images.to_pil(style) for style in styles]
    masks = None if regions is None else [images.to_pil(m.expand(3, -1, -1)[None].cpu()) for m in regions.masks]
    loaded = load_one_pass(pictures, weights=None if masks else config.blend(len(styles)), masks=masks,
                           device=device)
    return loaded.paint(content, preserve_color=config.preserve_color)


def _score(result: Result, content: Image.Image, style: torch.Tensor) -> None:
    """A finished transfer's quality numbers into its settings, against the photo as given, so that
    `stylecraft score` gives the same numbers for the saved file."""
    if result.stopped is not None:
        return
    try:
        result.settings["quality"] = score_tensors(result.image, images.to_tensor(content), style).as_dict()
    except KeyboardInterrupt:  # the picture is done: Ctrl-C while it is scored still keeps it
        result.stopped = "interrupted"


def transfer(content: ImageInput, style: ImageInput | Sequence[ImageInput], *,
             callbacks: Sequence[Callback] = (), **options: object) -> Image.Image:
    """Paint ``content`` in the style of ``style`` (one image or several, blended by ``style_blend``)."""
    return _pil(run(Mode.TRANSFER, content, style, callbacks=callbacks, **options))  # type: ignore[arg-type]


def reconstruct(content: ImageInput, *, callbacks: Sequence[Callback] = (), **options: object) -> Image.Image:
    """Rebuild ``content`` from its VGG activations alone (from noise by default): what a layer keeps."""
    return _pil(run(Mode.RECONSTRUCT, content, None, callbacks=callbacks, **options))  # type: ignore[arg-type]


def texture(style: ImageInput | Sequence[ImageInput], *, callbacks: Sequence[Callback] = (),
            **options: object) -> Image.Image:
    """Synthesise a texture with the Gram statistics of ``style`` (from noise by default)."""
    return _pil(run(Mode.TEXTURE, None, style, callbacks=callbacks, **options))  # type: ignore[arg-type]


def _pil(result: Result) -> Image.Image:
    image = images.to_pil(result.image)
    image.info["stylecraft"] = result.settings
    return image
