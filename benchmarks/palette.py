"""Which transfer adopts the painting's colours? Candidates for the default, on photo/painting pairs from
../shared/images, scored with ``stylecraft.quality`` (content, style and colour distances, structure kept).

* ``content start``: starts from the photo, no colour term (the default before the palette work);
* ``palette start``: starts from the photo with its colours' mean and covariance matched to the painting's
  (``init="palette"``), no colour term;
* ``default``: today's default (the palette start and the colour term);
* ``matched photo``: the matched photo is both the start and the content target, no colour term;
* ``noise start``: starts from noise, no colour term;
* ``mean-std``, ``wasserstein``: the default with that style loss instead of the Gram matrices.

Every candidate runs with the same seed and default settings otherwise (``--options`` adds some, as JSON).
Prints a table, writes JSON and a contact sheet (pairs by candidates) to look at.

    python benchmarks/palette.py [--size 512] [--iterations 400] [--pairs 6] [--candidates A,B] [--json PATH]
                                 [--sheet PATH]
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

from stylecraft import api, colour, images, quality, report

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
PAIRS = (("chicago.jpg", "the_resevoir_at_poitiers.jpg"), ("sailboat.jpg", "candy.jpg"),
         ("avril.jpg", "contrast_of_forms.jpg"), ("amber.jpg", "asheville.jpg"), ("flowers.jpg", "mosaic.jpg"),
         ("avril.jpg", "sketch.png"))
#: Each candidate's options; "matched photo" also recolours the photo it is given.
CANDIDATES: dict[str, dict[str, object]] = {
    "content start": {"init": "content", "color_weight": 0.0},
    "palette start": {"init": "palette", "color_weight": 0.0},
    "default": {},
    "matched photo": {"init": "content", "color_weight": 0.0},
    "noise start": {"init": "noise", "color_weight": 0.0},
    "mean-std": {"style_loss": "mean-std"},
    "wasserstein": {"style_loss": "wasserstein"},
}


def paint(candidate: str, photo: Image.Image, painting: Image.Image, options: dict[str, object]) -> Image.Image:
    """The candidate's transfer of ``photo`` in the style of ``painting``."""
    if candidate == "matched photo":
        photo = images.to_pil(colour.match_colour(images.to_tensor(photo), images.to_tensor(painting)))
    options = {"seed": 0, "score": False, **CANDIDATES[candidate], **options}
    return images.to_pil(api.run("transfer", photo, [painting], **options).image)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N pairs (to finish a table)")
    parser.add_argument("--candidates", default="content start,default", help=f"from: {', '.join(CANDIDATES)}")
    parser.add_argument("--options", type=json.loads, default={}, help='more transfer options, e.g. '
                        '\'{"style_loss": "wasserstein"}\'')
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "palette.json")
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    scorer, rows, cells = quality.Scorer(), [], []
    candidates = args.candidates.split(",")
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidate {unknown[0]!r}; choose from {', '.join(CANDIDATES)}")
    for content_name, style_name in PAIRS[args.skip:args.pairs]:
        photo = images.load_image(SHARED / "content" / content_name)
        painting = images.load_image(SHARED / "style" / style_name)
        reference = scorer.reference(images.to_tensor(photo), images.to_tensor(painting))
        row_cells = []
        for candidate in candidates:
            start = time.perf_counter()
            picture = paint(candidate, photo, painting,
                            {"size": args.size, "iterations": args.iterations, **args.options})
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
                                     "iterations": args.iterations, "options": args.options, "rows": rows},
                                    indent=1))
    if args.sheet is not None:
        report.contact_sheet(cells, [f"{c} x {s}" for c, s in PAIRS[args.skip:args.pairs]], candidates,
                             cell_side=320).save(args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
