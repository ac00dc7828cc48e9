"""The Python API: paths or PIL images in, PIL images out. The CLI and the web studio are built on it.

This layer reads the inputs, sizes them, picks the device, builds the feature network and records the
settings with the result; the algorithm itself (``optimize``) sees only tensors.
"""

from __future__ import annotations

import io
import math
import os
import resource
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch
from PIL import Image

from . import feedforward, images
from .errors import ConfigError, ImageError, WeightsError
from .features import VGG, WeightSet, canonical_layer, load_safely, load_weights
from .images import ImageInput
from .optimize import INITS, Progress, Result, TransferConfig, stylise
from .optimize import autocast as optimize_autocast

Callback = Callable[[Progress], None]


def version() -> str:
    """The installed stylecraft version."""
    try:
        return metadata.version("stylecraft")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA if present, else Apple MPS, else the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available on this machine")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps: Apple's MPS is not available on this machine")
    if kind not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device: {name!r} is not one of auto, cpu, cuda, mps")
    return torch.device(name)


@lru_cache(maxsize=4)
def _weights(model: str, path: str | None, weights_format: str | None) -> WeightSet:
    return load_weights(model, path, weights_format)


def build_network(config: TransferConfig, layers: Sequence[str], device: torch.device) -> VGG:
    """The frozen VGG of ``config`` (model, weights, pooling), truncated after the deepest of ``layers``."""
    weights = _weights(config.model, config.weights, config.weights_format)
    return VGG(weights, layers, config.pooling).to(device)


def _name(source: ImageInput) -> str:
    return "<image>" if isinstance(source, (Image.Image, bytes)) else str(source)


def _as_list(styles: ImageInput | Sequence[ImageInput] | None) -> list[ImageInput]:
    if styles is None:
        return []
    if isinstance(styles, (list, tuple)):
        return list(styles)
    return [styles]


def _texture_canvas(config: TransferConfig, style: torch.Tensor) -> tuple[int, int]:
    height, width = style.shape[-2:]
    if config.width and config.height:
        return config.width, config.height
    if config.width:
        return config.width, max(1, round(config.width * height / width))
    if config.height:
        return max(1, round(config.height * width / height)), config.height
    return images.fit_long_side(width, height, config.size)


def run(mode: str, content: ImageInput | None = None,
        styles: ImageInput | Sequence[ImageInput] | None = None,
        config: TransferConfig | None = None, callbacks: Sequence[Callback] = (),
        **options: object) -> Result:
    """Run ``mode`` ("transfer", "reconstruct" or "texture") and return the full Result.

    ``options`` override fields of ``config`` (default: :class:`TransferConfig`). The Result's
    ``settings`` hold everything needed to reproduce the picture, the seed included.
    """
    config = (config or TransferConfig()).replace(**options)
    style_list = _as_list(styles)
    config.validate(mode, len(style_list))
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    device = resolve_device(config.device)
    layers = [] if mode == "texture" else list(config.content_layers)
    layers += [] if mode == "reconstruct" else list(config.style_layers)
    net = build_network(config, [canonical_layer(n, config.model) for n in layers], device)

    content_image = images.load_image(content) if mode != "texture" else None
    style_tensors = [images.to_tensor(images.load_image(s)) for s in style_list] if mode != "reconstruct" else []
    if content_image is not None:
        full = images.fit_long_side(*content_image.size, config.size)
    else:
        full = _texture_canvas(config, style_tensors[0])
    check_memory(net, full, device, config.optimizer)
    content_tensor = images.resize(images.to_tensor(content_image), full) if content_image is not None else None
    canvas = full if mode == "texture" else None
    init = None
    if config.init is not None and config.init not in INITS:
        init = images.to_tensor(images.load_image(config.init))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = stylise(config, net, content=None if content_tensor is None else content_tensor.to(device),
                     styles=[s.to(device) for s in style_tensors], init=init, canvas=canvas, mode=mode,
                     callbacks=callbacks, seed=seed)
    result.settings = {"stylecraft": version(), "mode": mode,
                       "content": None if mode == "texture" else _name(content),
                       "styles": [_name(s) for s in style_list] if mode != "reconstruct" else [],
                       **asdict(config), "seed": seed, "device": str(device),
                       "iterations_done": result.iterations, "peak_memory_mb": peak_memory_mb(device)}
    return result


#: Peak memory of one step over the activations its forward pass keeps: 1.3-1.5 measured by
#: benchmarks/scaling.py at 512-1024 px on the CPU (gradients and oneDNN workspaces come on top); 2 leaves
#: room for the targets, the image copies and the Python process itself.
MEMORY_FACTOR = 2.0


