"""Does tiling stay exact on an accelerator? The checks the CPU test suite makes, on any device, at sizes a
GPU makes cheap, in fp32 as stylecraft runs it and, on CUDA, the optimiser's also in cuDNN's default TF32
for comparison.

For the optimiser: the tiled objective's value and gradient against the whole picture's, at several tile
sides. For real-time networks: exact tiles (whole-picture instance-norm statistics) against the whole
picture, with the network itself and, on the CPU, its export run by ONNX Runtime and OpenVINO (where
installed), with the seconds each takes. Prints a table and writes JSON.

    python benchmarks/device_check.py [--device cuda] [--size 1024] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch

from stylecraft import FeatureNetwork, feedforward
from stylecraft.feedforward import Network
from stylecraft.feedforward.apply import stylise
from stylecraft.feedforward.net import TransformerNet
from stylecraft.objective import Objective
from stylecraft.runtime import Runtime
from stylecraft.tiling import Tiling

STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def _gradient(objective: Objective, content: torch.Tensor, style: torch.Tensor,
              tiling: Tiling | None) -> tuple[float, torch.Tensor, float]:
    targets = objective.targets(content, [style], [1.0], tiling)
    pixels = (content + 0.1 * torch.randn(content.shape, generator=torch.Generator().manual_seed(1)).to(
        content.device)).clamp(0, 1).requires_grad_(True)
    start = time.perf_counter()
    values = objective.evaluate(pixels, targets, tiling)
    if content.is_cuda:
        torch.cuda.synchronize()
    assert pixels.grad is not None
    return float(values["total"]), pixels.grad, time.perf_counter() - start


def optimiser_rows(device: torch.device, size: int) -> list[dict]:
    """Relative error of the tiled objective's total and gradient, per tile side."""
    net = FeatureNetwork().build([*STYLE_LAYERS, "relu4_2"], device)
    objective = Objective(net, content_layers=["relu4_2"], style_layers=STYLE_LAYERS, style_weight=1e4,
                          tv_weight=1e-3)
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, size * 3 // 4, size, generator=generator).to(device)
    style = torch.rand(1, 3, 384, 512, generator=generator).to(device)
    total, grad, seconds = _gradient(objective, content, style, None)
    rows = [{"check": "objective", "size": f"{size}x{size * 3 // 4}", "tile": "whole", "seconds": seconds}]
    for tile in (size // 4, size // 2):
        tiled_total, tiled_grad, seconds = _gradient(objective, content, style, Tiling.for_net(net, tile))
        rows.append({"check": "objective", "size": f"{size}x{size * 3 // 4}", "tile": tile, "seconds": seconds,
                     "value_error": abs(tiled_total - total) / abs(total),
                     "gradient_error": float((tiled_grad - grad).norm() / grad.norm())})
    return rows


def _networks(net: TransformerNet, device: torch.device) -> dict[str, Network]:
    """The network itself and, on the CPU, its export run by each runtime that is installed."""
    networks: dict[str, Network] = {"torch": net}
    if device.type == "cpu" and importlib.util.find_spec("onnx"):
        exported = feedforward.to_onnx(feedforward.StyleModel(net, {"width": net.width,
                                                                     "residual_blocks": net.residual_blocks}))
        for name, session in (("onnxruntime", feedforward.onnx_session), ("openvino", feedforward.openvino_session)):
            if importlib.util.find_spec(name):
                networks[name] = session(exported)[0]
    return networks


def realtime_rows(device: torch.device, size: int) -> list[dict]:
    """Largest difference (0-1 scale) between exact tiles and the whole picture, for an untrained network
    whose normalisation layers are given spread-out scales so that every layer matters, and the seconds
    each run takes."""
    net = TransformerNet().to(device).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(parameter + 0.05 * torch.randn(parameter.shape, generator=generator).to(device))
    image = torch.rand(1, 3, size * 3 // 4, size, generator=generator).to(device)
    rows = []
    for backend, network in _networks(net, device).items():
        stylise(network, image[..., :64, :64], tile=32)  # compiles the runtime's graphs before timing
        start = time.perf_counter()
        whole = stylise(network, image, tile=2 * size).to(device)
        seconds = time.perf_counter() - start
        for tile in (size // 4, size // 2):
            start = time.perf_counter()
            tiled = stylise(network, image, tile=tile).to(device)
            rows.append({"check": "real-time", "backend": backend, "size": f"{size}x{size * 3 // 4}", "tile": tile,
                         "largest_difference": float((tiled - whole).abs().max()),
                         "changed_by_network": float((whole - image).abs().mean()),
                         "seconds": time.perf_counter() - start, "whole_seconds": seconds})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for arithmetic in ("tf32", "fp32") if device.type == "cuda" else ("fp32",):
        # cuDNN's default, or IEEE fp32 as stylecraft's work sets it; `stylise` always runs as stylecraft does
        with Runtime(device).work() if arithmetic == "fp32" else contextlib.nullcontext():
            found = optimiser_rows(device, args.size) + (realtime_rows(device, args.size) if arithmetic == "fp32"
                                                         else [])
        for row in found:
            rows.append({"arithmetic": arithmetic, **row})
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "torch": torch.__version__,
                                               "name": torch.cuda.get_device_name(device) if device.type == "cuda"
                                               else "cpu", "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
