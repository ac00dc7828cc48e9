#!/usr/bin/env python3
"""Benchmark: `stylecraft batch` with a compact real-time network, the local engine against Ray.

Paints the first ``--count`` photos of ``../shared/train`` (at their own size, BSDS500's 481 x 321 and the
like) with an untrained compact network (speed does not depend on the weights), once with the local engine
and once with the Ray engine per ``--workers`` count, each Ray run on a fresh local cluster of that many CPUs
(``ray.init(num_cpus=N)``), every run into a folder of its own so that nothing is skipped. For each it gives
the pictures a second over the whole run (what a user waits for) and over the run after its first batch of
pictures (the steady rate, once the actors hold the network); for Ray, the seconds ``ray.init`` took and the seconds
to the first picture (the dataset's plan, starting the actors, loading the network in each): Ray's start-up
overhead. Each Ray worker computes with one thread (Ray sets OMP_NUM_THREADS to a task's CPUs); the local
engine with torch's threads of this process.

Run ``python benchmarks/batch.py`` (``--help`` for the options); results go to
``benchmarks/results/batch-<hostname>.json`` and a table is printed. Without ../shared/train it says so and
exits 0.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transfer_vs_pastiche import RESULTS, machine_metadata

from stylecraft import api, feedforward
from stylecraft.api.batch import BatchSettings, Engine, LocalEngine
from stylecraft.photos import find_photos
from stylecraft.progress import Count

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "train"


def timed_run(photos: Path, output: Path, settings: BatchSettings, engine: Engine) -> dict[str, Any]:
    """One batch: its seconds, the seconds to its first picture, and its rates."""
    stamps: list[float] = []

    def stamp(event: Count) -> None:
        if event.step:
            stamps.append(time.perf_counter())

    began = time.perf_counter()
    result = api.paint_batch([photos], output, settings, engine=engine, callbacks=[stamp])
    seconds = time.perf_counter() - began
    done = len(result.painted)
    # Ray hands a batch's pictures back together: the steady rate counts from the end of the first batch
    first = sum(1 for when in stamps if when - stamps[0] < 0.05) if stamps else 0
    steady = (done - first) / (stamps[-1] - stamps[0]) if done > first and stamps[-1] > stamps[0] else None
    return {"pictures": done, "failed": len(result.failed), "seconds": seconds,
            "first_picture_s": stamps[0] - began if stamps else None, "pictures_per_s": done / seconds,
            "steady_pictures_per_s": steady}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=TRAIN, help="folder of photos (default ../shared/train)")
    parser.add_argument("--count", type=int, default=200, help="photos painted (default 200)")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to run (default 1,2)")
    parser.add_argument("--width", default="compact", help="network width: compact or full (default compact)")
    parser.add_argument("--batch-size", type=int, default=4, help="pictures painted together (default 4)")
    parser.add_argument("--device", default="cpu", help="the local engine's and each worker's device (default cpu)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs a Ray worker takes (default 0)")
    parser.add_argument("--json", type=Path, help="results file (default benchmarks/results/batch-<hostname>.json)")
    args = parser.parse_args()
    if not args.photos.is_dir():
        print(f"{args.photos} is not there (it exists only in the development checkout); nothing to run")
        return 0
    import ray

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        listed = find_photos(args.photos)[:args.count]
        chosen = work / "photos.txt"
        chosen.write_text("".join(f"{path.resolve()}\n" for path in listed))
        model = work / "compact.pt"
        feedforward.save_model(feedforward.TransformerNet(feedforward.WIDTHS[args.width]), model, {"style": "none"})
        settings = BatchSettings(model=str(model), batch_size=args.batch_size, device=args.device)
        rows = [{"engine": "local", "workers": 1, **timed_run(chosen, work / "local", settings, LocalEngine())}]
        for workers in (int(part) for part in args.workers.split(",")):
            began = time.perf_counter()
            ray.init(num_cpus=workers, num_gpus=None if args.gpus_per_worker else 0, logging_level="warning")
            started = time.perf_counter() - began
            try:
                engine = api.engines.engine_for("ray", None, workers, args.gpus_per_worker)
                row = timed_run(chosen, work / f"ray{workers}", settings, engine)
            finally:
                ray.shutdown()
            rows.append({"engine": "ray", "workers": workers, "ray_init_s": started, **row})
    print(f"{len(listed)} photos of {args.photos}, {args.width} network, batch {args.batch_size}, {args.device}")
    print(f"{'engine':<8} {'workers':>7} {'seconds':>8} {'pictures/s':>10} {'steady/s':>9} {'first s':>8} "
          f"{'ray.init s':>10}")
    for row in rows:
        steady = f"{row['steady_pictures_per_s']:.2f}" if row["steady_pictures_per_s"] else "-"
        first = f"{row['first_picture_s']:.1f}" if row["first_picture_s"] is not None else "-"
        init = f"{row['ray_init_s']:.1f}" if "ray_init_s" in row else "-"
        print(f"{row['engine']:<8} {row['workers']:>7} {row['seconds']:>8.1f} {row['pictures_per_s']:>10.2f} "
              f"{steady:>9} {first:>8} {init:>10}")
    target = args.json or RESULTS / f"batch-{socket.gethostname()}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"machine": machine_metadata(args.device), "photos": len(listed),
                                  "width": args.width, "batch_size": args.batch_size, "runs": rows}, indent=1))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
