"""Every picture in the README and docs/, made by stylecraft itself from pictures we may ship.

Run: python docs/pictures.py [--size 384] [-o docs/pictures] [--only hero styles ...] [--skip studio ...]
[--iterations N]

Sources: the photos bundled with scikit-image (public domain or CC0; ``credits.md`` beside the pictures says
where each comes from) and the six public-domain paintings that ship with the built-in styles
(``stylecraft/feedforward/builtin/*.jpg``, whose records are in ``stylecraft styles --json``). Every run is
seeded, so a second run on the same machine gives the same pictures; the times of the presets, which differ
from run to run, go to ``timings.json``, not into the pictures. ``--size`` is the long side of the optimiser's
pictures (the tour's are a third of it); CI runs the script at a tiny size and 10 iterations an optimisation into
a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageDraw

import stylecraft
from stylecraft import api, report
from stylecraft.feedforward import styles
from stylecraft.runtime import cpu_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
QUALITY = 82  # JPEG quality: small files that still show the brush marks

# scikit-image's bundled photos we use, each with its source as scikit-image's docstrings give it.
PHOTOS: dict[str, str] = {
    "chelsea": "Chelsea the cat, photographed by Stefan van der Walt; CC0 (no copyright restrictions).",
    "coffee": "A cup of coffee, photographed by Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0.",
    "astronaut": "The astronaut Eileen Collins, from NASA's Great Images database (https://flic.kr/p/r9qvLn); "
                 "public domain.",
    "rocket": "The launch of DSCOVR on a Falcon 9, by SpaceX "
              "(https://www.flickr.com/photos/spacexphotos/16511594820/); released into the public domain.",
}


def photo(name: str) -> Image.Image:
    """One of scikit-image's bundled photos (nothing is downloaded)."""
    from skimage import data

    return Image.fromarray(getattr(data, name)())


def painting(name: str) -> Path:
    """The packaged copy of a built-in style's public-domain painting (512 px long side)."""
    return styles.painting_file(name)


def card(name: str) -> str:
    """A painting's short caption: title, artist."""
    record = next(r for r in api.list_styles() if r["name"] == name)
    return f"{record['title']}, {record['artist']}"


def long_side(picture: Image.Image, side: int) -> Image.Image:
    """``picture`` scaled so that its long side is ``side`` pixels."""
    scale = side / max(picture.size)
    return picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                          Image.Resampling.LANCZOS)


