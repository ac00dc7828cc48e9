"""Real-time networks: train one (:func:`train_network`), load it for a backend (:func:`load_style_model`),
export it (:func:`export_model`) and paint with it (:func:`apply_model`, :func:`apply_many`). Paths or PIL
images in, PIL images out; inputs are validated here."""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from PIL import Image

from .. import checks, colour, feedforward, files, images, report
from ..errors import ConfigError, ImageError, WeightsError
from ..features import FeatureNetwork
from ..feedforward.settings import BACKENDS as BACKENDS
from ..images import ImageInput
from ..optimize.memory import amount
from ..photos import PhotoFolder
from ..progress import Stop
from ..runtime import DEVICES, Runtime
from ..torchfile import load_safely, save_atomically
from ..universal.paint import COLOURS_SIDE
from .one_pass import OnePass, is_painting, load_one_pass
from .transfer import route
from .version import version

#: Any kind of picture source; :func:`apply_many` gives each back as it was given.
Source = TypeVar("Source", bound="ImageInput")


def train_network(style: ImageInput | Sequence[ImageInput], data: str | os.PathLike[str],
                  output: str | os.PathLike[str], *, config: feedforward.TrainConfig | None = None,
                  network: FeatureNetwork | None = None, device: str = "auto", precision: str = "auto",
                  sample: ImageInput | None = None, resume: str | os.PathLike[str] | None = None,
                  names: Sequence[str] | None = None, add_to: str | os.PathLike[str] | None = None,
                  init: str | os.PathLike[str] | None = None, teacher: str | os.PathLike[str] | None = None,
                  callbacks: Sequence[Callable[[feedforward.TrainProgress], None]] = (), stop: Stop | None = None,
                  **options: object) -> feedforward.TrainResult:
    """Train a real-time network on the photos under ``data`` to paint in ``style``; write it to ``output``.

    Several styles train one network of several (each by its name in ``names``, default the files' names);
    ``add_to`` names a trained network of several styles to which the styles are added by training their
    scales and shifts alone. ``init`` names a trained network (of the same width and styles) to start from,
    with a fresh optimiser: training goes on where another run (or another machine) left off. ``teacher`` names a
    trained network of the same styles (any width) whose pictures the new one learns to copy besides
    (``teacher_weight``): a compact network learns from a full one. ``options``
    override fields of ``config`` (:class:`~stylecraft.feedforward.TrainConfig`) or of ``network`` (the loss
    network, :class:`FeatureNetwork`). A checkpoint (``output`` + ``.ckpt``) is
    written every ``checkpoint_every`` steps and at the end; ``resume`` continues from one. ``sample`` is the
    validation photo that progress events stylise (default: the first readable photo of ``data``). ``stop`` (a
    ``threading.Event`` or anything with ``is_set()``), when set, ends the training after the step under way;
    the network so far is written all the same (model and checkpoint), its ``stopped`` "cancelled". Under
    ``torchrun --nproc_per_node N`` the processes train together (``feedforward.distributed``), each on its own
    GPU, and only rank 0 writes files.
    """
    config, network = route(config or feedforward.TrainConfig(), network or FeatureNetwork(), options)
    config.validate()
    network.validate()
    styles = list(style) if isinstance(style, (list, tuple)) else [cast(ImageInput, style)]
    base = _base(add_to) if add_to is not None else None
    style_names = _style_names(styles, names, feedforward.styles.names(base) if base else [])
    start = _start(init, config, style_names, resume, add_to) if init is not None else None
    taught_by = _teacher(teacher, style_names, add_to) if teacher is not None else None
    output = files.check_writable(output, [*styles, sample, resume, add_to, init, teacher])
    checkpoint_path = output.with_name(output.name + ".ckpt")
    runtime = Runtime.resolve(device, precision)
    processes, own_device = feedforward.distributed.start(runtime.device)
    runtime = runtime.on(own_device)
    try:
        vgg = network.build([*config.content_layers, *config.style_layers], runtime.device)
        style_images = [images.load_image(one) for one in styles]
        style_tensors = [images.resize_long_side(images.to_tensor(one), config.style_size or config.size)
                         for one in style_images]
        data_set = PhotoFolder(data, config.size)
        sample_tensor = _first_sample(sample, data_set, config.size)
        state = _load_checkpoint(resume) if resume is not None else None
        # The steps of the network a run started from (--init), kept in its checkpoints for a --resume to count.
        before = int(state.get("steps_before", 0)) if state else 0
        if start is not None:
            state = {"state_dict": cast(feedforward.TransformerNet, start.net).state_dict()}
            before = int(start.metadata.get("steps", 0))
        result = feedforward.train(config, vgg, style_tensors, data_set, sample=sample_tensor, runtime=runtime,
                                   resume=state, callbacks=callbacks,
                                   on_checkpoint=lambda payload: save_atomically({**payload, "steps_before": before},
                                                                                 checkpoint_path),
                                   processes=processes, stop=stop,
                                   base=cast(feedforward.TransformerNet, base.net) if base else None,
                                   teacher=cast(feedforward.TransformerNet, taught_by.net) if taught_by else None)
        if not processes.main:
            return result
        save_atomically({**result.checkpoint, "steps_before": before}, checkpoint_path)
        fingerprints = [feedforward.model.style_fingerprint(one) for one in style_images]
        metadata: dict[str, Any] = {
            "stylecraft": version(), "steps": before + result.steps,
            "photos_seen": result.seen,
            "processes": processes.world_size, "skipped_photos": result.skipped, "data": str(data),
            "training": asdict(config), "model": network.model, "stopped": result.stopped}
        records = [{"name": name, "style": _name(one), "style_sha256": digest, "steps": result.steps,
                    "training": asdict(config)} for name, one, (digest, _) in zip(style_names, styles, fingerprints,
                                                                                 strict=True)]
        thumbnails = [thumbnail for _, thumbnail in fingerprints]
        if start is not None:
            metadata["initialised_from"] = str(init)
        if taught_by is not None:
            metadata["taught_by"] = str(teacher)
        if base is not None:
            metadata["added_to"] = str(add_to)
            records = feedforward.styles.records(base) + records
            thumbnails = [_png(one) for one in base.thumbnails] + thumbnails
        if result.net.styles > 1:
            metadata["styles"] = records
        else:
            metadata.update(style=records[0]["style"], style_sha256=records[0]["style_sha256"])
        feedforward.save_model(result.net, output, metadata, thumbnails)
        return result
    finally:
        feedforward.distributed.stop(processes)


