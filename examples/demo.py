"""A first picture with nothing downloaded: scikit-image's bundled photo painted in a style drawn by code.

Run: python examples/demo.py [--size 256] [--iterations 150] [-o demo.png]

It writes the picture that ``-o`` names and the painting drawn for it beside it (``demo_style.png`` for
``demo.png``), and shows a progress bar while it works (about 2 minutes on 2 CPU cores at the defaults).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

import stylecraft


def brush_painting(side: int = 384, strokes: int = 900, seed: int = 7) -> Image.Image:
    """A loose expressionist 'painting': thick curved strokes in a warm/cool palette, slightly blurred."""
    rng = np.random.default_rng(seed)
    palette = [(233, 196, 106), (231, 111, 81), (42, 157, 143), (38, 70, 83), (244, 162, 97), (90, 60, 140)]
    canvas = Image.new("RGB", (side, side), palette[3])
    draw = ImageDraw.Draw(canvas)
    for _ in range(strokes):
        x, y = rng.uniform(0, side, 2)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(side / 30, side / 8)
        points = [(x + t * length * np.cos(angle + 0.4 * t), y + t * length * np.sin(angle + 0.4 * t))
                  for t in np.linspace(-1, 1, 6)]
        colour = palette[rng.integers(len(palette))]
        draw.line(points, fill=colour, width=int(rng.integers(3, 9)), joint="curve")
    return canvas.filter(ImageFilter.GaussianBlur(0.8))


def main() -> None:
    from skimage import data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("-o", "--output", default="demo.png")
    args = parser.parse_args()
    output = Path(args.output)
    style_path = output.with_name(f"{output.stem}_style.png")
    photo = Image.fromarray(data.astronaut())
    style = brush_painting()
    style.save(style_path)
    with tqdm(total=args.iterations, desc="demo", unit="it") as bar:
        result = stylecraft.transfer(photo, style, size=args.size, iterations=args.iterations, seed=0,
                                     callbacks=[lambda event: bar.update(event.iteration - bar.n)])
    result.save(output)
    print(f"wrote {output} (the style it was painted in: {style_path})")


if __name__ == "__main__":
    main()
