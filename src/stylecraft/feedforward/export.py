"""ONNX export of a trained network, and running an exported one with ONNX Runtime.

The export has dynamic batch, height and width (multiples of 4, which :func:`.apply.stylise` pads to) and
carries the model file's metadata as ONNX metadata (key ``stylecraft``), so an exported file still says what
it paints. ``onnx``/``onnxscript`` (export) and ``onnxruntime`` (running) are optional dependencies:
``pip install "stylecraft[onnx]"``. On a CPU, ONNX Runtime runs the network about twice as fast as eager
PyTorch (``benchmarks/realtime.py``).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError, WeightsError
from .inference import InferenceNet
from .model import StyleModel

INPUT, OUTPUT = "image", "stylised"
METADATA_KEY = "stylecraft"
_INSTALL = 'pip install "stylecraft[onnx]"'


def to_onnx(model: StyleModel) -> bytes:
    """The model as a serialised ONNX graph with dynamic batch/height/width and the model's metadata."""
    try:
        import onnx
    except ImportError as exc:
        raise ConfigError(f"exporting to ONNX needs the onnx and onnxscript packages: {_INSTALL}") from exc
    example = torch.rand(1, 3, 64, 64)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it warns about torchvision operators that this network never uses
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(InferenceNet(model.net).eval(), (example,), input_names=[INPUT],
                                        output_names=[OUTPUT], dynamic_shapes={"image": dims}, dynamo=True,
                                        verbose=False)
    finally:
        exporter_log.setLevel(level)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(model.metadata)})
    return proto.SerializeToString()


class OnnxNet:
    """A callable like :class:`.TransformerNet` ((N, 3, H, W) in [0, 1] -> the same) run by ONNX Runtime."""

    def __init__(self, session: object) -> None:
        self.session = session

    @property
    def device(self) -> torch.device:
        """Where results come back: always the CPU (ONNX Runtime takes and returns NumPy arrays)."""
        return torch.device("cpu")

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        batch = image.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: batch})[0])


def _providers(device: str) -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise ConfigError("--device cuda: this onnxruntime has no CUDA support (install onnxruntime-gpu)")
    if device not in ("auto", "cpu"):
        raise ConfigError(f"--device {device}: the ONNX backend runs on cpu or cuda")
    return ["CPUExecutionProvider"]


def onnx_session(source: str | os.PathLike | bytes, device: str = "auto") -> tuple[OnnxNet, dict]:
    """An :class:`OnnxNet` for an exported file (or its bytes) and the metadata it carries.

    A file that ONNX Runtime cannot read, or that stylecraft did not export, is a WeightsError.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(f"the ONNX backend needs onnxruntime: {_INSTALL}") from exc
    name = "the exported network" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes):
        if not Path(source).is_file():
            raise WeightsError(f"{name}: no such ONNX file")
        source = str(source)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Idle worker threads sleep instead of spin-waiting, which would steal the CPU from the PyTorch work
    # (resizing, colour, tiles) between runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = _providers(device)
    try:
        session = onnxruntime.InferenceSession(source, options, providers=providers)
    except Exception as exc:
        raise WeightsError(f"{name}: not a readable ONNX file ({str(exc).splitlines()[0][:200]})") from exc
    props = session.get_modelmeta().custom_metadata_map
    inputs = [i.name for i in session.get_inputs()]
    if METADATA_KEY not in props or inputs != [INPUT]:
        raise WeightsError(f"{name}: not an ONNX file exported by `stylecraft export`")
    try:
        metadata = json.loads(props[METADATA_KEY])
    except ValueError as exc:
        raise WeightsError(f"{name}: damaged stylecraft metadata in the ONNX file") from exc
    return OnnxNet(session), metadata
