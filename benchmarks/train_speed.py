"""Seconds per training step of a real-time network on this machine: fp32 against bf16 autocast, by network
width and crop size, with the perceptual loss of `stylecraft train` (VGG-19 to relu4_3) on random batches.

bf16 pays on CPUs with AVX-512 BF16 or AMX (oneDNN runs the convolutions in bf16); elsewhere it can be slower
than fp32. The median of ``--steps`` steps after one warm-up step; run it alone (two torch processes on two
cores run several times slower).

    python benchmarks/train_speed.py [--widths full,compact] [--sizes 256,192] [--batch-size 4] [--steps 5]
                                     [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transfer_vs_pastiche import cpu_model

from stylecraft.features import FeatureNetwork
from stylecraft.feedforward import WIDTHS, TrainConfig, TransformerNet
from stylecraft.objective import Objective, Targets
from stylecraft.runtime import Runtime


def step_seconds(width: int, size: int, batch: int, precision: str, steps: int, channels_last: bool = False) -> float:
    """The median seconds of one optimiser step, as `stylecraft train` takes it (its batches and network in
    the channels-last memory format when ``channels_last``)."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    config = TrainConfig()
    runtime = Runtime.resolve("cpu", precision)
    vgg = FeatureNetwork().build([*config.content_layers, *config.style_layers], runtime.device)
    objective = Objective(vgg, content_layers=config.content_layers, style_layers=config.style_layers,
                          content_weight=config.content_weight, style_weight=config.style_weight,
                          tv_weight=config.tv_weight, autocast=runtime.autocast)
    generator = torch.Generator().manual_seed(0)
    style = objective.style_targets([torch.rand(1, 3, size, size, generator=generator)], [1.0])
    net = TransformerNet(width).to(memory_format=memory_format)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    times = []
    for _ in range(steps + 1):
        batch_images = torch.rand(batch, 3, size, size, generator=generator).to(memory_format=memory_format)
        began = time.perf_counter()
        targets = Targets(objective.content_targets(batch_images, config.loss_margin), style)
        with runtime.autocast():
            output = net(batch_images)
        terms = objective(output.float(), targets, margin=config.loss_margin)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        times.append(time.perf_counter() - began)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="full,compact")
    parser.add_argument("--sizes", default="256,192")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    print(f"{cpu_model()}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    print(f"{'width':>8} {'size':>5} {'fp32 s/step':>12} {'bf16 s/step':>12} {'bf16 speed-up':>14} "
          f"{'bf16+channels_last':>19}")
    for width in args.widths.split(","):
        for size in map(int, args.sizes.split(",")):
            found = {p: step_seconds(WIDTHS.get(width, 0) or int(width), size, args.batch_size, p, args.steps)
                     for p in ("fp32", "bf16")}
            found["bf16_channels_last"] = step_seconds(WIDTHS.get(width, 0) or int(width), size, args.batch_size,
                                                       "bf16", args.steps, channels_last=True)
            rows.append({"width": width, "size": size, **found})
            print(f"{width:>8} {size:>5} {found['fp32']:>12.2f} {found['bf16']:>12.2f} "
                  f"{found['fp32'] / found['bf16']:>13.2f}x {found['bf16_channels_last']:>19.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "threads": torch.get_num_threads(),
                                         "batch_size": args.batch_size, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