def _base(add_to: str | os.PathLike[str]) -> feedforward.StyleModel:
    """The trained network of several styles that new styles are added to."""
    base = feedforward.load_model(add_to)
    if cast(feedforward.TransformerNet, base.net).styles == 1:
        raise ConfigError(f"`add_to` {add_to}: styles are added to a network of several styles (train one with "
                          "two styles or more first)")
    return base


def _start(init: str | os.PathLike[str], config: feedforward.TrainConfig, names: Sequence[str],
           resume: object, add_to: object) -> feedforward.StyleModel:
    """The trained network a run starts from: the same width and the same styles, in the same order."""
    if resume is not None or add_to is not None:
        raise ConfigError("`init` starts a new run from a trained network: it goes without `resume` and `add_to`")
    start = feedforward.load_model(init)
    net = cast(feedforward.TransformerNet, start.net)
    found = feedforward.styles.names(start) if net.styles > 1 else list(names)
    if net.width != config.channels() or found != list(names):
        raise ConfigError(f"`init` {init}: a network of width {net.width} painting {', '.join(found)}; this run "
                          f"trains width {config.channels()} on {', '.join(names)}")
    return start


def _teacher(teacher: str | os.PathLike[str], names: Sequence[str], add_to: object) -> feedforward.StyleModel:
    """The trained network a run learns to copy: the same styles, in the same order, of any width."""
    if add_to is not None:
        raise ConfigError("`teacher` goes without `add_to` (which trains the new styles' scales and shifts alone)")
    taught_by = feedforward.load_model(teacher)
    net = taught_by.net
    found = feedforward.styles.names(taught_by) if isinstance(net, feedforward.TransformerNet) and net.styles > 1 \
        else None
    if not isinstance(net, feedforward.TransformerNet) or net.styles != len(names) or found not in (None, list(names)):
        raise ConfigError(f"`teacher` {teacher}: a network painting {', '.join(found or ['one style'])}; this run "
                          f"trains {', '.join(names)}")
    return taught_by