class Pictures:
    """The pictures' folder, size and the optimiser results that several pictures share."""

    def __init__(self, out: Path, size: int, iterations: int | None = None) -> None:
        self.out = out
        self.size = size
        self.iterations = iterations
        self.cell = max(64, min(256, size * 2 // 3))
        self.timings: dict[str, float] = {}
        self._cache: dict[tuple[object, ...], Image.Image] = {}
        out.mkdir(parents=True, exist_ok=True)

    def save(self, picture: Image.Image, name: str) -> None:
        """Write ``picture`` as ``name`` (a JPEG) and say so."""
        path = self.out / name
        picture.convert("RGB").save(path, quality=QUALITY, optimize=True, progressive=True)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)", flush=True)

    def sheet(self, rows: Sequence[Sequence[report.Cell]], name: str, cell: int | None = None,
              **labels: Sequence[str]) -> None:
        """A labelled contact sheet of ``rows`` (in cells of ``cell`` px, default ``self.cell``) saved as ``name``."""
        self.save(report.contact_sheet(rows, cell_side=cell or self.cell, **labels), name)  # type: ignore[arg-type]

    def run(self, optimise: Callable[..., Image.Image], *images: Any, **options: Any) -> Image.Image:
        """One optimisation (``stylecraft.transfer``, ``texture`` or ``reconstruct``), cut to ``--iterations``
        when given."""
        if self.iterations:
            options["iterations"] = self.iterations
        return optimise(*images, **options)

    def transfer(self, content: str, style: str | Sequence[str], **options: Any) -> Image.Image:
        """The optimiser's picture of a bundled photo in one or more built-in paintings (computed once)."""
        names = [style] if isinstance(style, str) else list(style)
        key = (content, tuple(names), tuple(sorted((k, repr(v)) for k, v in options.items())))
        if key not in self._cache:
            options = {"size": self.size, "preset": "draft", "seed": SEED, "score": False, **options}
            self._cache[key] = self.run(stylecraft.transfer, photo(content), [painting(n) for n in names],
                                        **options)
        return self._cache[key]

    def builtin(self, content: str, style: str, size: int | None = None) -> Image.Image:
        """A bundled photo painted by a built-in style's network, in one pass."""
        return api.apply_model(style, long_side(photo(content), size or self.size))

    def one_pass(self, content: str, style: str) -> Image.Image:
        """A bundled photo painted in one pass after a painting (universal style transfer)."""
        return api.apply_model(str(painting(style)), long_side(photo(content), self.size))


def hero(p: Pictures) -> None:
    """The README's first strip: a photo and four paintings of it, two by the optimiser, two by built-ins."""
    cells = [report.Cell(photo("chelsea"), "the photo"),
             report.Cell(p.transfer("chelsea", "great-wave"), "optimiser: The Great Wave"),
             report.Cell(p.transfer("chelsea", "starry-night"), "optimiser: The Starry Night"),
             report.Cell(p.builtin("chelsea", "the-scream"), "built-in style: The Scream"),
             report.Cell(p.builtin("chelsea", "udnie"), "built-in style: Udnie")]
    p.sheet([cells], "hero.jpg")


def quickstart(p: Pictures) -> None:
    """One picture per quick-start command: the same photo and painting, three ways."""
    cat, wave = photo("chelsea"), Image.open(painting("great-wave"))
    p.sheet([[report.Cell(cat, "photo.jpg"), report.Cell(p.builtin("chelsea", "great-wave"), "out.png")]],
            "quickstart-builtin.jpg")
    p.sheet([[report.Cell(cat, "photo.jpg"), report.Cell(wave, "painting.jpg"),
              report.Cell(p.one_pass("chelsea", "great-wave"), "out.png")]], "quickstart-one-pass.jpg")
    p.sheet([[report.Cell(cat, "photo.jpg"), report.Cell(wave, "painting.jpg"),
              report.Cell(p.transfer("chelsea", "great-wave"), "out.png")]], "quickstart-transfer.jpg")


def presets(p: Pictures) -> None:
    """draft, standard and fine with each preset's iterations and scales, at half its size for the default
    ``--size`` (384 px: 192, 256 and 512 px), timed; the times go to timings.json."""
    cells = []
    for name, preset_size in (("draft", 384), ("standard", 512), ("fine", 1024)):
        side = max(32, preset_size * p.size // 768)
        start = time.perf_counter()
        picture = p.run(stylecraft.transfer, photo("coffee"), painting("starry-night"), preset=name, size=side,
                        seed=SEED, score=False)
        p.timings[f"preset {name} {side} px"] = round(time.perf_counter() - start, 1)
        print(f"{name} at {side} px: {p.timings[f'preset {name} {side} px']} s", flush=True)
        cells.append(report.Cell(picture, f"{name}: {side} px"))
    p.sheet([cells], "presets.jpg")


def styles_sheets(p: Pictures) -> None:
    """The built-in styles sheet (one photo in every style) and a sheet for each style (four photos)."""
    p.save(api.style_sheet(photo("astronaut"), size=p.size, cell_side=p.cell), "styles-sheet.jpg")
    for record in api.list_styles():
        name = str(record["name"])
        cells = [report.Cell(Image.open(painting(name)), "the painting")]
        cells += [report.Cell(p.builtin(content, name), content) for content in PHOTOS]
        p.sheet([cells], f"style-{name}.jpg")


def regions_mask(size: tuple[int, int]) -> Image.Image:
    """The rocket photo's regions drawn as flat colours: red over the sky, blue over the ground (the lowest
    third, where the launch tower and the smoke meet the land)."""
    mask = Image.new("RGB", size, "red")
    ImageDraw.Draw(mask).rectangle((0, size[1] * 2 // 3, size[0], size[1]), fill="blue")
    return mask


def regions(p: Pictures) -> None:
    """Regions (a painting for each flat colour of a map) and scale control (one painting's large shapes,
    another's strokes)."""
    rocket = photo("rocket")
    regions_map = regions_mask(rocket.size)
    masks = api.region_masks(regions_map, colours=["red", "blue"])
    painted = p.transfer("rocket", ["starry-night", "great-wave"], masks=masks)
    p.sheet([[report.Cell(rocket, "the photo"), report.Cell(regions_map, "the map: red, blue"),
              report.Cell(painted, "red: The Starry Night, blue: The Great Wave")]], "regions.jpg")
    split = p.transfer("coffee", ["the-scream", "contrast-of-forms"], scale_split="relu3_1")
    p.sheet([[report.Cell(Image.open(painting("the-scream")), "coarse: The Scream"),
              report.Cell(Image.open(painting("contrast-of-forms")), "fine: Contrast of Forms"),
              report.Cell(split, "its shapes and colours, their strokes")]], "scale-control.jpg")


def colour(p: Pictures) -> None:
    """The painting's palette (the default) against the photo's colours kept (``--preserve-color``)."""
    p.sheet([[report.Cell(photo("chelsea"), "the photo"),
              report.Cell(Image.open(painting("great-wave")), "the painting"),
              report.Cell(p.transfer("chelsea", "great-wave"), "default: the painting's palette"),
              report.Cell(p.transfer("chelsea", "great-wave", preserve_color=True), "--preserve-color")]],
            "colour.jpg")


def video_frames(count: int, side: int) -> list[Image.Image]:
    """A camera moving up the rocket photo and closing in: ``count`` frames of ``side`` px long side."""
    rocket = photo("rocket")
    size = long_side(rocket, side).size  # every frame of a video has one size
    frames = []
    for t in np.linspace(0.0, 1.0, count):
        width, height = rocket.width * (1 - 0.35 * t), rocket.height * (1 - 0.35 * t)
        left, top = (rocket.width - width) * 0.5, (rocket.height - height) * (1 - t)
        frames.append(rocket.resize(size, Image.Resampling.LANCZOS, box=(left, top, left + width, top + height)))
    return frames


def video(p: Pictures) -> None:
    """A short clip painted by a built-in style, steadied by optical flow: five of its frames, input above."""
    frames = video_frames(25, p.cell)
    painted = [Image.fromarray(frame) for frame in api.paint_frames("starry-night", frames)]
    shown = range(0, len(frames), 6)
    p.sheet([[report.Cell(frames[i], f"frame {i}") for i in shown],
             [report.Cell(painted[i], f"painted {i}") for i in shown]], "video.jpg")


def quality(p: Pictures) -> None:
    """Pictures that score well and badly on each quality number, their scores as captions."""
    cat = photo("chelsea")
    wave = painting("great-wave")
    texture = p.run(stylecraft.texture, wave, size=p.size * 2 // 3, iterations=100, seed=SEED, score=False)
    candidates = [("the photo itself", cat),
                  ("optimiser, draft", p.transfer("chelsea", "great-wave")),
                  ("style weight 0.3", p.transfer("chelsea", "great-wave", style_weight=0.3, color_weight=0)),
                  ("built-in style", p.builtin("chelsea", "great-wave")),
                  ("texture, no photo", texture)]
    scores = api.score_many([picture for _, picture in candidates], cat, wave)
    cells = [report.Cell(picture, f"{label}: content {s.content_distance:.2f}, style {s.style_distance:.2f}, "
                                  f"colour {s.colour_distance:.2f}, structure {s.structure_kept:.2f}")
             for (label, picture), s in zip(candidates, scores, strict=True)]
    p.sheet([cells], "quality.jpg")


def studio(p: Pictures) -> None:
    """The studio at desktop and phone widths and the live page: the screenshots that their browser tests take
    (skipped without chromium, as the tests are)."""
    if shutil.which("chromium") is None:
        print("studio: skipped (Debian's chromium is not installed)")
        return
    shots = ROOT / "out"  # the tests keep their screenshots in out/ where that folder exists
    shots.mkdir(exist_ok=True)
    tests = ["tests/test_studio_browser.py::test_a_built_in_style_previews_and_paints_the_photo",
             "tests/test_studio_live_browser.py::test_the_painted_camera_arrives_and_is_shown[desktop-viewport0-False]"]
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT, check=True)
    # The first screen of each full-page screenshot, at the page's own width (the phone's is taken at twice it).
    for shot_name, name, width, height in (("studio-styles-desktop", "studio-desktop", 1280, 1000),
                                           ("studio-styles-phone", "studio-phone", 390, 844),
                                           ("live-desktop", "live-desktop", 1280, 860)):
        with Image.open(shots / f"{shot_name}.png") as shot:
            scale = shot.width / width
            first = shot.crop((0, 0, shot.width, min(shot.height, round(height * scale))))
            p.save(first.resize((width, first.height * width // shot.width), Image.Resampling.LANCZOS),
                   f"{name}.jpg")


def tour(p: Pictures) -> None:
    """The tour's pictures (docs/tour.md): what each layer keeps, texture from each layer, contents by styles,
    noise against content, and a sweep of the style weight, at a third of ``--size`` and shown at 176 px."""
    side = max(32, p.size // 3)
    small: dict[str, Any] = {"size": side, "iterations": 100, "single_scale": True, "seed": SEED, "score": False}
    shown = 176

    def cell(picture: Image.Image, caption: str) -> report.Cell:
        return report.Cell(long_side(picture, shown), caption)

    cat = long_side(photo("chelsea"), side)
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    p.sheet([[cell(cat, "the photo")] +
             [cell(p.run(stylecraft.reconstruct, cat, content_layers=(layer,), **small), layer) for layer in layers]],
            "tour-reconstruction.jpg", shown)
    wave = painting("starry-night")
    textures = [cell(p.run(stylecraft.texture, wave, style_layers=tuple(layers[: i + 1]), **small),
                     layers[0] if i == 0 else f"{layers[0]} to {layers[i]}") for i in range(len(layers))]
    p.sheet([[cell(Image.open(wave), "the painting"), *textures]], "tour-texture.jpg", shown)
    contents, paintings = ["chelsea", "coffee", "astronaut"], ["starry-night", "great-wave", "udnie"]
    p.sheet([[cell(p.run(stylecraft.transfer, long_side(photo(c), side), painting(s), **small), "")
              for s in paintings] for c in contents],
            "tour-grid.jpg", shown, row_labels=contents, column_labels=paintings)
    p.sheet([[cell(p.run(stylecraft.transfer, cat, wave, init=init, **small), f"from {init}")
              for init in ("noise", "content", "palette")]], "tour-init.jpg", shown)
    p.sheet([[cell(p.run(stylecraft.transfer, cat, wave, style_weight=weight, **small),
                   f"style weight {weight:g}")
              for weight in (0.1, 1, 10, 100, 1000)]], "tour-style-weight.jpg", shown)


def credits(p: Pictures) -> None:
    """credits.md: the source of every photo and painting the pictures are made from."""
    lines = ["# Sources of the pictures", "",
             "Every picture here is made by `python docs/pictures.py` from these sources alone.", "",
             "## Photos (bundled with scikit-image, `skimage.data`)", ""]
    lines += [f"- `{name}`: {source}" for name, source in PHOTOS.items()]
    lines += ["", "## Paintings (public domain; shipped with the built-in styles)", ""]
    for record in api.list_styles():
        lines.append(f"- `{record['name']}`: {record['title']}, {record['artist']}, {record['year']}; "
                     f"{record['public_domain']}; from {record['source']}.")
    lines.append("")
    (p.out / "credits.md").write_text("\n".join(lines), encoding="utf-8")


def performance(p: Pictures) -> None:
    """The plots of docs/performance.md, drawn from the committed benchmark results: an optimiser step against
    the picture's size (with the floor the convolutions set), and a real-time network's time by backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = ROOT / "benchmarks" / "results"
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for name, label in (("scaling-cpu.json", "2 CPU cores, fp32"), ("scaling-cuda-h100.json", "H100"),
                        ("scaling-cuda-h200.json", "H200")):
        rows = [r for r in json.loads((results / name).read_text())["rows"] if not r.get("tile")]
        megapixels = [r["width"] * r["height"] / 1e6 for r in rows]
        axes.loglog(megapixels, [r["seconds_per_step"] for r in rows], "o-", label=f"{label}: measured")
        axes.loglog(megapixels, [r["floor_seconds"] for r in rows], ":", color=axes.lines[-1].get_color(),
                    label=f"{label}: convolution floor")
    axes.set(xlabel="megapixels", ylabel="seconds per optimiser step", title="One optimiser step against size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    _plot(p, figure, "performance-scaling.jpg")

    rows = json.loads((results / "realtime-vm.json").read_text())["inference"]
    sizes = sorted({r["size"] for r in rows}, key=lambda size: int(size.split("x")[0]))
    contenders = list(dict.fromkeys(r["contender"] for r in rows))
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    width = 0.8 / len(sizes)
    for i, size in enumerate(sizes):
        seconds = {r["contender"]: r["median_s"] for r in rows if r["size"] == size}
        axes.barh([c + i * width for c in range(len(contenders))], [seconds[c] for c in contenders], width,
                  label=size)
    axes.set_yticks([c + width * (len(sizes) - 1) / 2 for c in range(len(contenders))], contenders, fontsize=7)
    axes.invert_yaxis()
    axes.set(xlabel="seconds per picture (median)", title="A real-time network, 2 CPU cores (AMD EPYC)")
    axes.legend(fontsize=7)
    _plot(p, figure, "performance-realtime.jpg")


def _plot(p: Pictures, figure: Figure, name: str) -> None:
    """Save a matplotlib ``figure`` as the picture ``name`` and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with tempfile.TemporaryDirectory() as folder:
        figure.savefig(Path(folder) / "plot.png")
        plt.close(figure)
        with Image.open(Path(folder) / "plot.png") as plot:
            p.save(plot, name)


GROUPS: dict[str, Callable[[Pictures], None]] = {
    "hero": hero, "quickstart": quickstart, "presets": presets, "styles": styles_sheets, "regions": regions,
    "colour": colour, "video": video, "quality": quality, "studio": studio, "tour": tour, "credits": credits,
    "performance": performance,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384, help="the optimiser pictures' long side (384)")
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "pictures")
    parser.add_argument("--only", nargs="+", choices=list(GROUPS), default=list(GROUPS))
    parser.add_argument("--skip", nargs="+", choices=list(GROUPS), default=[], help="groups to leave out")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch's threads (1: on cores shared with other work, two threads wait on each other)")
    parser.add_argument("--iterations", type=int, help="every optimisation cut to this many iterations (CI's "
                        "smoke run); by default each picture runs its preset's or its own")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pictures = Pictures(args.out, args.size, args.iterations)
    for name in [group for group in args.only if group not in args.skip]:
        start = time.perf_counter()
        GROUPS[name](pictures)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    if pictures.timings:
        record = {"cpu": cpu_name(), "cores": os.cpu_count(),
                  "threads": args.threads, "iterations": args.iterations,
                  "load_average": [round(x, 2) for x in os.getloadavg()], "seconds": pictures.timings}
        (args.out / "timings.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
