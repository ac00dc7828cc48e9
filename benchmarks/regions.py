"""Spatial and scale control measured on ../shared/images (Gatys et al. 2017; docs/regions.md).

* ``two``: each photo painted with one painting on its left half and another on its right (``masks=``); each
  half scored (:mod:`stylecraft.quality`, as ``stylecraft score`` scores it) against both paintings: its own
  painting should be the nearer in style.
* ``unstyled``: the left half painted, the right half under no mask; the right half's structure kept against
  the photo's right half (1 is the photo).
* ``tiles``: a two-region run whole and forced into tiles (``tile``), the largest pixel difference (in 1/255),
  with the settings of tests/test_tiling.py's end-to-end runs (a few steps, no colour term).
* ``scale``: one painting's large shapes with another's strokes (``scale_split``) swept over the split layer
  with the existing :func:`stylecraft.api.grid`; for each split, the Gram distance of the shallow layers
  (relu1_1, relu2_1) to the fine painting and of the deep ones (relu4_1, relu5_1) to the coarse painting.

    python benchmarks/regions.py [--size 256] [--iterations 300] [--parts two,unstyled,tiles,scale]
                                 [--pairs 4] [--other-pairs 1] [--out-dir DIR] [--json PATH]

Pictures go to --out-dir (default benchmarks/results/regions/, which git ignores) to look at.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from stylecraft import Progress, api, images, losses
from stylecraft.api.score import score_tensors, scorer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
#: (photo, left painting, right painting)
TRIPLES = (("chicago.jpg", "candy.jpg", "the_resevoir_at_poitiers.jpg"),
           ("sailboat.jpg", "mosaic.jpg", "asheville.jpg"),
           ("amber.jpg", "contrast_of_forms.jpg", "candy.jpg"),
           ("flowers.jpg", "sketch.png", "mosaic.jpg"),
           ("avril.jpg", "asheville.jpg", "contrast_of_forms.jpg"))
SPLITS = ("relu2_1", "relu3_1", "relu4_1")
SHALLOW, DEEP = ("relu1_1", "relu2_1"), ("relu4_1", "relu5_1")


def halves(size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """Masks of the left and the right half of a ``size`` (width, height) picture."""
    left = Image.new("L", size, 0)
    left.paste(255, (0, 0, size[0] // 2, size[1]))
    return left, Image.eval(left, lambda v: 255 - v)


def side(picture: torch.Tensor, which: str) -> torch.Tensor:
    """The left or right half of a (1, 3, H, W) picture."""
    middle = picture.shape[-1] // 2
    return picture[..., :middle] if which == "left" else picture[..., middle:]


def load(name: str, folder: str) -> torch.Tensor:
    return images.to_tensor(images.load_image(SHARED / folder / name))


def paint(args: argparse.Namespace, out: Path, photo_name: str, paintings: list[str],
          masks: list[Image.Image], name: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The photo painted with ``masks``, saved as ``name``; the picture, the photo at its size, the seconds."""
    photo = images.load_image(SHARED / "content" / photo_name)
    began = time.perf_counter()
    result = api.run("transfer", photo, [SHARED / "style" / p for p in paintings], masks=masks, size=args.size,
                     iterations=args.iterations, seed=0)
    seconds = time.perf_counter() - began
    images.save_image(result.image, out / f"{name}-{Path(photo_name).stem}.png")
    return result.image, images.resize(images.to_tensor(photo), (result.image.shape[-1], result.image.shape[-2])), \
        seconds


