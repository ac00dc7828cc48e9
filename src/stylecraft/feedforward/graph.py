"""Exact tiles for an exported network run by an inference runtime (``exact.py``'s :class:`.Stages`).

A runtime computes each instance normalisation's statistics over the picture it is given, a tile. So the
exported graph is rewritten once: each ``InstanceNormalization`` node becomes a normalisation by a mean and
a standard deviation given as inputs (``mean_k``, ``std_k``), and the graph also reports, for each layer, the
sums of its input and of its square over a window (the ``window`` input, a mask at the picture's resolution,
read at the layer's stride). Each pass then runs only the part of the graph it needs: the pass measuring
layer k stops at layer k. Any runtime that reads ONNX can run the parts (``runtimes.py`` compiles them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from .exact import Window
from .loaded import INPUT, OUTPUT, Compile, Run

WINDOW = "window"
_SPATIAL, _CHANNELS_LAST = "stylecraft_spatial_axes", "stylecraft_channel_axes"
_ZEROS, _ENDS = "stylecraft_slice_starts", "stylecraft_slice_ends"


def _names(index: int) -> dict[str, str]:
    return {part: f"{part}_{index}" for part in ("mean", "std", "sum", "squares", "count")}


def _replace(node: onnx.NodeProto, index: int, channels: int) -> tuple[list[onnx.NodeProto], list[onnx.ValueInfoProto],
                                                                       list[onnx.ValueInfoProto]]:
    """The nodes that replace one InstanceNormalization, and the inputs and outputs they add to the graph."""
    x, scale, bias = node.input
    names, p = _names(index), f"stylecraft_norm{index}_"
    nodes = [
        # the window at this layer's resolution: every s-th position, s = the picture's size / the layer's
        helper.make_node("Shape", [WINDOW], [p + "picture"], start=2),
        helper.make_node("Shape", [x], [p + "layer"], start=2),
        helper.make_node("Div", [p + "picture", p + "layer"], [p + "stride"]),
        helper.make_node("Slice", [WINDOW, _ZEROS, _ENDS, _SPATIAL, p + "stride"], [p + "mask"]),
        helper.make_node("Mul", [x, p + "mask"], [p + "inside"]),
        helper.make_node("ReduceSum", [p + "inside", _SPATIAL], [names["sum"]], keepdims=0),
        helper.make_node("Mul", [p + "inside", x], [p + "square"]),
        helper.make_node("ReduceSum", [p + "square", _SPATIAL], [names["squares"]], keepdims=0),
        helper.make_node("ReduceSum", [p + "mask"], [names["count"]], keepdims=0),
        # (x - mean) / std * scale + bias, with the statistics given
        helper.make_node("Unsqueeze", [names["mean"], _SPATIAL], [p + "mean"]),
        helper.make_node("Unsqueeze", [names["std"], _SPATIAL], [p + "std"]),
        helper.make_node("Unsqueeze", [scale, _CHANNELS_LAST], [p + "scale"]),
        helper.make_node("Unsqueeze", [bias, _CHANNELS_LAST], [p + "bias"]),
        helper.make_node("Sub", [x, p + "mean"], [p + "centred"]),
        helper.make_node("Div", [p + "centred", p + "std"], [p + "normal"]),
        helper.make_node("Mul", [p + "normal", p + "scale"], [p + "scaled"]),
        helper.make_node("Add", [p + "scaled", p + "bias"], list(node.output)),
    ]
    statistic: list[str | int] = ["batch", channels]
    inputs = [helper.make_tensor_value_info(names[k], TensorProto.FLOAT, statistic) for k in ("mean", "std")]
    outputs = [helper.make_tensor_value_info(names[k], TensorProto.FLOAT, statistic) for k in ("sum", "squares")]
    outputs.append(helper.make_tensor_value_info(names["count"], TensorProto.FLOAT, []))
    return nodes, inputs, outputs


def with_outside_statistics(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[float]]:
    """``model`` with its instance normalisations taking their statistics as inputs and reporting their
    windowed sums as outputs, and each layer's epsilon, in the order the graph computes them."""
    graph = model.graph
    channels = {t.name: t.dims[0] for t in graph.initializer if t.dims}
    nodes: list[onnx.NodeProto] = []
    inputs = list(graph.input) + [helper.make_tensor_value_info(WINDOW, TensorProto.FLOAT, [1, 1, "h", "w"])]
    outputs = list(graph.output)
    epsilons: list[float] = []
    for node in graph.node:
        if node.op_type != "InstanceNormalization":
            nodes.append(node)
            continue
        added, more_inputs, more_outputs = _replace(node, len(epsilons), channels[node.input[1]])
        nodes += added
        inputs += more_inputs
        outputs += more_outputs
        epsilons.append(next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5))
    constants = [numpy_helper.from_array(np.array(v, np.int64), name) for name, v in (
        (_SPATIAL, [2, 3]), (_CHANNELS_LAST, [1, 2]), (_ZEROS, [0, 0]), (_ENDS, [np.iinfo(np.int64).max] * 2))]
    rewritten = helper.make_graph(nodes, graph.name, inputs, outputs, [*graph.initializer, *constants])
    result = helper.make_model(rewritten, opset_imports=model.opset_import, ir_version=model.ir_version)
    result.functions.extend(model.functions)
    return result, epsilons