def available_memory(device: torch.device) -> int | None:
    """Bytes that a run can still allocate on ``device``, or None where that cannot be known."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as meminfo:
                fields = dict(line.split(":", 1) for line in meminfo)
            return int(fields["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return None
    return None


def estimate_memory(net: VGG, size: tuple[int, int], optimizer: str) -> float:
    """Bytes a run at ``size`` is expected to need at its peak: activations and the optimiser's state.

    L-BFGS keeps 100 pairs of image-sized vectors, which dominates at large sizes; Adam keeps two.
    """
    images_kept = 2 * 100 if optimizer == "lbfgs" else 2
    return MEMORY_FACTOR * net.activation_bytes(*size) + images_kept * 3 * 4 * size[0] * size[1]


def check_memory(net: VGG, size: tuple[int, int], device: torch.device, optimizer: str) -> None:
    """Refuse, before any work, a size whose estimated peak memory exceeds what the device has free."""
    available = available_memory(device)
    needed = estimate_memory(net, size, optimizer)
    if available is None or needed <= available:
        return
    fits = int(max(size) * math.sqrt(available / needed) / 16) * 16
    raise ConfigError(f"a {size[0]} x {size[1]} image needs about {needed / 2**30:.1f} GiB on {device.type}, "
                      f"but only {available / 2**30:.1f} GiB is free; use --size {fits} or less")


def peak_memory_mb(device: torch.device) -> float:
    """The run's peak memory in MiB: the GPU's allocator peak on CUDA, the process's peak RSS otherwise."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def transfer(content: ImageInput, style: ImageInput | Sequence[ImageInput], *,
             callbacks: Sequence[Callback] = (), **options: object) -> Image.Image:
    """Paint ``content`` in the style of ``style`` (one image or several, blended by ``style_blend``)."""
    return _pil(run("transfer", content, style, callbacks=callbacks, **options))


def reconstruct(content: ImageInput, *, callbacks: Sequence[Callback] = (), **options: object) -> Image.Image:
    """Rebuild ``content`` from its VGG activations alone (from noise by default): what a layer keeps."""
    return _pil(run("reconstruct", content, None, callbacks=callbacks, **options))


def texture(style: ImageInput | Sequence[ImageInput], *, callbacks: Sequence[Callback] = (),
            **options: object) -> Image.Image:
    """Synthesise a texture with the Gram statistics of ``style`` (from noise by default)."""
    return _pil(run("texture", None, style, callbacks=callbacks, **options))


def _pil(result: Result) -> Image.Image:
    image = images.to_pil(result.image)
    image.info["stylecraft"] = result.settings
    return image


def train_network(style: ImageInput, data: str | os.PathLike, output: str | os.PathLike, *,
                  config: feedforward.TrainConfig | None = None, device: str = "auto", precision: str = "auto",
                  model: str = "vgg19", weights: str | None = None, weights_format: str | None = None,
                  sample: ImageInput | None = None, resume: str | os.PathLike | None = None,
                  callbacks: Sequence[Callable[[feedforward.TrainProgress], None]] = (),
                  **options: object) -> feedforward.TrainResult:
    """Train a real-time network on the photos under ``data`` to paint in ``style``; write it to ``output``.

    A checkpoint (``output`` + ``.ckpt``) is written every ``checkpoint_every`` steps and at the end;
    ``resume`` continues from one. ``sample`` is the validation photo that progress events stylise
    (default: the first readable photo of ``data``). Under ``torchrun --nproc_per_node N`` the processes
    train together (``feedforward.distributed``) and only rank 0 writes files.
    """
    config = (config or feedforward.TrainConfig()).replace(**options)
    config.validate()
    output = images.check_writable(output, [style, sample, resume])
    checkpoint_path = output.with_name(output.name + ".ckpt")
    processes, device_ = feedforward.distributed.start(resolve_device(device))
    try:
        net_config = TransferConfig(model=model, weights=weights, weights_format=weights_format, precision=precision)
        net_config.validate()
        layers = [canonical_layer(n, model) for n in config.content_layers + config.style_layers]
        vgg = build_network(net_config, layers, device_)
        style_image = images.load_image(style)
        style_tensor = images.resize_long_side(images.to_tensor(style_image), config.style_size or config.size)
        data_set = feedforward.PhotoFolder(data, config.size)
        sample_tensor = _first_sample(sample, data_set, config.size)
        state = _load_checkpoint(resume) if resume is not None else None

        def save_checkpoint(payload: dict) -> None:
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            images.atomic_write_bytes(checkpoint_path, buffer.getvalue())

        result = feedforward.train(config, vgg, style_tensor, data_set, sample=sample_tensor, device=device_,
                                   resume=state, callbacks=callbacks, on_checkpoint=save_checkpoint,
                                   autocast=optimize_autocast(net_config, device_), processes=processes)
        if not processes.main:
            return result
        save_checkpoint(result.checkpoint)
        digest, thumbnail = feedforward.model.style_fingerprint(style_image)
        feedforward.save_model(result.net, output, {
            "stylecraft": version(), "style": _name(style), "style_sha256": digest, "steps": result.steps,
            "photos_seen": result.seen, "processes": processes.world_size, "skipped_photos": result.skipped,
            "data": str(data), "training": asdict(config), "model": model, "stopped": result.stopped}, thumbnail)
        return result
    finally:
        feedforward.distributed.stop(processes)


