"""The VGG models' layer names, their poolings and weight formats: names only, free of torch, so settings can be
checked (and the command line's ``--help`` answer) without loading it.

Layer names follow the papers: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``. Keras-style names
are accepted too: ``block{b}_conv{i}`` is the *activated* output in Keras (its convolutions carry their ReLU),
so it means ``relu{b}_{i}``; ``block{b}_pool`` means ``pool{b}``.
"""

from __future__ import annotations

import difflib
import re

from ..errors import ConfigError

#: Convolutions per block.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
#: The preprocessing a weight file may be named to have, where its name and keys do not tell (:mod:`.weights`).
FORMATS = ("torchvision", "caffe")
#: Poolings between the blocks.
POOLINGS = ("max", "avg")
_KERAS = re.compile(r"^block(\d)_(?:pool|conv(\d+))$")


def layer_names(model: str = "vgg19") -> list[str]:
    """Every layer of ``model`` in order: conv1_1, relu1_1, conv1_2, ..., pool5."""
    if model not in BLOCKS:
        raise ConfigError(f"unknown model {model!r}; use one of {', '.join(sorted(BLOCKS))}")
    names = []
    for block, count in enumerate(BLOCKS[model], start=1):
        for index in range(1, count + 1):
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
        names.append(f"pool{block}")
    return names


def canonical_layer(name: str, model: str = "vgg19") -> str:
    """The stylecraft name of a layer given in either naming; a clear error suggests the nearest names."""
    names = layer_names(model)
    cleaned = name.strip().lower()
    match = _KERAS.match(cleaned)
    if match:
        block, index = match.groups()
        cleaned = f"pool{block}" if index is None else f"relu{block}_{index}"
    if cleaned in names:
        return cleaned
    close = difflib.get_close_matches(cleaned, names, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; see `stylecraft layers --model {model}`"
    raise ConfigError(f"unknown layer {name!r} for {model}{hint}")


def downsampling(layer: str, model: str = "vgg19") -> int:
    """How many times the image is halved before ``layer``: an image needs 2**this pixels per side."""
    names = layer_names(model)
    upto = names[: names.index(canonical_layer(layer, model)) + 1]
    return sum(1 for name in upto if name.startswith("pool"))
