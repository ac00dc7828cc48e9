#!/usr/bin/env python3
"""Benchmark: quality per CPU-hour of training the built-in styles, to choose the recipe a CPU's hours go to.

Each variant is the built-in styles' recipe (``tools/build_styles.py train``: the six paintings of
../shared/paintings, the photos of ../shared/train, 256 px crops, batch 4, style weight 5, colour 20, spike 10)
with one setting changed. It trains ``--steps`` steps, going on from the shipped network (``--init``) unless its
network has another width (``compact``) or it says ``fresh``, and is then scored by
``benchmarks/builtin_styles.py --one-photo-each --no-timing`` (one photo per style, the draft pictures cached):
pairs meeting the draft target, and the medians of the style and colour distances against the draft's and of
the structure kept less the draft's. The cost is the training process's CPU time (user + system, all threads),
in CPU-hours, with its wall time beside it.

    python benchmarks/train_efficiency.py --steps 200                       # every variant not measured yet
    python benchmarks/train_efficiency.py --steps 200 --variants shipped,style-20,crop-192

Each variant's result is appended to ``--json`` (default benchmarks/results/train-efficiency-<cpu>.json) as soon
as it is measured, and a variant already there at the same steps is skipped, so a stopped study goes on where it
stopped. The networks are kept under benchmarks/results/models/efficiency/ (not committed). Prints a Markdown
table. Run it alone: two torch processes on 2 cores take 3-4x as long and make the CPU-hours meaningless.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from studio_load import lscpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_styles import PAINTINGS, PHOTOS, manifest, style_name  # noqa: E402

from stylecraft.feedforward.styles import builtin_file  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CPU = lscpu_model() or "unknown CPU"
MODELS = RESULTS / "models" / "efficiency"
#: The shipped recipe (tools/build_styles.py train's settings); each variant changes one of them.
RECIPE = {"--size": "256", "--batch-size": "4", "--lr": "0.001", "--style-weight": "5", "--content-weight": "1",
          "--color-weight": "20", "--spike-weight": "10", "--width": "full"}
#: name -> the settings it changes ("fresh": no --init).
VARIANTS: dict[str, dict[str, str]] = {
    "shipped": {},  # trained 0 steps further: the baseline
    "recipe": {},
    "style-10": {"--style-weight": "10"},
    "style-20": {"--style-weight": "20"},
    "style-40": {"--style-weight": "40"},
    "colour-0": {"--color-weight": "0"},
    "colour-60": {"--color-weight": "60"},
    "content-relu3_1": {"--content-layers": "relu3_1"},
    "crop-192": {"--size": "192"},
    "crop-320": {"--size": "320"},
    "style-size-384": {"--style-size": "384"},
    "style-size-512": {"--style-size": "512"},
    "lr-3e-4": {"--lr": "0.0003"},
    "batch-2": {"--batch-size": "2"},
    "batch-8": {"--batch-size": "8"},
    "fresh": {"fresh": "yes"},
    "compact-fresh": {"--width": "compact", "fresh": "yes"},
}


def train(name: str, steps: int, precision: str) -> tuple[Path, float, float]:
    """Train variant ``name`` for ``steps`` steps; its network, CPU-seconds and wall seconds."""
    settings = {**RECIPE, **VARIANTS[name]}
    fresh = settings.pop("fresh", None) is not None
    records = manifest()
    out = MODELS / f"{name}-{steps}.pt"
    command = [sys.executable, "-m", "stylecraft", "train", "--quiet",
               "--style", *[str(PAINTINGS / r["file"]) for r in records],
               "--names", ",".join(style_name(r["file"]) for r in records), "--data", str(PHOTOS), "-o", str(out),
               "--steps", str(steps), "--device", "cpu", "--precision", precision, "--checkpoint-every", "1000000",
               *[part for item in settings.items() for part in item]]
    if not fresh:
        command += ["--init", str(builtin_file())]
    before, began = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, cpu, time.perf_counter() - began


def score(network: Path | None) -> dict[str, Any]:
    """benchmarks/builtin_styles.py's scores of ``network`` (the shipped one for None), one photo per style."""
    out = MODELS / f"{network.stem if network else 'shipped'}-scores.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "builtin_styles.py"), "--one-photo-each", "--no-timing",
               "--json", str(out)] + (["--network", str(network)] if network else [])
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    rows = json.loads(out.read_text())["rows"]

    def median(key: str, compare: Any) -> float:
        return round(statistics.median(compare(r["built-in"][key], r["draft"][key]) for r in rows), 3)

    return {"pairs": len(rows), "meeting_target": sum(bool(r["meets"]) for r in rows),
            "style_vs_draft": median("style_distance", lambda ours, draft: ours / draft),
            "colour_vs_draft": median("colour_distance", lambda ours, draft: ours / draft),
            "structure_less_draft": median("structure_kept", lambda ours, draft: ours - draft)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per variant (default 200)")
    parser.add_argument("--variants", help=f"comma-separated, of: {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--precision", default="auto", help="train's --precision (auto: bf16 where the CPU has it)")
    parser.add_argument("--json", type=Path, default=RESULTS / f"train-efficiency-{CPU.split()[0].lower()}.json")
    args = parser.parse_args()
    if not PAINTINGS.is_dir() or not PHOTOS.is_dir():
        print("train_efficiency: ../shared/paintings and ../shared/train are needed", file=sys.stderr)
        return 2
    MODELS.mkdir(parents=True, exist_ok=True)
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        print(f"train_efficiency: no variant {', '.join(unknown)}", file=sys.stderr)
        return 2
    done = json.loads(args.json.read_text()) if args.json.exists() else {"cpu": CPU, "runs": []}
    measured = {(run["variant"], run["steps"]) for run in done["runs"]}
    for name in names:
        steps = 0 if name == "shipped" else args.steps
        if (name, steps) in measured:
            continue
        network, cpu, wall = train(name, steps, args.precision) if steps else (None, 0.0, 0.0)
        run = {"variant": name, "settings": VARIANTS[name], "steps": steps, "cpu_hours": round(cpu / 3600, 3),
               "wall_s": round(wall), **score(network)}
        done["runs"].append(run)
        args.json.write_text(json.dumps(done, indent=1) + "\n")
        print(json.dumps(run), flush=True)
    print(f"\n{done['cpu']}, {args.json}\n\n| variant | steps | CPU-hours | wall s | pairs meeting the target | "
          "style vs draft | colour vs draft | structure less draft's |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in done["runs"]:
        print(f"| {run['variant']} | {run['steps']} | {run['cpu_hours']} | {run['wall_s']} | "
              f"{run['meeting_target']} of {run['pairs']} | {run['style_vs_draft']}x | {run['colour_vs_draft']}x | "
              f"{run['structure_less_draft']:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