def _style_names(styles: Sequence[ImageInput], names: Sequence[str] | None, taken: Sequence[str]) -> list[str]:
    """Each style's name: given, or its file's name; unique, and new to ``taken`` (the base's names)."""
    if names is not None and len(names) != len(styles):
        raise ConfigError(f"`names`: {len(names)} names for {len(styles)} styles")
    chosen = list(names) if names is not None else [
        Path(str(one)).stem if not isinstance(one, (Image.Image, bytes)) else f"style-{index + 1}"
        for index, one in enumerate(styles)]
    for name in chosen:
        if not name or "," in name or ":" in name:
            raise ConfigError(f"`names`: {name!r} cannot name a style (no commas or colons)")
    clashes = sorted({name for name in chosen if chosen.count(name) > 1 or name in taken})
    if clashes:
        raise ConfigError(f"`names`: {', '.join(clashes)} named twice (give each style its own with `names`)")
    return chosen


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _name(source: ImageInput) -> str:
    return "<image>" if isinstance(source, (Image.Image, bytes)) else str(source)


def _first_sample(sample: ImageInput | None, data: PhotoFolder, size: int) -> torch.Tensor:
    if sample is not None:
        return images.resize_long_side(images.to_tensor(images.load_image(sample)), size)
    for path in data.paths:
        try:
            return images.resize_long_side(images.to_tensor(images.load_image(path)), size)
        except ImageError:
            continue
    raise ImageError(f"none of the {len(data.paths)} photos could be read")


def _load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    state = load_safely(path, "a stylecraft training checkpoint")
    if not isinstance(state, dict) or not {"state_dict", "optimizer", "step"} <= set(state):
        raise WeightsError(f"{path}: not a stylecraft training checkpoint")
    return state


#: What paints in one pass: a trained network, or paintings with the universal decoders.
Model = feedforward.StyleModel | OnePass