def _first_sample(sample: ImageInput | None, data: feedforward.PhotoFolder, size: int) -> torch.Tensor:
    if sample is not None:
        return images.resize_long_side(images.to_tensor(images.load_image(sample)), size)
    for path in data.paths:
        try:
            return images.resize_long_side(images.to_tensor(images.load_image(path)), size)
        except ImageError:
            continue
    raise ImageError(f"none of the {len(data.paths)} photos could be read")


def _load_checkpoint(path: str | os.PathLike) -> dict:
    state = load_safely(path, "a stylecraft training checkpoint")
    if not isinstance(state, dict) or not {"state_dict", "optimizer", "step"} <= set(state):
        raise WeightsError(f"{path}: not a stylecraft training checkpoint")
    return state


BACKENDS = ("auto", "torch", "onnx", "openvino")


def load_style_model(model: str | os.PathLike, *, backend: str = "auto", device: str = "auto",
                     precision: str = "fp32") -> feedforward.StyleModel:
    """Load a trained network for ``backend``: "torch" (a model file); "onnx" (ONNX Runtime) or "openvino"
    (OpenVINO, CPU only), each running an exported ``.onnx`` file or a model file exported on the fly; or
    "auto" (ONNX Runtime for ``.onnx`` files, else torch).

    ``precision`` is fp32 unless asked: OpenVINO would otherwise pick bf16 by itself on CPUs that have it,
    and the pictures would depend on the CPU. OpenVINO also runs "bf16" and "fp16" when asked
    (docs/performance.md gives their speed and error).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if precision not in feedforward.PRECISIONS:
        raise ConfigError(f"--precision: {precision!r} is not one of {', '.join(feedforward.PRECISIONS)}")
    if precision != "fp32" and backend != "openvino":
        raise ConfigError(f"--precision {precision} runs with --backend openvino; the others run fp32")
    is_onnx = Path(model).suffix.lower() == ".onnx"
    if backend == "torch" and is_onnx:
        raise ConfigError(f"{model}: an ONNX file runs with --backend onnx or openvino")
    if backend == "torch" or (backend == "auto" and not is_onnx):
        loaded = feedforward.load_model(model)
        loaded.net = loaded.net.to(resolve_device(device))
        return loaded
    source = model if is_onnx else feedforward.to_onnx(feedforward.load_model(model))
    if backend == "openvino":
        net, info = feedforward.openvino_session(source, device, precision)
    else:
        net, info = feedforward.onnx_session(source, device)
    return feedforward.StyleModel(net=net, metadata=info)


def export_model(model: str | os.PathLike, output: str | os.PathLike) -> None:
    """Write a trained model file as ONNX with dynamic height and width (see ``feedforward.export``)."""
    if Path(output).suffix.lower() != ".onnx":
        raise ConfigError(f"{output}: an ONNX export's name ends in .onnx")
    output = images.check_writable(output, [model])
    data = feedforward.to_onnx(feedforward.load_model(model))
    images.atomic_write_bytes(output, data)


def apply_model(model: str | os.PathLike | feedforward.StyleModel, image: ImageInput, *, size: int | None = None,
                preserve_color: bool = False, device: str = "auto", tile: int = 1024,
                backend: str = "auto", precision: str = "fp32") -> Image.Image:
    """Paint ``image`` with a trained real-time network: a model file, an exported ``.onnx`` file, or a
    StyleModel from :func:`load_style_model` (load once to paint many pictures)."""
    loaded = model if isinstance(model, feedforward.StyleModel) else load_style_model(
        model, backend=backend, device=device, precision=precision)
    [(_, picture)] = apply_many(loaded, [image], size=size, preserve_color=preserve_color, tile=tile)
    if isinstance(picture, ImageError):
        raise picture
    return picture


def apply_many(model: feedforward.StyleModel, sources: Sequence[ImageInput], *, batch_size: int = 4,
               size: int | None = None, preserve_color: bool = False, tile: int = 1024
               ) -> Iterator[tuple[ImageInput, Image.Image | ImageError]]:
    """Paint many pictures, in order, running pictures of the same size together in batches of ``batch_size``.

    Yields each source with its picture, or with the ImageError that kept it from being read, so that one
    bad file does not stop a folder.
    """
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        results: list[Image.Image | ImageError | None] = [None] * len(chunk)
        same_size: dict[tuple[int, ...], list[int]] = {}
        tensors: list[torch.Tensor | None] = []
        for index, source in enumerate(chunk):
            try:
                tensor = images.to_tensor(images.load_image(source))
            except ImageError as exc:
                results[index] = exc
                tensors.append(None)
                continue
            tensors.append(images.resize_long_side(tensor, size) if size else tensor)
            same_size.setdefault(tuple(tensors[-1].shape), []).append(index)
        for indices in same_size.values():
            batch = torch.cat([tensors[i] for i in indices])
            painted = feedforward.apply(model.net, batch, preserve_color=preserve_color, tile=tile)
            for row, index in enumerate(indices):
                results[index] = images.to_pil(painted[row:row + 1])
        yield from zip(chunk, results, strict=True)