def two_regions(args: argparse.Namespace, out: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for photo_name, left_name, right_name in TRIPLES[: args.pairs]:
        size = images.load_image(SHARED / "content" / photo_name).size
        picture, target, seconds = paint(args, out, photo_name, [left_name, right_name], list(halves(size)), "two")
        row: dict[str, object] = {"photo": photo_name, "left": left_name, "right": right_name,
                                  "seconds": round(seconds, 1)}
        for which, own, other in (("left", left_name, right_name), ("right", right_name, left_name)):
            found = {name: score_tensors(side(picture, which), side(target, which), load(name, "style"))
                     for name in (own, other)}
            row[f"{which}: own"] = round(found[own].style_distance, 3)
            row[f"{which}: other"] = round(found[other].style_distance, 3)
        rows.append(row)
        print(row, flush=True)
    return rows


def unstyled(args: argparse.Namespace, out: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for photo_name, painting, _ in TRIPLES[: args.other_pairs]:
        size = images.load_image(SHARED / "content" / photo_name).size
        picture, target, _ = paint(args, out, photo_name, [painting], [halves(size)[0]], "unstyled")
        kept = {which: score_tensors(side(picture, which), side(target, which), load(painting, "style"))
                for which in ("left", "right")}
        rows.append({"photo": photo_name, "painting (left)": painting,
                     "structure left (painted)": round(kept["left"].structure_kept, 3),
                     "structure right (no mask)": round(kept["right"].structure_kept, 3)})
        print(rows[-1], flush=True)
    return rows


def tiles(args: argparse.Namespace, out: Path) -> list[dict[str, object]]:
    rows = []
    for photo_name, left_name, right_name in TRIPLES[: args.other_pairs]:
        photo = images.load_image(SHARED / "content" / photo_name)
        options: dict[str, object] = {"masks": list(halves(photo.size)), "size": args.size, "iterations": 6,
                                      "seed": 0, "single_scale": True, "color_weight": 0.0}
        styles = [SHARED / "style" / left_name, SHARED / "style" / right_name]
        whole = api.run("transfer", photo, styles, **options)
        tiled = api.run("transfer", photo, styles, tile=args.size // 4, **options)
        row = {"photo": photo_name, "tile": args.size // 4, "tiled scales": tiled.settings["tiled_scales"],
               "max difference (1/255)": round(float((whole.image - tiled.image).abs().max()) * 255, 3)}
        rows.append(row)
        print(row, flush=True)
    return rows


def scale(args: argparse.Namespace, out: Path) -> list[dict[str, object]]:
    photo_name, coarse, fine = "sailboat.jpg", "the_resevoir_at_poitiers.jpg", "mosaic.jpg"
    pictures: list[torch.Tensor] = []

    def keep_last(event: Progress) -> None:
        if event.iteration == event.iterations:
            pictures.append(event.image())

    styles = [str(SHARED / "style" / coarse), str(SHARED / "style" / fine)]
    axes = [api.Axis.inputs("content", [SHARED / "content" / photo_name]),
            api.Axis("style", ((f"{coarse} + {fine}", {"style": styles}),)), api.Axis.of("scale_split", SPLITS)]
    sheet = api.grid("transfer", axes, cell_side=args.size, size=args.size, iterations=args.iterations, seed=0,
                     callbacks=[keep_last])
    images.save_image(sheet, out / "scale-split.png")
    network = scorer("cpu")
    paintings = {name: network.features(images.resize_long_side(load(name, "style"), args.size))
                 for name in (coarse, fine)}
    rows = []
    for split, picture in zip(SPLITS, pictures, strict=True):
        found = network.features(picture)

        def distance(layers: tuple[str, ...], painting: str, found: dict[str, torch.Tensor] = found) -> float:
            return statistics.fmean(math.sqrt(float(losses.relative_error(
                losses.gram_matrix(found[k]), losses.gram_matrix(paintings[painting][k])))) for k in layers)

        row = {"split": split, "shallow to fine": round(distance(SHALLOW, fine), 3),
               "deep to coarse": round(distance(DEEP, coarse), 3),
               "shallow to coarse": round(distance(SHALLOW, coarse), 3), "deep to fine": round(distance(DEEP, fine), 3)}
        rows.append(row)
        print(row, flush=True)
    return rows


PARTS = {"two": two_regions, "unstyled": unstyled, "tiles": tiles, "scale": scale}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=4, help="photos of the two-region part")
    parser.add_argument("--other-pairs", type=int, default=1, help="photos of the unstyled and tiles parts")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results" / "regions")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} is not present; nothing to measure")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    found = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
             "size": args.size, "iterations": args.iterations}
    for part in args.parts.split(","):
        found[part] = PARTS[part](args, args.out_dir)
        if args.json:  # after each part, so that a long sweep's early parts are kept
            args.json.write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
