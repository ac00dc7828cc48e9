#!/usr/bin/env python3
"""How far one optimisation step is from what this machine's arithmetic can do, block by block of VGG-19.

A step of the standard preset runs VGG-19 up to relu5_1 (content relu4_2, Gram style at relu1_1 ... relu5_1)
forward, then backward to the pixels. For each block of the network (conv1_x to pool1, ..., conv5_1 and
relu5_1) at ``--size`` (long side, 4:3), this counts the floating-point operations of its forward pass and
of its backward pass to its input (``torch.utils.flop_counter``; the weights need no gradient), times each
(median of ``--repeats``, after a warm-up) and divides the rate by the machine's peak, measured here: the
best of a large matrix product and VGG's widest convolution alone, in fp32 and in bf16. Then the whole step
as the optimiser runs it (``Objective.evaluate``: forward, the losses in fp32, backward), whose time beyond
the blocks' sum is the losses, the Gram matrices and the casts. Each precision is timed as the optimiser
runs it: fp32, and bf16 autocast of the network (``Runtime.autocast``).

``--device cuda`` measures a GPU the same way: the clock is the wall clock after the device has finished
its queued work, fp32 is IEEE fp32 as stylecraft runs it (``Runtime.work``, not cuDNN's TF32), and the peak's
matrix product is 8192 x 8192 and the convolution runs a batch of 16, enough to fill the chip.

On a machine shared with other work, ``--threads 1 --clock thread`` counts the CPU time of the one thread
that computes instead of the wall time, which leaves out the time spent waiting for a core; the peak is then
one core's. Prints a table and writes JSON (default ``benchmarks/results/step-floor-<size>-<cpu>.json``, with
``-1thread`` for one thread)::

    python benchmarks/step_floor.py [--size 512] [--repeats 5] [--precisions fp32,bf16] [--json PATH]
    python benchmarks/step_floor.py --threads 1 --clock thread     # on a busy machine
    python benchmarks/step_floor.py --device cuda                   # a GPU: step-floor-512-cuda-<gpu>.json
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transfer_vs_pastiche import RESULTS, machine_metadata, write_json

from stylecraft import FeatureNetwork, TransferConfig
from stylecraft.objective import Objective
from stylecraft.runtime import BF16_FLAGS, Runtime, cpu_flags

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
Clock: TypeAlias = Callable[[], float]
CLOCKS: dict[str, Clock] = {"wall": time.perf_counter, "thread": time.thread_time}


def synchronised(clock: Clock, device: torch.device) -> Clock:
    """``clock``, read after ``device`` has finished the work queued on it (CUDA runs asynchronously)."""
    if device.type != "cuda":
        return clock

    def read() -> float:
        torch.cuda.synchronize(device)
        return clock()

    return read


def machine_name(device: torch.device) -> str:
    """A short name for the machine measured, for file names: the GPU's model (cuda-h100), or the CPU's."""
    if device.type == "cuda":
        words = torch.cuda.get_device_name(device).lower().split()
        return "cuda-" + next((w for w in words if any(c.isdigit() for c in w)), words[-1])
    return cpu_name()


def cpu_name() -> str:
    """A short name for this CPU for file names: its family and its widest arithmetic (xeon-amx, epyc-avx512bf16)."""
    meta = machine_metadata("cpu")
    model = str(meta["cpu_model"]).lower()
    family = next((word for word in ("xeon", "epyc", "ryzen", "core", "apple") if word in model), "cpu")
    flags = cpu_flags()
    isa = next((tag for tag, flag in (("amx", "amx_bf16"), ("avx512bf16", "avx512_bf16"), ("avx512", "avx512f"),
                                      ("avx2", "avx2")) if flag in flags), "generic")
    return f"{family}-{isa}"


def median_seconds(work: Callable[[], object], repeats: int, clock: Clock) -> float:
    """The median time of ``work`` on ``clock`` over ``repeats`` calls after one warm-up call."""
    work()
    times = []
    for _ in range(repeats):
        began = clock()
        work()
        times.append(clock() - began)
    return statistics.median(times)


def peak(precision: str, repeats: int, clock: Clock, device: torch.device) -> dict[str, float]:
    """FLOP/s of a 2048 x 2048 matrix product and of a 512 -> 512 3x3 convolution at 64 x 64 (VGG's widest
    layer, channels-last as the network runs), each alone in ``precision``; on a GPU 8192 x 8192 and a batch
    of 16."""
    scale = 4 if device.type == "cuda" else 1
    dtype, n, batch = DTYPES[precision], 2048 * scale, scale * scale
    a, b = torch.rand(n, n, dtype=dtype, device=device), torch.rand(n, n, dtype=dtype, device=device)
    conv = nn.Conv2d(512, 512, 3, padding=1).to(device=device, dtype=dtype,  # type: ignore[call-overload]
                                                 memory_format=torch.channels_last)
    conv.requires_grad_(False)
    x = torch.rand(batch, 512, 64, 64, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        matmul = 2 * n**3 / median_seconds(lambda: a @ b, repeats, clock)
        convolution = batch * 2 * 512 * 512 * 9 * 64 * 64 / median_seconds(lambda: conv(x), repeats, clock)
    return {"matmul_flops": matmul, "conv_flops": convolution, "peak_flops": max(matmul, convolution)}


def blocks(net: nn.Module) -> dict[str, nn.Sequential]:
    """The network's layers grouped by block (block1: conv1_1 ... pool1), in order."""
    grouped: dict[str, list[nn.Module]] = {}
    for name, module in net.layers.items():  # type: ignore[union-attr]
        grouped.setdefault(f"block{re.search(r'[0-9]', name).group()}", []).append(module)  # type: ignore[union-attr]
    return {name: nn.Sequential(*modules) for name, modules in grouped.items()}


