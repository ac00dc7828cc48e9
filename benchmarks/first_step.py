#!/usr/bin/env python3
"""Benchmark: cold start. How long a command takes from its launch to its first useful output, with the
operating system's file cache dropped (cold: the first command after a boot) and kept (warm: the next one),
for this tree against an earlier commit's (default c990529, before issue 25), interleaved.

Per version and state it times, each as a child process started by this script:

* ``python -c "import torch"``: what every command that loads torch pays, the same for both versions;
* ``stylecraft --help``: to the exit;
* ``stylecraft transfer CONTENT STYLE --quality standard``: to the first optimiser step, read from the
  progress bar on stderr as a user sees it, and to the plan line before it; the run is then stopped.

Cold runs write ``/proc/sys/vm/drop_caches`` and need root; without it they are reported as not measured.

    python benchmarks/first_step.py [--repeats 3] [--size 512] [--baseline c990529]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optimiser_speed import BASELINE, export_baseline
from transfer_vs_pastiche import DEFAULT_IMAGES, RESULTS, machine_metadata, write_json

#: A progress bar's count once a step is done ("3/150"), and the plan line printed before the first step.
STEP = re.compile(rb"\| *[1-9]\d*/\d+ \[")
PLAN = re.compile(rb"plan: ")
DROP = Path("/proc/sys/vm/drop_caches")


def drop_caches() -> bool:
    """Empty the page cache (root only); whether it was done."""
    os.sync()
    try:
        DROP.write_text("3\n")
    except OSError:
        return False
    return True


def time_exit(command: list[str], env: dict[str, str]) -> float:
    """Seconds from launch to exit of ``command``, which must succeed."""
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def time_first_step(command: list[str], env: dict[str, str]) -> dict[str, float | None]:
    """Seconds from launch to the plan line and to the first finished step on ``command``'s stderr; the run is
    then stopped (SIGTERM: it writes what it has, which is not timed)."""
    began = time.perf_counter()
    seen: dict[str, float | None] = {"plan": None, "first_step": None}
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as child:
        assert child.stderr is not None
        text = b""
        while seen["first_step"] is None:
            chunk = os.read(child.stderr.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"{command[2:4]} ended before its first step:\n{text.decode(errors='replace')}")
            text += chunk
            now = time.perf_counter() - began
            if seen["plan"] is None and PLAN.search(text):
                seen["plan"] = now
            if STEP.search(text):
                seen["first_step"] = now
        child.send_signal(signal.SIGTERM)
        child.communicate()
    return seen


def measure(version: str, source: Path, cold: bool, args: argparse.Namespace, out: Path) -> dict[str, float | None]:
    """One round of every command for one version, each preceded by a cache drop when ``cold``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    stylecraft = [sys.executable, "-m", "stylecraft"]
    content, style = args.images / "content" / "chicago.jpg", args.images / "style" / "the_resevoir_at_poitiers.jpg"
    transfer = [*stylecraft, "transfer", str(content), str(style), "-o", str(out / f"{version}.png"), "--quality",
                "standard", "--size", str(args.size), "--seed", "0"]
    row: dict[str, float | None] = {}
    for name, command in (("import torch", [sys.executable, "-c", "import torch"]),
                          ("--help", [*stylecraft, "--help"])):
        if cold:
            drop_caches()
        row[name] = time_exit(command, env)
    if cold:
        drop_caches()
    row.update({f"transfer: {k}": v for k, v in time_first_step(transfer, env).items()})
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per version and state (default 3)")
    parser.add_argument("--size", type=int, default=512, help="the transfer's long side (default 512)")
    parser.add_argument("--baseline", default=BASELINE, help=f"the commit compared with (default {BASELINE})")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--json", type=Path, default=RESULTS / "first-step.json")
    args = parser.parse_args(argv)
    if not (args.images / "content").is_dir():
        print(f"first_step: skipped: {args.images} has no content/ folder; nothing was run", file=sys.stderr)
        return 0
    can_drop = drop_caches()
    states = ("cold", "warm") if can_drop else ("warm",)
    if not can_drop:
        print(f"first_step: cold runs not measured: {DROP} needs root", file=sys.stderr)
    runs: dict[str, list[dict[str, float | None]]] = {}
    with tempfile.TemporaryDirectory(prefix="first-step-") as folder:
        work = Path(folder)
        versions = {"baseline": export_baseline(args.baseline, work),
                    "new": Path(__file__).resolve().parents[1] / "src"}
        for round_ in range(args.repeats):
            order = list(versions) if round_ % 2 == 0 else list(reversed(versions))
            for state in states:
                for version in order:
                    runs.setdefault(f"{version} {state}", []).append(
                        measure(version, versions[version], state == "cold", args, work))
    rows = {key: {name: statistics.median(r[name] for r in found if r[name] is not None)
                  for name in found[0]} for key, found in runs.items()}
    names = list(next(iter(rows.values())))
    print(f"Seconds from launch, median of {args.repeats} (transfer: {args.size} px, standard):\n")
    print("| version | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for key, row in rows.items():
        print(f"| {key} | " + " | ".join(f"{row[n]:.2f}" for n in names) + " |")
    write_json(args.json, {"machine": machine_metadata("cpu"), "baseline": args.baseline, "size": args.size,
                           "repeats": args.repeats, "medians": rows, "runs": runs})
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
