"""ONNX export of a trained network (``runtimes`` runs the exported file).

The export is the network's exact :class:`.InferenceNet` form, with dynamic batch, height and width
(multiples of 4, which :func:`.apply.stylise` pads to), and carries the model file's metadata as ONNX
metadata (key ``stylecraft``), so an exported file still says what it paints. ``onnx`` and ``onnxscript``
are optional dependencies: ``pip install "stylecraft[onnx]"``.
"""

from __future__ import annotations

import json
import logging
import warnings

import torch

from .. import checks
from ..errors import ConfigError
from .inference import InferenceNet
from .loaded import INPUT, METADATA_KEY, OUTPUT, StyleModel
from .net import TransformerNet


def to_onnx(model: StyleModel) -> bytes:
    """The model as a serialised ONNX graph with dynamic batch/height/width and the model's metadata; the model
    must hold the network itself (loaded with the torch backend), not a runtime running an export."""
    if not isinstance(model.net, TransformerNet):
        raise ConfigError("only a model loaded for the torch backend can be exported (this one runs an export "
                          "already)")
    onnx = checks.require("onnx", "onnx", "exporting to ONNX")
    checks.require("onnxscript", "onnx", "exporting to ONNX")  # PyTorch's exporter imports it
    example = torch.rand(1, 3, 64, 64)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it warns about torchvision operators that this network never uses
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(InferenceNet(model.net).eval(), (example,),
                                        input_names=[INPUT], output_names=[OUTPUT], dynamic_shapes={"image": dims},
                                        dynamo=True, verbose=False)
    finally:
        exporter_log.setLevel(level)
    assert program is not None  # dynamo=True always returns an ONNXProgram
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(model.metadata)})
    serialised: bytes = proto.SerializeToString()
    return serialised