def load_style_model(model: str | os.PathLike[str], *, backend: str = "auto", device: str = "auto",
                     precision: str = "auto", style: str | None = None) -> Model:
    """Load what paints in one pass. A picture (``painting.jpg``) or a blend of pictures (``a.jpg:0.7,b.jpg:0.3``)
    means "these paintings, in one pass" with the built-in universal decoders and the default settings
    (:func:`.one_pass.load_one_pass` takes the others). Otherwise a trained network for ``backend``: "torch" (a
    model file, or a built-in style's name or blend such as ``great-wave:0.7,udnie:0.3``); "onnx" (ONNX Runtime) or
    "openvino" (OpenVINO, CPU only), each running an exported ``.onnx`` file or a model exported on the fly; or
    "auto" (ONNX Runtime for ``.onnx`` files, else torch). ``style`` picks or blends the styles of a network file of
    several (default: its first).

    ``precision`` auto is fp32 for a network: OpenVINO would otherwise pick bf16 by itself on CPUs that have it,
    and the pictures would depend on the CPU. OpenVINO also runs "bf16" and "fp16" when asked (docs/performance.md
    gives their speed and error). For a painting auto is bf16 where the CPU computes it natively
    (:func:`.one_pass.load_one_pass`)."""
    checks.choice("backend", backend, BACKENDS)
    checks.choice("precision", precision, ("auto", *feedforward.PRECISIONS))
    if is_painting(model):
        if backend not in ("auto", "torch") or style is not None:
            raise ConfigError(f"{model}: a painting runs with the torch backend and takes no `style`")
        return load_one_pass(model, device=device, precision=precision)
    precision = "fp32" if precision == "auto" else precision
    if precision != "fp32" and backend != "openvino":
        raise ConfigError(f"`precision` {precision} runs with `backend` openvino; the others run fp32")
    is_onnx = Path(model).suffix.lower() == ".onnx"
    if backend == "torch" and is_onnx:
        raise ConfigError(f"{model}: an ONNX file runs with `backend` onnx or openvino")
    if backend == "torch" or (backend == "auto" and not is_onnx):
        loaded = feedforward.styles.open_model(model, style)
        runtime = Runtime.resolve(device, "fp32")
        loaded.net = cast(feedforward.TransformerNet, loaded.net).to(runtime.device)  # from a model file
        return loaded
    checks.choice("device", device, DEVICES)
    if is_onnx and style is not None:
        raise ConfigError(f"`style` {style!r}: an ONNX export paints the one style it was exported with")
    source = model if is_onnx else feedforward.to_onnx(feedforward.styles.open_model(model, style))
    if backend == "openvino":
        net, info = feedforward.openvino_session(source, device, precision)
    else:
        net, info = feedforward.onnx_session(source, device)
    return feedforward.StyleModel(net=net, metadata=info)


def export_model(model: str | os.PathLike[str], output: str | os.PathLike[str], style: str | None = None) -> None:
    """Write a trained model (a file, or a built-in style's name or blend; ``style`` as for
    :func:`load_style_model`) as ONNX with dynamic height and width (see ``feedforward.export``)."""
    if Path(output).suffix.lower() != ".onnx":
        raise ConfigError(f"{output}: an ONNX export's name ends in .onnx")
    output = files.check_writable(output, [model])
    data = feedforward.to_onnx(feedforward.styles.open_model(model, style))
    files.atomic_write_bytes(output, data)


def apply_model(model: str | os.PathLike[str] | Model, image: ImageInput, *, size: int | None = None,
                preserve_color: bool = False, device: str = "auto", tile: int | None = None,
                backend: str = "auto", precision: str = "auto", style: str | None = None,
                palette: bool | None = None) -> Image.Image:
    """Paint ``image`` in one pass: with a trained real-time network (a model file, an exported ``.onnx`` file),
    a painting (``painting.jpg``, or a blend), or what :func:`load_style_model` or :func:`.load_one_pass` loaded
    (load once to paint many pictures). A picture with a side over ``tile`` pixels runs in exact tiles of that
    size (the rule of the optimiser's ``tile`` too; default 2048 for a network, 1024 for a painting).
    ``palette`` as for :func:`apply_many`."""
    loaded = model if isinstance(model, (feedforward.StyleModel, OnePass)) else load_style_model(
        model, backend=backend, device=device, precision=precision, style=style)
    [(_, picture)] = apply_many(loaded, [image], size=size, preserve_color=preserve_color, tile=tile,
                                palette=palette)
    if isinstance(picture, ImageError):
        raise picture
    return picture


def paint_tensor(model: Model, batch: torch.Tensor, *, preserve_color: bool = False,
                 tile: int | None = None) -> torch.Tensor:
    """Paint a (N, 3, H, W) batch in [0, 1] with a network or paintings; ``tile`` None: each one's default."""
    if isinstance(model, OnePass):
        return model.paint(batch, preserve_color=preserve_color, tile=tile)
    return feedforward.apply(model.net, batch, preserve_color=preserve_color, tile=tile or feedforward.TILE)


