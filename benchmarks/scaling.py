"""How the cost of one optimisation step grows with image size, whole and tile by tile.

For each size and each tile side asked for (0: whole): seconds per full step (the transfer's objective,
VGG-19 to relu5_1 with its content and Gram style terms, forward and backward to the pixels; tiled, the
two exact passes of ``Objective.evaluate``), the peak memory of a process doing only that, the step's
arithmetic (multiply-adds of every convolution counted from the layer shapes, the backward pass to the input
costing as much again) and the physical floor: that arithmetic divided by the convolution throughput this
machine reaches on the largest VGG convolution measured alone. "per px" compares each row's seconds per
pixel with the first row's: 1.0 is growth exactly proportional to the pixel count. Prints a table and
writes JSON.

    python benchmarks/scaling.py [--sizes 256,512,1024] [--tiles 0] [--repeats 5] [--device cpu|cuda]
    python benchmarks/scaling.py --sizes 1024,2048,4096 --tiles 0,1024 --repeats 2   # print sizes
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from stylecraft import FeatureNetwork
from stylecraft.objective import Objective
from stylecraft.optimize.memory import estimate_memory
from stylecraft.runtime import Runtime
from stylecraft.tiling import Tiling

STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
LAYERS = [*STYLE_LAYERS, "relu4_2"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_flops(net: nn.Module, width: int, height: int) -> float:
    """Floating-point operations of one forward + backward-to-input pass (2 per multiply-add)."""
    forward = 0.0
    for name, module in net.layers.items():
        if isinstance(module, nn.Conv2d):
            forward += 2 * module.in_channels * module.out_channels * 9 * width * height
        elif name.startswith("pool"):
            width, height = width // 2, height // 2
    return 2 * forward


def conv_throughput(device: torch.device, repeats: int) -> float:
    """FLOP/s of a 512 -> 512 3x3 convolution at 64 x 64, VGG's widest layer, measured alone."""
    conv = nn.Conv2d(512, 512, 3, padding=1).to(device).to(memory_format=torch.channels_last).requires_grad_(False)
    x = torch.rand(1, 512, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    flops = 2 * 512 * 512 * 9 * 64 * 64
    with torch.no_grad():
        conv(x)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            conv(x)
            _sync(device)
            times.append(time.perf_counter() - start)
    return flops / statistics.median(times)


def measure_step(size: int, tile: int, repeats: int, device: torch.device) -> dict:
    """Median seconds per step and peak memory at ``size`` (long side, 4:3), whole (``tile`` 0) or tile by
    tile, in this process."""
    net = FeatureNetwork().build(LAYERS, device)
    objective = Objective(net, content_layers=["relu4_2"], style_layers=STYLE_LAYERS, style_weight=1e4)
    width, height = size, size * 3 // 4
    tiling = Tiling.for_net(net, tile) if tile else None
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, height, width, generator=generator).to(device)
    style = torch.rand(1, 3, 384, 512, generator=generator).to(device)
    targets = objective.targets(content, [style], [1.0], tiling)
    pixels = content.clone().requires_grad_(True)
    times = []
    for index in range(repeats + 1):
        pixels.grad = None
        _sync(device)
        start = time.perf_counter()
        objective.evaluate(pixels, targets, tiling)
        _sync(device)
        if index:
            times.append(time.perf_counter() - start)
    return {"size": size, "tile": tile, "tiles": tiling.count(width, height) if tiling else 1, "width": width,
            "height": height, "seconds_per_step": statistics.median(times), "spread": [min(times), max(times)],
            "peak_memory_mb": Runtime(device).peak_memory_mb(), "flops_per_step": step_flops(net, width, height),
            "activation_mb": net.activation_bytes(width, height) / 2**20}


def _fits_whole(size: int, device: torch.device) -> bool:
    """Whether one whole step at ``size`` fits the memory the device has free (estimated)."""
    net = FeatureNetwork().build(LAYERS, torch.device("cpu"))
    free = Runtime.resolve(device.type).available_memory()
    return free is None or estimate_memory(net, (size, size * 3 // 4), "adam") <= free


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--tiles", default="0", help="tile sides to time at each size; 0 is whole")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default=None, help="default benchmarks/results/scaling-<device>-<host>.json")
    parser.add_argument("--one", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.one:
        print(json.dumps(measure_step(*args.one, args.repeats, device)))
        return 0
    throughput = conv_throughput(device, args.repeats * 4)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for tile in (int(t) for t in args.tiles.split(",")):
            if (tile and tile >= size) or (not tile and not _fits_whole(size, device)):
                continue
            # One process per row, so that each peak memory is that row's own.
            done = subprocess.run([sys.executable, __file__, "--one", str(size), str(tile), "--repeats",
                                   str(args.repeats), "--device", args.device], capture_output=True, text=True,
                                  check=True)
            row = json.loads(done.stdout.splitlines()[-1])
            row["floor_seconds"] = row["flops_per_step"] / throughput
            row["efficiency"] = row["floor_seconds"] / row["seconds_per_step"]
            row["per_pixel"] = (row["seconds_per_step"] / row["flops_per_step"]) / (
                rows[0]["seconds_per_step"] / rows[0]["flops_per_step"]) if rows else 1.0
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"device {device}, conv throughput {throughput / 1e9:.1f} GFLOP/s, torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'size':>11} {'tiles':>9} {'s/step':>8} {'per px':>6} {'GFLOP/step':>11} {'floor s':>8} "
          f"{'of floor':>8} {'peak MiB':>9} {'activ. MiB':>10}")
    for row in rows:
        how = f"{row['tiles']} x {row['tile']}" if row["tile"] else "whole"
        print(f"{row['width']:>5}x{row['height']:<5} {how:>9} {row['seconds_per_step']:8.3f} {row['per_pixel']:6.2f} "
              f"{row['flops_per_step'] / 1e9:11.1f} {row['floor_seconds']:8.3f} {row['efficiency']:8.0%} "
              f"{row['peak_memory_mb']:9.0f} {row['activation_mb']:10.0f}")
    path = Path(args.json or f"benchmarks/results/scaling-{device.type}-{platform.node()}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": str(device), "torch": torch.__version__,
                                "threads": torch.get_num_threads(), "conv_flops_per_second": throughput,
                                "machine": platform.platform(), "rows": rows}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
