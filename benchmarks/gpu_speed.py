#!/usr/bin/env python3
"""Benchmark: the optimiser on a GPU, in one run that fits a short lease of a machine with one.

In order, on one pair (default chicago x the_resevoir_at_poitiers):

1. ``cold CLI``: ``stylecraft transfer --quality standard --size 512`` as the first stylecraft process on a
   fresh machine, timed from launch to exit (its own CUDA context, kernels loaded lazily, cuDNN's first
   choices). This script has imported torch before it, so torch's files may be in the page cache already;
   the scorer's network and the machine's description wait until it has run. Then ``CLI again``, the same
   command a second time.
2. ``warm``: ``stylecraft.transfer(...)`` in this process, as a server, a notebook or the studio runs it:
   the median of ``--repeats`` after one warm-up, from reading the files to the picture.
3. ``fine``: ``--quality fine`` (1024 px) from the command line.
4. ``print``: ``--quality print --size 4096`` from the command line.
5. The step floor (``step_floor.py --device cuda``): one step's blocks against the GPU's measured peak.

Every picture is scored with ``stylecraft score``'s numbers. Prints a table and writes ``gpu-speed.json``
(after each step, so a run cut short keeps what it measured), the pictures and the floor's JSON into
``--out``; a step that fails is recorded and the next one runs. ``--device cpu --smoke`` checks the pipeline
on a machine without a GPU in about three minutes (its numbers mean nothing)::

    python benchmarks/gpu_speed.py --out /tmp/gpu                       # on the GPU machine
    python benchmarks/gpu_speed.py --device cpu --smoke --out /tmp/gpu  # the pipeline, anywhere
"""

from __future__ import annotations

import argparse
import datetime
import functools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transfer_vs_pastiche import DEFAULT_IMAGES, Evaluator, machine_metadata, run_child, stylecraft_timing, write_json

import stylecraft

HERE = Path(__file__).resolve().parent
#: (name, options) of the command-line runs, in the order they run; the first is the cold one.
COMMANDS = (("cold CLI", ("--quality", "standard", "--size", "512")),
            ("CLI again", ("--quality", "standard", "--size", "512")),
            ("fine", ("--quality", "fine")),
            ("print", ("--quality", "print", "--size", "4096")))
#: What --smoke runs instead: the same steps, small and short.
SMOKE = {"--size": "64", "iterations": "4"}
#: The floor's seconds at most: a few minutes of a short lease.
FLOOR_TIMEOUT_S = 300


def command_line(name: str, options: tuple[str, ...], args: argparse.Namespace) -> dict:
    """One ``stylecraft transfer`` in its own process: wall time from launch to exit, and its own timings."""
    stem = name.replace(" ", "-")
    output, history = args.out / f"{stem}.png", args.out / f"{stem}_history.json"
    if args.smoke:
        options = (*options[:2], "--size", SMOKE["--size"], "--iterations", SMOKE["iterations"])
    command = [sys.executable, "-m", "stylecraft", "transfer", str(args.content), str(args.style), "-o", str(output),
               *options, "--device", args.device, "--seed", "0", "--history", str(history), "--quiet"]
    run = run_child(command, args.out / f"{stem}.stdout.txt", args.out / f"{stem}.stderr.txt")
    record = {"name": name, "command": command, "output": str(output), **run}
    if run["returncode"] == 0:
        timing = stylecraft_timing(history)
        record.update(optimisation_s=timing.get("optimisation_s"), iterations=timing.get("iterations"),
                      precision=(timing.get("settings") or {}).get("precision"))
    return record


def warm(args: argparse.Namespace) -> dict:
    """``stylecraft.transfer`` in this process: the median seconds of ``--repeats`` after one warm-up."""
    options: dict[str, object] = {"preset": "standard", "size": 512, "device": args.device, "seed": 0}
    if args.smoke:
        options.update(size=int(SMOKE["--size"]), iterations=int(SMOKE["iterations"]))
    output = args.out / "warm.png"
    times = []
    for _ in range(args.repeats + 1):
        began = time.perf_counter()
        picture = stylecraft.transfer(args.content, args.style, **options)
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    picture.save(output)
    return {"name": "warm", "options": options, "output": str(output), "returncode": 0, "seconds": times,
            "wall_s": statistics.median(times[1:])}