#: The memory one-pass painting needs, as peak RSS measured on the CPU (fp32, 768-1024 px): a pass holds about
#: 1000 bytes a pixel of what it runs (the whole picture, or one tile with its halo) for a network and 1250 for a
#: painting's decoders; a picture run in tiles holds besides about 300 bytes a pixel of the whole picture (the
#: input, its padded copy, the output and the result's 8 bits). Rounded up.
PASS_BYTES = {"network": 1100, "painting": 1400}
PICTURE_BYTES = 320
#: A tile's halo, rounded up from the network's reach (56 px) and the decoders' at relu4_1 (68 px).
HALO = 72
#: Tile sides tried, largest first, where the memory cannot hold the picture in tiles of the side asked for.
TILE_SIDES = (2048, 1024, 512, 256, 128)


def _device(model: Model) -> torch.device:
    if isinstance(model, OnePass):
        return model.painter.runtime.device
    net = model.net
    return next(net.parameters()).device if isinstance(net, torch.nn.Module) else net.device


def _needed(model: Model, size: tuple[int, int], count: int, side: int) -> float:
    """Bytes that painting ``count`` pictures of ``size`` (width, height) in tiles of ``side`` px is expected to
    take at its peak (one pass of the whole picture where it is no larger than a tile)."""
    width, height = size
    per_pass = PASS_BYTES["painting" if isinstance(model, OnePass) else "network"]
    if max(size) <= side:
        return count * (per_pass + PICTURE_BYTES) * width * height
    crop = min(width, side + 2 * HALO) * min(height, side + 2 * HALO)
    return count * (PICTURE_BYTES * width * height + per_pass * crop)


def plan_tile(model: Model, size: tuple[int, int], count: int, tile: int | None, what: str) -> int | None:
    """The tile side to paint ``count`` pictures of ``size`` (width, height) with: ``tile`` (None: the model's
    default) where the memory the device has free holds it, else the largest of ``TILE_SIDES`` below it that
    it does hold (tiles are exact: the same picture). Checked before anything of that size is allocated: a
    picture over the pixel limit, or one that does not fit even in the smallest tiles, is an ImageError
    naming ``what`` and the largest size that would fit."""
    images.check_pixels(size, what)
    available = Runtime(_device(model)).available_memory()
    if available is None:
        return tile
    asked = tile or (model.config.tile if isinstance(model, OnePass) else feedforward.TILE)
    for side in (asked, *(side for side in TILE_SIDES if side < asked)):
        if _needed(model, size, count, side) <= available:
            return tile if side == asked else side
    smallest = min(asked, TILE_SIDES[-1])
    needed = _needed(model, size, count, smallest)
    one_tile = needed - count * PICTURE_BYTES * size[0] * size[1]  # what a smaller picture needs all the same
    room = (available - one_tile) / (needed - one_tile)
    remedy = f"use `size` {int(max(size) * math.sqrt(room))} or less" if room > 0 else "free some memory"
    raise ImageError(f"{what}: a {size[0]} x {size[1]} picture needs about {amount(needed)} even in tiles of "
                     f"{smallest} px, but only {amount(available)} is free; {remedy}")


