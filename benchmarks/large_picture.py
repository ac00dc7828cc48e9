"""A large picture in one pass, in exact tiles: its time and peak memory, and crops across the tiles' seams.

The photo (../shared/images/content) is enlarged to ``--size`` px (4096 by default) and painted with a painting
of ../shared/images/style in tiles of ``--tile`` px; the crops written with ``--crops`` straddle the first
vertical and horizontal seams at 100 %, for looking at. ``--check`` also paints the picture in tiles of twice the
size and prints the largest difference (the tiles are exact: it should be a rounding error).

    python benchmarks/large_picture.py [--size 4096] [--tile 1024] [--photo sailboat.jpg]
                                       [--painting candy.jpg] [--crops DIR] [--check]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from builtin_styles import SHARED
from transfer_vs_pastiche import cpu_model

from stylecraft import api, images, runtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--photo", default="sailboat.jpg")
    parser.add_argument("--painting", default="candy.jpg")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="auto (the default): bf16 where the CPU has it natively")
    parser.add_argument("--crops", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "images").is_dir():
        print("large_picture: ../shared/images is needed", file=sys.stderr)
        return 2
    photo = images.resize_long_side(images.to_tensor(images.load_image(SHARED / "images" / "content" / args.photo)),
                                    args.size)
    loaded = api.load_one_pass(str(SHARED / "images" / "style" / args.painting), device="cpu",
                               precision=args.precision)
    began = time.perf_counter()
    painted = loaded.paint(photo, tile=args.tile)
    seconds = time.perf_counter() - began
    peak = runtime.peak_rss()
    height, width = painted.shape[-2:]
    print(f"{width} x {height} px in tiles of {args.tile}: {seconds:.1f} s, peak RSS "
          f"{(peak or 0) / 2**30:.2f} GiB ({cpu_model()}, {loaded.painter.runtime.precision})")
    if args.crops:
        args.crops.mkdir(parents=True, exist_ok=True)
        seam = args.tile
        images.save_image(painted[..., seam - 256:seam + 256, seam - 256:seam + 256], args.crops / "seams.png")
        images.save_image(images.resize_long_side(painted, 1024), args.crops / "whole.png")
    if args.check:
        other = loaded.paint(photo, tile=2 * args.tile)
        print(f"largest difference against tiles of {2 * args.tile}: {float((other - painted).abs().max()):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