def step_floor(args: argparse.Namespace) -> dict:
    """``step_floor.py`` on this device, its table kept as printed."""
    path = args.out / f"step-floor-{args.device}.json"
    command = [sys.executable, str(HERE / "step_floor.py"), "--device", args.device, "--json", str(path),
               *(["--size", "64", "--repeats", "1"] if args.smoke else [])]
    try:
        found = subprocess.run(command, capture_output=True, text=True, timeout=FLOOR_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"command": command, "returncode": 124, "json": str(path),
                "printed": f"step floor: stopped after {FLOOR_TIMEOUT_S} s"}
    return {"command": command, "returncode": found.returncode, "json": str(path),
            "printed": found.stdout + found.stderr}


def attempt(name: str, step: Callable[[], dict]) -> dict:
    """Run one step; one that raises is recorded as failed, so the steps after it still run in a short lease."""
    began = time.perf_counter()
    try:
        return step()
    except Exception as error:  # noqa: BLE001 - recorded in the results, not lost with the rest
        return {"name": name, "returncode": 1, "error": repr(error), "wall_s": time.perf_counter() - began}


def score(run: dict, evaluator: Evaluator, args: argparse.Namespace) -> None:
    """Add ``stylecraft score``'s numbers to a run that made a picture (or the reason they are missing)."""
    if run["returncode"] != 0:
        return
    try:
        run.update(evaluator.distances(Path(run["output"]), args.content, args.style))
    except Exception as error:  # noqa: BLE001 - the run's time still counts
        run["score_error"] = repr(error)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu_speed.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder with content/ and style/ "
                        f"(default {DEFAULT_IMAGES})")
    parser.add_argument("--content", default="chicago.jpg", help="photo in content/ (default chicago.jpg)")
    parser.add_argument("--style", default="the_resevoir_at_poitiers.jpg", help="painting in style/")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for --smoke (default cuda)")
    parser.add_argument("--repeats", type=int, default=3, help="warm transfers timed after one warm-up (default 3)")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE['--size']} px, {SMOKE['iterations']} "
                        "iterations: checks the pipeline, measures nothing")
    parser.add_argument("--out", type=Path, required=True, help="folder for the pictures, logs and JSON")
    args = parser.parse_args(argv)
    if args.device not in ("cuda", "cpu"):
        parser.error(f"--device: cuda or cpu, not {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here (--device cpu --smoke checks the pipeline)")
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    args.content, args.style = args.images / "content" / args.content, args.images / "style" / args.style
    missing = [str(p) for p in (args.content, args.style) if not p.is_file()]
    if missing:
        parser.error(f"missing {', '.join(missing)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data: dict = {"benchmark": "gpu_speed", "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                  "smoke": args.smoke, "pair": [str(args.content), str(args.style)], "runs": []}
    steps = [(name, functools.partial(command_line, name, options, args)) for name, options in COMMANDS]
    steps.insert(2, ("warm", functools.partial(warm, args)))
    for index, (name, step) in enumerate(steps):
        run = attempt(name, step)
        print(f"{run['name']}: {run['wall_s']:.2f} s, exit {run['returncode']}", file=sys.stderr, flush=True)
        if index == 0:  # after the cold step: the scorer's network and the machine's description would warm it
            data["machine"] = machine_metadata(args.device)
            evaluator = Evaluator(None)  # type: ignore[arg-type]  # None: `stylecraft score`'s evaluation size
        score(run, evaluator, args)
        data["runs"].append(run)
        write_json(args.out / "gpu-speed.json", data)
    data["step_floor"] = step_floor(args)
    write_json(args.out / "gpu-speed.json", data)
    print(f"{data['machine'].get('gpu') or data['machine']['cpu_model']}, torch {data['machine']['torch']}; "
          f"{args.content.name} x {args.style.name}")
    print("| run | seconds | optimisation s | iterations | precision | content | style | colour | structure |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in data["runs"]:
        numbers = [f"{run[k]:.3f}" if k in run else "failed" for k in
                   ("content_distance", "style_distance", "colour_distance", "structure_kept")]
        optimisation = f"{run['optimisation_s']:.2f}" if run.get("optimisation_s") else ""
        print(f"| {run['name']} | {run['wall_s']:.2f} | {optimisation} | {run.get('iterations') or ''} | "
              f"{run.get('precision') or ''} | " + " | ".join(numbers) + " |")
    print(data["step_floor"]["printed"])
    failed = [run["name"] for run in data["runs"] if run["returncode"] != 0] + (
        ["step floor"] if data["step_floor"]["returncode"] != 0 else [])
    if failed:
        print(f"gpu_speed: failed: {', '.join(failed)} (logs in {args.out})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