def apply_many(model: Model, sources: Sequence[Source], *, batch_size: int = 4,
               size: int | None = None, preserve_color: bool = False, tile: int | None = None,
               palette: bool | None = None) -> Iterator[tuple[Source, Image.Image | ImageError]]:
    """Paint many pictures, in order, running pictures of the same size together in batches of ``batch_size``.

    ``size`` and ``tile`` are checked against their bounds (``checks.BOUNDS``), and each picture's size against
    the pixel limit and the memory free (:func:`plan_tile`) before it is resized. Yields each source with its
    picture, or with the ImageError that kept it from being read or painted, so that one bad file does not stop
    a folder.

    ``palette`` moves each picture's colours to its painting's whole palette (``colour.match_palette``) after
    painting; None (the default) does so for a built-in style (it ships its painting) and for a painting as its
    ``PaintConfig`` says, and not for another network, for which True is a ConfigError. ``preserve_color``
    keeps the photo's colours instead.
    """
    checks.within("batch_size", batch_size)
    checks.within("size", size)
    checks.within("tile", tile, "one_pass_tile")
    if isinstance(model, OnePass):
        model = model if palette is None else replace(model, config=model.config.replace(palette=palette))
    paintings = _palette_of(model, palette, preserve_color)
    count = min(batch_size, len(sources))
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        results: list[Image.Image | ImageError | None] = [None] * len(chunk)
        same_size: dict[tuple[tuple[int, ...], int | None], list[int]] = {}
        tensors: dict[int, torch.Tensor] = {}
        for index, source in enumerate(chunk):
            try:
                picture = images.load_image(source)
                target = images.fit_long_side(*picture.size, size) if size else picture.size
                chosen = plan_tile(model, target, count, tile, _name(source))
            except ImageError as exc:
                results[index] = exc
                continue
            tensors[index] = images.resize(images.to_tensor(picture), target)
            same_size.setdefault((tuple(tensors[index].shape), chosen), []).append(index)
        for (_, chosen), indices in same_size.items():
            batch = torch.cat([tensors[i] for i in indices])
            painted = paint_tensor(model, batch, preserve_color=preserve_color, tile=chosen)
            for row, index in enumerate(indices):
                one = painted[row:row + 1]
                results[index] = images.to_pil(colour.match_palette(one, *paintings) if paintings else one)
        yield from zip(chunk, results, strict=True)


def _palette_of(model: Model, palette: bool | None,
                preserve_color: bool) -> tuple[list[torch.Tensor], list[float]] | None:
    """The colours of the paintings a network's pictures are moved to, and their shares (None: no palette step;
    a painting's palette is its own ``PaintConfig``'s)."""
    if isinstance(model, OnePass) or palette is False or preserve_color:
        return None
    found = feedforward.styles.palette_paintings(model)
    if not found:
        if palette:
            raise ConfigError("`palette` goes with a built-in style or a painting: this network ships no painting "
                              "to take the colours of")
        return None
    return [_painting_colours(path) for path, _ in found], [share for _, share in found]


@functools.lru_cache(maxsize=16)
def _painting_colours(path: Path) -> torch.Tensor:
    """A shipped painting's colours, read once: at most ``universal.COLOURS_SIDE`` px long, as the one-pass
    palette keeps them."""
    picture = images.to_tensor(images.load_image(path))
    return images.resize_long_side(picture, min(COLOURS_SIDE, max(picture.shape[-2:])))


def _all_styles(model: str | os.PathLike[str] | None) -> feedforward.StyleModel:
    """The built-in network (None) or a network file, with all its styles."""
    return feedforward.styles.load_builtin() if model is None else feedforward.load_model(model)


def list_styles(model: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The record (model card) of each style of the built-in network, or of a network file: at least ``name``,
    and for the built-in styles ``title``, ``artist``, ``year``, provenance and how each was trained."""
    return feedforward.styles.records(_all_styles(model))


def style_sheet(photo: ImageInput, model: str | os.PathLike[str] | None = None, *, size: int = 384,
                device: str = "auto", cell_side: int = 256) -> Image.Image:
    """``photo`` painted in every style of the built-in network (or of a network file), one pass each, on a
    contact sheet labelled with each painting's title, artist and year, the photo first."""
    loaded = _all_styles(model)
    runtime = Runtime.resolve(device, "fp32")
    tensor = images.resize_long_side(images.to_tensor(images.load_image(photo)), size)
    cells = [report.Cell(images.to_pil(tensor), "the photo")]
    for record in feedforward.styles.records(loaded):
        one = feedforward.styles.painting(loaded, str(record["name"]))
        net = cast(feedforward.TransformerNet, one.net).to(runtime.device)
        caption = ", ".join(str(record[k]) for k in ("title", "artist", "year") if record.get(k)) or record["name"]
        cells.append(report.Cell(images.to_pil(feedforward.apply(net, tensor)), caption))
    return report.contact_sheet([cells], title=f"{len(cells) - 1} styles", cell_side=cell_side)
