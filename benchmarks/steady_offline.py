"""Steadying without the encoder: each clip of ``video.py`` painted once per frame (compact network,
OpenVINO), then steadied offline at several stabilities with bilinear or bicubic warping of the previous
output. Prints the warping error against the true motion (relative to per-frame output, frames not encoded)
and the sharpness kept (mean Laplacian energy against per-frame output), which shows blur that a low
warping error can hide.

    python benchmarks/steady_offline.py [--size 640x360] [--model benchmarks/results/models/candy-compact-400.pt]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import video as clips

from stylecraft import api
from stylecraft.video.flow import FlowEstimator, warping_error


def sharpness(frames: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean()
                          for f in frames]))


def steady(inputs: list[np.ndarray], painted: list[np.ndarray], stability: float, sharp: bool) -> list[np.ndarray]:
    """What ``video.flow.Steadier`` does, with the warping's interpolation chosen."""
    flow, out, before, kept = FlowEstimator(), [], None, None
    for frame, picture in zip(inputs, painted, strict=True):
        result = picture.astype(np.float32) / 255
        if before is not None and kept is not None:
            motion = flow.motion(before, frame)
            weight = (stability * motion.reliable)[..., None]
            result = np.clip(result * (1 - weight) + motion.warp(kept, sharp=sharp) * weight, 0, 1)
        before, kept = frame, result
        out.append(np.clip(result * 255 + 0.5, 0, 255).astype(np.uint8))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--model", type=Path, default=Path(__file__).parent / "results" / "models"
                        / "candy-compact-400.pt")
    args = parser.parse_args()
    if not clips.STYLE.exists() or not args.model.exists():
        print("needs ../shared/images and a model (run benchmarks/video.py first)", file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.size.split("x"))
    model = api.load_style_model(args.model, backend="openvino")
    work = Path(tempfile.mkdtemp(prefix="stylecraft-steady-"))
    for kind, photo in clips.CLIPS.items():
        path = work / f"{kind}.mp4"
        motions = clips.true_motions(clips.make_clip(kind, photo, (width, height), 3, path), (width, height))
        inputs = clips.read_frames(path)
        painted = list(api.paint_frames(model, inputs, stability=0))
        base, sharp0 = warping_error(painted, motions), sharpness(painted)
        for sharp in (False, True):
            for stability in (0.7, 0.85, 0.95):
                frames = steady(inputs, painted, stability, sharp)
                print(f"{kind:<5} {'bicubic' if sharp else 'bilinear':<9} {stability:.2f}  warping "
                      f"{warping_error(frames, motions) / base:.2f}x  sharpness {sharpness(frames) / sharp0:.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
