#!/usr/bin/env python3
"""Benchmark: the live camera end to end, as a person sees it, in headless chromium with its fake camera.

For each backend it starts ``stylecraft live --no-browser`` (127.0.0.1, a free port, a temporary data folder,
``--live-backend`` that backend: torch, onnx for ONNX Runtime, openvino for OpenVINO, bf16 where the CPU has it
natively), opens the live page in Debian's chromium (Playwright, no browser download) whose fake camera plays a
1280x720 MJPEG written here (a panning scene), and at each size lets the page run: ``--warmup`` seconds once
the first frames at that size have come back, then ``--seconds`` measured. The page records every painted
frame (``window.liveStats``): its round trip from the JPEG sent to the painted JPEG received, and the studio's
time for each stage (decode, network, steadying along the optical flow, encode).

Reported per backend and size: frames a second end to end (frames received in the window / its length),
round-trip latency p50 and p95, and the median of each stage; "rest" is the round trip less the studio's
stages (the browser's capture and JPEG encoding, the socket, decoding and drawing the answer, and waiting for
the event loop). The page keeps one frame in flight, so frames a second is about 1000 / the mean round trip.

    python benchmarks/live.py                       # torch, onnx, openvino at 320x180 and 640x360
    python benchmarks/live.py --backends openvino --sizes 640x360 --seconds 30

Prints a Markdown table and writes JSON (``--json``, default benchmarks/results/live-<cpu>.json), with the
CPU as ``lscpu`` names it and the load average at the start and the end. Needs the ``studio`` extra, Playwright
and chromium (and the ``onnx`` / ``openvino`` extras for those backends).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from studio_load import lscpu_model

RESULTS = Path(__file__).resolve().parent / "results"
CAMERA = (1280, 720)
STAGES = ("decode_ms", "network_ms", "steady_ms", "encode_ms")


def write_camera(path: Path, frames: int = 60) -> None:
    """An MJPEG file (JPEG frames one after another) of a scene panning 6 px a frame, for chromium's fake camera."""
    width, height = CAMERA
    wide = width + frames * 6
    y, x = np.mgrid[0:height, 0:wide].astype(np.float32)
    rgb = np.stack([0.3 + 0.4 * y / height, 0.5 + 0.3 * np.sin(x / 90) ** 2, 0.9 - 0.3 * y / height], axis=-1)
    for k in range(12):  # discs and houses across the panorama
        cx, cy, r = (k + 0.5) * wide / 12, height * (0.3 + 0.4 * (k % 3) / 2), height * 0.08 * (1 + k % 2)
        rgb[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = (1.0, 0.85 - 0.05 * (k % 4), 0.3)
        rgb[int(height * 0.6):, int(cx - r):int(cx + r // 2)] = (0.35, 0.2 + 0.05 * (k % 3), 0.15)
    panorama = Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8))
    with path.open("wb") as file:
        for i in range(frames):
            panorama.crop((i * 6, 0, i * 6 + width, height)).save(file, format="JPEG", quality=90)


class Studio:
    """``stylecraft live --no-browser`` in a subprocess; ``link`` is the page it printed."""

    def __init__(self, backend: str, data: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stylecraft", "live", "--no-browser", "--port", "0", "--data", str(data),
             "--device", "cpu", "--live-backend", backend], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        found = re.search(r"open (\S+)", line)
        if not found:
            self.stop()
            raise RuntimeError(f"stylecraft live did not start: {line}")
        self.link = found.group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def measure(page: Any, size: str, warmup: float, seconds: float, patience: float) -> dict[str, Any]:
    """Run the page at ``size``: wait for painted frames at that size, ``warmup`` s more, then record
    ``seconds`` s; the frames and what they say."""
    page.select_option("#size", size)
    page.wait_for_function("(size) => window.liveStats.frames.filter((f) => f.size === size).length >= 3",
                           arg=size, timeout=patience * 1000)
    page.wait_for_timeout(warmup * 1000)
    start = page.evaluate("performance.now()")
    page.wait_for_timeout(seconds * 1000)
    end = page.evaluate("performance.now()")
    frames = [f for f in page.evaluate("window.liveStats.frames") if f["size"] == size and start < f["at"] <= end]
    if not frames:
        return {"size": size, "frames": 0}
    rtt = np.array([f["rtt_ms"] for f in frames])
    stages = {stage: float(np.median([f[stage] for f in frames])) for stage in STAGES}
    rest = float(np.median(rtt - np.array([sum(f[stage] for stage in STAGES) for f in frames])))
    return {"size": size, "frames": len(frames), "seconds": (end - start) / 1000,
            "fps": len(frames) / ((end - start) / 1000), "p50_ms": float(np.percentile(rtt, 50)),
            "p95_ms": float(np.percentile(rtt, 95)), "median_stage_ms": {**stages, "rest": rest},
            "backend_label": page.locator("#backend").inner_text()}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| backend | size | fps | p50 ms | p95 ms | decode | network | steady | encode | rest | frames |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if not row["frames"]:
            lines.append(f"| {row['backend']} | {row['size']} | no frames | | | | | | | | 0 |")
            continue
        stage = row["median_stage_ms"]
        lines.append(f"| {row['backend_label']} | {row['size']} | {row['fps']:.1f} | {row['p50_ms']:.0f} | "
                     f"{row['p95_ms']:.0f} | {stage['decode_ms']:.1f} | {stage['network_ms']:.1f} | "
                     f"{stage['steady_ms']:.1f} | {stage['encode_ms']:.1f} | {stage['rest']:.1f} | {row['frames']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="torch,onnx,openvino")
    parser.add_argument("--sizes", default="320x180,640x360")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds at each size before measuring")
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds measured at each size")
    parser.add_argument("--patience", type=float, default=120.0, help="seconds to wait for the first frames")
    parser.add_argument("--json", type=Path, help="default benchmarks/results/live-<cpu>.json")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("live.py: error: Debian's chromium is not installed", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    cpu = lscpu_model() or platform.processor() or "unknown CPU"
    load_start = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        camera = Path(folder) / "camera.mjpeg"
        write_camera(camera)
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        try:
            for backend in args.backends.split(","):
                studio = Studio(backend, Path(folder) / f"data-{backend}")
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 860})
                    page.goto(studio.link)
                    for size in args.sizes.split(","):
                        row = {"backend": backend, **measure(page, size, args.warmup, args.seconds, args.patience)}
                        rows.append(row)
                        print(f"{backend} {size}: {row.get('fps', 0):.1f} fps", file=sys.stderr, flush=True)
                    page.close()
                finally:
                    studio.stop()
        finally:
            browser.close()
    load_end = os.getloadavg()
    import torch

    data = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"lscpu_model_name": cpu, "logical_cores": os.cpu_count(),
                        "usable_cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
                        "torch_threads": torch.get_num_threads(), "load_average_at_start": load_start,
                        "load_average_at_end": load_end, "python": platform.python_version()},
            "settings": {"camera": f"{CAMERA[0]}x{CAMERA[1]} MJPEG", "warmup_s": args.warmup,
                         "seconds": args.seconds, "page_jpeg_quality": 0.8},
            "results": rows}
    print(f"## stylecraft live, end to end in headless chromium\n\n- CPU: {cpu}, {os.cpu_count()} logical cores; "
          f"load average {'/'.join(f'{x:.2f}' for x in load_start)} at the start, "
          f"{'/'.join(f'{x:.2f}' for x in load_end)} at the end\n\n{table(rows)}")
    slug = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")
    path = args.json or RESULTS / f"live-{slug}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwritten to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