def count_flops(work: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        work()
    return int(counter.get_total_flops())


def measure_block(block: nn.Sequential, given: torch.Tensor, runtime: Runtime, repeats: int,
                  clock: Clock) -> dict[str, float]:
    """Median seconds of ``block``'s forward pass and of its backward pass to its input, under ``runtime``."""
    with runtime.autocast():
        sample = block(given)
    slope = torch.randn_like(sample)

    def forward() -> torch.Tensor:
        with runtime.autocast():
            return block(given.detach().requires_grad_(True))

    def backward() -> None:
        source = given.detach().requires_grad_(True)
        with runtime.autocast():
            found = block(source)
        began = clock()
        torch.autograd.grad(found, source, slope)
        backward_times.append(clock() - began)

    backward_times: list[float] = []
    forward_s = median_seconds(forward, repeats, clock)
    for _ in range(repeats + 1):
        backward()
    return {"forward_s": forward_s, "backward_s": statistics.median(backward_times[1:])}


def measure_step(objective: Objective, pixels: torch.Tensor, targets: object, repeats: int, clock: Clock) -> float:
    """Median seconds of one evaluation of the objective, value and gradient, as the optimiser runs it."""

    def step() -> None:
        image = pixels.detach().clone().requires_grad_(True)
        objective.evaluate(image, targets)  # type: ignore[arg-type]

    return median_seconds(step, repeats, clock)


def run(size: int, repeats: int, precisions: list[str], clock: Clock, device: torch.device) -> dict:
    """Every block's and the whole step's FLOPs, times and fraction of peak, per precision, on ``device``."""
    config = TransferConfig()
    net = FeatureNetwork().build([*config.content_layers, *config.style_layers], device)
    width, height = size, max(1, size * 3 // 4)
    generator = torch.Generator().manual_seed(0)
    photo, painting, pixels = (torch.rand(1, 3, height, width, generator=generator).to(device) for _ in range(3))
    inputs, x = {}, net.preprocess(pixels).contiguous(memory_format=torch.channels_last)
    groups = blocks(net)
    flops = {}
    with torch.no_grad():
        for name, block in groups.items():
            inputs[name] = x
            x = block(x)
    for name, block in groups.items():
        source = inputs[name].detach().requires_grad_(True)
        forward = count_flops(lambda block=block, source=source: block(source))
        found = block(source)
        backward = count_flops(lambda found=found, source=source: torch.autograd.grad(found, source,
                                                                                      torch.ones_like(found)))
        flops[name] = {"forward": forward, "backward": backward}
    record: dict = {"size": [width, height], "layers": net.names, "flops": flops, "peaks": {}, "blocks": {},
                    "step_s": {}}
    for precision in precisions:
        runtime = Runtime(device, precision)
        with runtime.work():
            record["peaks"][precision] = peak(precision, repeats, clock, device)
            record["blocks"][precision] = {name: measure_block(block, inputs[name], runtime, repeats, clock)
                                           for name, block in groups.items()}
            objective = Objective(net, content_layers=config.content_layers, style_layers=config.style_layers,
                                  content_weight=config.content_weight, style_weight=config.style_weight,
                                  tv_weight=config.tv_weight, autocast=runtime.autocast)
            targets = objective.targets(photo, [painting], [1.0])
            record["step_s"][precision] = measure_step(objective, pixels, targets, repeats, clock)
    return record


def table(record: dict) -> str:
    """Per block: GFLOP, and per precision milliseconds (forward + backward) and the fraction of that
    precision's peak; then the blocks' sum and the whole step."""
    precisions = list(record["blocks"])
    head = ["block", "GFLOP"] + [f"{p} {column}" for p in precisions for column in ("ms", "GFLOP/s", "of peak")]
    rows = []
    total_flops = 0.0
    sums = dict.fromkeys(precisions, 0.0)
    for name, counted in record["flops"].items():
        flops = counted["forward"] + counted["backward"]
        total_flops += flops
        row = [name, f"{flops / 1e9:.1f}"]
        for precision in precisions:
            found = record["blocks"][precision][name]
            seconds = found["forward_s"] + found["backward_s"]
            sums[precision] += seconds
            rate = flops / seconds
            row += [f"{seconds * 1e3:.0f}", f"{rate / 1e9:.0f}",
                    f"{rate / record['peaks'][precision]['peak_flops']:.0%}"]
        rows.append(row)
    for label, seconds_of in (("sum of blocks", sums), ("whole step", record["step_s"])):
        row = [label, f"{total_flops / 1e9:.1f}"]
        for precision in precisions:
            rate = total_flops / seconds_of[precision]
            row += [f"{seconds_of[precision] * 1e3:.0f}", f"{rate / 1e9:.0f}",
                    f"{rate / record['peaks'][precision]['peak_flops']:.0%}"]
        rows.append(row)
    peaks = ", ".join(f"{p} {v['peak_flops'] / 1e9:.0f} GFLOP/s (matmul {v['matmul_flops'] / 1e9:.0f}, conv "
                      f"{v['conv_flops'] / 1e9:.0f})" for p, v in record["peaks"].items())
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + f"\n\npeak measured here: {peaks}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="step_floor.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="long side in pixels, 4:3 (default 512)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after a warm-up (default 5)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated, of fp32 and bf16 "
                        "(default both)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, help="torch's threads (default: torch's own choice)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall", help="wall time, or the CPU time of "
                        "the calling thread (with --threads 1 only; default wall)")
    parser.add_argument("--json", type=Path, help="results file (default benchmarks/results/"
                        "step-floor-<size>-<cpu>.json)")
    args = parser.parse_args(argv)
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not args.precisions or any(p not in DTYPES for p in args.precisions):
        parser.error(f"--precisions: choose from {','.join(DTYPES)}")
    if args.size < 16 or args.repeats < 1:
        parser.error("--size must be at least 16 (VGG's deepest block) and --repeats at least 1")
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread counts one thread's time: give --threads 1")
    if args.device not in ("cpu", "cuda"):
        parser.error(f"--device: cpu or cuda, not {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.device == "cuda" and args.clock == "thread":
        parser.error("--clock thread times the CPU: on a GPU use the wall clock")
    args.device = torch.device(args.device)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = machine_metadata(args.device.type)
    meta["bf16_flags"] = sorted(BF16_FLAGS & cpu_flags())
    clock = synchronised(CLOCKS[args.clock], args.device)
    record = {"benchmark": "step_floor", "machine": meta, "clock": args.clock,
              **run(args.size, args.repeats, args.precisions, clock, args.device)}
    threads = "-1thread" if args.threads == 1 else ""
    path = args.json or RESULTS / f"step-floor-{args.size}-{machine_name(args.device)}{threads}.json"
    write_json(path, record)
    width, height = record["size"]
    print(f"one step of the standard preset at {width} x {height}: VGG-19 to relu5_1, forward and backward to "
          f"the pixels; {meta.get('gpu') or meta['cpu_model']}, {meta['torch_threads']} threads, torch "
          f"{meta['torch']}, "
          f"{args.clock} clock")
    print(table(record))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
