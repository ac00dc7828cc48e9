"""Which start adopts the painting's colours? Candidates for the default transfer, on photo/painting pairs from
../shared/images, scored with ``stylecraft.quality`` (content, style and colour distances, structure kept).

* ``default``: today's transfer (starts from the photo);
* ``matched start``: starts from the photo with its colours' mean and covariance matched to the painting's
  (``images.match_colour``), the content target still the photo;
* ``matched photo``: the matched photo is both the start and the content target;
* ``noise start``: starts from noise.

Every candidate runs with the same seed and default settings otherwise. Prints a table, writes JSON and a
contact sheet (pairs by candidates) to look at.

    python benchmarks/palette.py [--size 512] [--iterations 400] [--pairs 4] [--json PATH] [--sheet PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from stylecraft import api, images, quality, report

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
PAIRS = (("chicago.jpg", "the_resevoir_at_poitiers.jpg"), ("sailboat.jpg", "candy.jpg"),
         ("avril.jpg", "contrast_of_forms.jpg"), ("amber.jpg", "asheville.jpg"), ("flowers.jpg", "mosaic.jpg"))
CANDIDATES = ("default", "matched start", "matched photo", "noise start")


def paint(candidate: str, photo: Image.Image, painting: Image.Image, size: int, iterations: int) -> Image.Image:
    """The candidate's transfer of ``photo`` in the style of ``painting``."""
    options: dict[str, object] = {"size": size, "iterations": iterations, "seed": 0, "score": False}
    matched = images.to_pil(images.match_colour(images.to_tensor(photo), images.to_tensor(painting)))
    if candidate == "matched start":
        options["init_image"] = matched
    elif candidate == "matched photo":
        photo = matched
    elif candidate == "noise start":
        options["init"] = "noise"
    return images.to_pil(api.run("transfer", photo, [painting], **options).image)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "palette.json")
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    scorer, rows, cells = quality.Scorer(), [], []
    candidates = args.candidates.split(",")
    for content_name, style_name in PAIRS[:args.pairs]:
        photo = images.load_image(SHARED / "content" / content_name)
        painting = images.load_image(SHARED / "style" / style_name)
        reference = scorer.reference(images.to_tensor(photo), images.to_tensor(painting))
        row_cells = []
        for candidate in candidates:
            start = time.perf_counter()
            picture = paint(candidate, photo, painting, args.size, args.iterations)
            seconds = time.perf_counter() - start
            found = scorer.score(images.to_tensor(picture), reference)
            rows.append({"pair": f"{content_name} x {style_name}", "candidate": candidate, "seconds": seconds,
                         **found.as_dict()})
            print(json.dumps(rows[-1]), flush=True)
            row_cells.append(report.Cell(picture, f"colour {found.colour_distance:.2f}, "
                                                  f"style {found.style_distance:.3f}"))
        cells.append(row_cells)
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, {args.size} px, {args.iterations} iterations\n")
    print(f"{'pair':<48} {'candidate':<14} {'content':>8} {'style':>6} {'colour':>6} {'struct.':>7} {'s':>6}")
    for row in rows:
        print(f"{row['pair']:<48} {row['candidate']:<14} {row['content_distance']:>8.3f} "
              f"{row['style_distance']:>6.3f} {row['colour_distance']:>6.2f} {row['structure_kept']:>7.2f} "
              f"{row['seconds']:>6.0f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"torch": torch.__version__, "machine": platform.platform(), "size": args.size,
                                     "iterations": args.iterations, "rows": rows}, indent=1))
    if args.sheet is not None:
        report.contact_sheet(cells, [f"{c} x {s}" for c, s in PAIRS[:args.pairs]], candidates,
                             cell_side=320).save(args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
