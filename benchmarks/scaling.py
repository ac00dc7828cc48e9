"""How the cost of one optimisation step grows with image size, and how close it is to this machine's limit.

For each size: seconds per full step (VGG-19 forward to relu5_1 and backward to the pixels, the losses of a
transfer), peak memory of a process doing only that, the step's arithmetic (multiply-adds of every
convolution counted from the layer shapes, the backward pass to the input costing as much again), and the
physical floor: that arithmetic divided by the convolution throughput this machine reaches on the
largest VGG convolution measured alone. Prints a table and writes JSON.

    python benchmarks/scaling.py [--sizes 256,512,1024] [--repeats 5] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from stylecraft import FeatureNetwork
from stylecraft.losses import content_loss, gram_matrix, relative_error

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]


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


def measure_step(size: int, repeats: int, device: torch.device) -> dict:
    """Median seconds per step and peak memory at ``size`` (long side, 4:3), in this process."""
    net = FeatureNetwork().build(LAYERS, device)
    width, height = size, size * 3 // 4
    content = torch.rand(1, 3, height, width, device=device)
    with torch.no_grad():
        feats = net(content, LAYERS)
        target_c = feats["relu4_2"]
        grams = {k: gram_matrix(v) for k, v in feats.items() if k != "relu4_2"}
    pixels = content.clone().requires_grad_(True)
    times = []
    for index in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        out = net(pixels, LAYERS)
        loss = content_loss(out["relu4_2"], target_c)
        loss = loss + sum(relative_error(gram_matrix(out[k]), g) for k, g in grams.items())
        loss.backward()
        _sync(device)
        if index:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"size": size, "width": width, "height": height, "seconds_per_step": statistics.median(times),
            "spread": [min(times), max(times)], "peak_memory_mb": peak / 2**20,
            "flops_per_step": step_flops(net, width, height),
            "activation_mb": net.activation_bytes(width, height) / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default=None, help="default benchmarks/results/scaling-<device>-<host>.json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.one:
        print(json.dumps(measure_step(args.one, args.repeats, device)))
        return 0
    throughput = conv_throughput(device, args.repeats * 4)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        # One process per size, so that each peak memory is that size's own.
        done = subprocess.run([sys.executable, __file__, "--one", str(size), "--repeats", str(args.repeats),
                               "--device", args.device], capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.splitlines()[-1])
        row["floor_seconds"] = row["flops_per_step"] / throughput
        row["efficiency"] = row["floor_seconds"] / row["seconds_per_step"]
        rows.append(row)
    print(f"device {device}, conv throughput {throughput / 1e9:.1f} GFLOP/s, torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'size':>11} {'s/step':>8} {'GFLOP/step':>11} {'floor s':>8} {'of floor':>8} {'peak MiB':>9} "
          f"{'activ. MiB':>10}")
    for row in rows:
        print(f"{row['width']:>5}x{row['height']:<5} {row['seconds_per_step']:8.3f} "
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