def part(model: onnx.ModelProto, outputs: list[str]) -> onnx.ModelProto:
    """The smallest graph of ``model`` that computes ``outputs``: the nodes they depend on and the inputs those
    read (ONNX graphs list their nodes in an order that computes them)."""
    graph = model.graph
    needed, kept = set(outputs), []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    by_name = {o.name: o for o in graph.output}
    small = helper.make_graph(list(reversed(kept)), graph.name, [i for i in graph.input if i.name in needed],
                              [by_name[name] for name in outputs],
                              [t for t in graph.initializer if t.name in needed])
    result = helper.make_model(small, opset_imports=model.opset_import, ir_version=model.ir_version)
    result.functions.extend(model.functions)
    return result


class GraphStages:
    """:class:`.Stages` for an exported network: the rewritten graph, its parts compiled by ``compile`` (a
    runtime's, from the part's serialised bytes) as the passes need them, one at a time."""

    device = torch.device("cpu")

    def __init__(self, exported: bytes, compile: Compile, halo: int) -> None:
        self.graph, self.epsilons = with_outside_statistics(onnx.load_from_string(exported))
        self.compile, self.halo = compile, halo
        self.statistics: dict[str, NDArray[np.float32]] = {}
        self.parts: dict[str, tuple[bytes, list[str]]] = {}
        # One part compiled at a time: a runtime keeps each compiled graph's working memory (a tile's
        # activations) for as long as the graph lives, which for every layer's part at once is many GB.
        self.active: tuple[str, Run] | None = None

    def __len__(self) -> int:
        return len(self.epsilons)

    def _run(self, outputs: list[str], feeds: dict[str, NDArray[np.float32]]) -> Sequence[NDArray[np.float32]]:
        key = ",".join(outputs)
        if key not in self.parts:
            piece = part(self.graph, outputs)
            self.parts[key] = (piece.SerializeToString(), [i.name for i in piece.graph.input])
        serialised, inputs = self.parts[key]
        if self.active is None or self.active[0] != key:
            self.active = None  # the last part's memory goes before the next part takes its own
            self.active = (key, self.compile(serialised, outputs))
        return self.active[1]({name: feeds[name] for name in inputs})

    def measure(self, index: int, piece: torch.Tensor, window: Window) -> torch.Tensor:
        top, left, height, width = window
        mask = np.zeros((1, 1, *piece.shape[-2:]), np.float32)
        mask[..., top:top + height, left:left + width] = 1
        names = _names(index)
        total, squares, count = self._run([names["sum"], names["squares"], names["count"]],
                                          {INPUT: piece.float().numpy(), WINDOW: mask, **self.statistics})
        sums = torch.from_numpy(np.stack([total, squares])).double()
        return torch.cat([sums, torch.full_like(sums[:1], float(count))])

    def fix(self, index: int, mean: torch.Tensor, variance: torch.Tensor) -> None:
        names = _names(index)
        self.statistics[names["mean"]] = mean.float().numpy()
        self.statistics[names["std"]] = (variance + self.epsilons[index]).sqrt().float().numpy()

    def run(self, piece: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run([OUTPUT], {INPUT: piece.float().numpy(), **self.statistics})[0])
