"""Running an exported network (``export``) with ONNX Runtime or OpenVINO, both optional dependencies.

Each gives a callable like :class:`.TransformerNet` ((N, 3, H, W) in [0, 1] -> the same) that
:func:`.apply.stylise` drives like the network itself, exact tiles included (``graph.py``), and the metadata
the export carries. Both run a network faster than eager PyTorch on a CPU; how much faster is measured in
docs/performance.md (``benchmarks/realtime.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import checks
from ..errors import ConfigError, WeightsError, one_line
from .exact import Stages, halo
from .loaded import INPUT, METADATA_KEY, OUTPUT, Compile, Run, RuntimeNet
from .net import TransformerNet
from .settings import PRECISIONS


def _runtime_net(exported: bytes, compile: Compile, metadata: dict[str, Any]) -> RuntimeNet:
    """The export run by ``compile``'s runtime, its exact-tile form (``graph.py``, which needs onnx) made when
    first asked for."""
    def stages() -> Stages:
        checks.require("onnx", "onnx", "exact tiles of an exported network")
        from .graph import GraphStages

        tiles_halo = halo(TransformerNet(width=1, residual_blocks=int(metadata.get("residual_blocks", 5))))
        return GraphStages(exported, compile, tiles_halo)

    return RuntimeNet(compile(exported, [OUTPUT]), stages)


def _source(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    """The file's bytes (checked) or the bytes themselves, and a name for messages."""
    if isinstance(source, bytes):
        return source, "the exported network"
    if not Path(source).is_file():
        raise WeightsError(f"{source}: no such ONNX file")
    return Path(source).read_bytes(), str(source)


def _metadata(name: str, props: dict[str, str], inputs: list[str]) -> dict[str, Any]:
    """The stylecraft metadata of an export, or a WeightsError for an ONNX file stylecraft did not write."""
    if METADATA_KEY not in props or inputs != [INPUT]:
        raise WeightsError(f"{name}: not an ONNX file exported by `stylecraft export`")
    try:
        metadata: dict[str, Any] = json.loads(props[METADATA_KEY])
        return metadata
    except ValueError as exc:
        raise WeightsError(f"{name}: damaged stylecraft metadata in the ONNX file") from exc


def _unreadable(name: str, exc: Exception) -> WeightsError:
    return WeightsError(f"{name}: not a readable ONNX file ({one_line(exc, 200)})")


def _providers(onnxruntime: ModuleType, device: str) -> list[str]:
    available = onnxruntime.get_available_providers()
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise ConfigError("`device` cuda: this onnxruntime has no CUDA support (install onnxruntime-gpu)")
    if device not in ("auto", "cpu"):
        raise ConfigError(f"`device` {device}: the ONNX backend runs on cpu or cuda")
    return ["CPUExecutionProvider"]


def onnx_session(source: str | os.PathLike[str] | bytes, device: str = "auto") -> tuple[RuntimeNet, dict[str, Any]]:
    """An ONNX Runtime :class:`RuntimeNet` for an exported file (or its bytes) and the metadata it carries.

    A file that ONNX Runtime cannot read, or that stylecraft did not export, is a WeightsError.
    """
    onnxruntime = checks.require("onnxruntime", "onnx", "the ONNX backend")
    source, name = _source(source)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Idle worker threads sleep instead of spin-waiting, which would steal the CPU from the PyTorch work
    # (resizing, colour, tiles) between runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = _providers(onnxruntime, device)
    try:
        session = onnxruntime.InferenceSession(source, options, providers=providers)
    except Exception as exc:
        raise _unreadable(name, exc) from exc
    metadata = _metadata(name, session.get_modelmeta().custom_metadata_map, [i.name for i in session.get_inputs()])

    def compile(model: bytes, outputs: list[str]) -> Run:
        part = session if model is source else onnxruntime.InferenceSession(model, options, providers=providers)
        return lambda feeds: part.run(outputs, feeds)

    return _runtime_net(source, compile, metadata), metadata


def openvino_session(source: str | os.PathLike[str] | bytes, device: str = "auto",
                     precision: str = "fp32") -> tuple[RuntimeNet, dict[str, Any]]:
    """An OpenVINO :class:`RuntimeNet` (on the CPU) for an exported file or its bytes, and its metadata.

    The precision is always set: left alone, OpenVINO runs bf16 on CPUs that have it (AVX-512 BF16, AMX),
    which changes the pictures from one CPU to the next.
    """
    openvino = checks.require("openvino", "openvino", "the OpenVINO backend")
    if device not in ("auto", "cpu"):
        raise ConfigError(f"`device` {device}: the OpenVINO backend runs on the CPU (use `backend` onnx or torch)")
    source, name = _source(source)
    core = openvino.Core()
    try:
        model = core.read_model(source)
    except Exception as exc:
        raise _unreadable(name, exc) from exc
    key = ["framework", METADATA_KEY]
    props = {METADATA_KEY: model.get_rt_info(key).astype(str)} if model.has_rt_info(key) else {}
    metadata = _metadata(name, props, [port.get_any_name() for port in model.inputs])
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": PRECISIONS[precision]}

    def compile(graph: bytes, outputs: list[str]) -> Run:
        request = core.compile_model(model if graph is source else core.read_model(graph), "CPU",
                                     config).create_infer_request()

        def run(feeds: dict[str, NDArray[np.float32]]) -> Sequence[NDArray[np.float32]]:
            found = request.infer(feeds)
            return [found[name] for name in outputs]

        return run

    return _runtime_net(source, compile, metadata), metadata
