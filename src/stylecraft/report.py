"""What people look at: snapshots, progress animations, loss histories and plots, contact-sheet grids.

Snapshots and animations are progress callbacks; everything here writes its files atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image, ImageDraw, ImageFont

from . import checks, files, images
from .errors import ConfigError

PathLike = str | os.PathLike[str]
HISTORY_TYPES = (".csv", ".json")


class _Frame(Protocol):
    """A progress event that can render the current picture (``optimize.Progress``)."""

    iteration: int
    iterations: int

    def image(self) -> torch.Tensor: ...


class _TrainFrame(Protocol):
    """A training progress event (``feedforward.TrainProgress``)."""

    step: int
    steps: int

    def sample(self) -> torch.Tensor: ...


class Snapshots:
    """A callback that saves the current image as ``DIR/iter_00050.png`` every ``every`` iterations."""

    def __init__(self, folder: PathLike, every: int) -> None:
        checks.within("save_every", every)
        self.folder = Path(folder)
        self.every = every
        self.folder.mkdir(parents=True, exist_ok=True)
        images.check_output_path(self.folder / "iter_00000.png")

    def __call__(self, event: _Frame) -> None:
        if event.iteration % self.every == 0 or event.iteration == event.iterations:
            images.save_image(event.image(), self.folder / f"iter_{event.iteration:05d}.png")


class TrainSamples:
    """A training callback that saves the validation photo, stylised, as ``DIR/step_000500.png``."""

    def __init__(self, folder: PathLike, every: int) -> None:
        self.folder = Path(folder)
        self.every = every

    def __call__(self, event: _TrainFrame) -> None:
        if event.step % self.every == 0 or event.step == event.steps:
            self.folder.mkdir(parents=True, exist_ok=True)  # at the first sample: a failed run leaves no empty folder
            images.save_image(event.sample(), self.folder / f"step_{event.step:06d}.png")


class Animation:
    """A callback that keeps about ``frames`` evenly spaced frames (long side ``max_side``) for a GIF."""

    def __init__(self, frames: int = 60, max_side: int = 384) -> None:
        self.wanted = frames
        self.max_side = max_side
        self.frames: list[Image.Image] = []

    def __call__(self, event: _Frame) -> None:
        every = max(1, event.iterations // self.wanted)
        if event.iteration == 1 or event.iteration % every == 0 or event.iteration == event.iterations:
            frame = images.to_pil(event.image())
            frame.thumbnail((self.max_side, self.max_side))
            self.frames.append(frame)

    def save(self, path: PathLike, frame_ms: int = 80, final_ms: int = 1500) -> None:
        """Write the frames as a looping GIF; the last frame is held longer."""
        if not self.frames:
            return
        durations = [frame_ms] * (len(self.frames) - 1) + [final_ms]
        buffer = io.BytesIO()
        self.frames[0].save(buffer, format="GIF", save_all=True, append_images=self.frames[1:],
                            duration=durations, loop=0, optimize=True)
        files.atomic_write_bytes(path, buffer.getvalue())


def check_suffix(path: PathLike, suffixes: Sequence[str], option: str, inputs: Sequence[object] = ()) -> Path:
    """Fail before a run if ``path`` has the wrong type, cannot be written, or is one of the ``inputs``."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} {path}: use a file ending in {' or '.join(suffixes)}")
    return files.check_writable(path, inputs)


def write_history(history: Sequence[dict[str, float]], path: PathLike, extra: dict[str, object] | None = None) -> None:
    """Every loss term per iteration, with elapsed seconds, as CSV (one row each) or JSON.

    JSON holds ``extra`` beside the rows; CSV repeats the scalar values of ``extra`` (such as the peak
    memory) as columns of every row.
    """
    path = Path(path)
    extra = extra or {}
    if path.suffix.lower() == ".json":
        data = json.dumps({**extra, "history": list(history)}, indent=1).encode()
    else:
        scalars = {k: v for k, v in extra.items() if isinstance(v, (int, float, str))}
        rows = [{**row, **scalars} for row in history]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        data = text.getvalue().encode()
    files.atomic_write_bytes(path, data)


def plot_history(history: Sequence[dict[str, float]], path: PathLike, title: str = "") -> None:
    """Loss curves (total and each term, log scale) against iterations, as a PNG (needs the ``plot`` extra)."""
    checks.require("matplotlib", "plot", "`plot`").use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot()
    steps = [row["iteration"] for row in history]
    for key in ("total", "content", "style", "tv"):
        values = [row.get(key) for row in history]
        if any(v is not None and v > 0 for v in values):
            # a row without the term is None, a gap in the curve; matplotlib's stub takes no None
            axes.plot(steps, values, label=key, linewidth=2 if key == "total" else 1.2)  # type: ignore[arg-type]
    axes.set_yscale("log")
    axes.set_xlabel("iteration")
    axes.set_ylabel("weighted loss")
    axes.set_title(title or "stylecraft loss history")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    files.atomic_write_bytes(path, buffer.getvalue())


@dataclass
class Cell:
    """One picture of a contact sheet with its caption (the setting and the seconds it took)."""

    image: Image.Image
    caption: str


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def contact_sheet(rows: Sequence[Sequence[Cell]], row_labels: Sequence[str] = (),
                  column_labels: Sequence[str] = (), title: str = "", cell_side: int = 256) -> Image.Image:
    """Lay cells out in a labelled grid: a title, column headers, row headers and a caption under each.

    Pictures are shrunk to fit ``cell_side`` x ``cell_side``; each row is as tall as its tallest picture.
    Captions and headers longer than a cell wrap onto more lines, so neighbours never overlap.
    """
    pad, line_h, font = 8, 17, _font(14)
    thumbs = [[cell.image.copy() for cell in row] for row in rows]
    for pictures in thumbs:
        for picture in pictures:
            picture.thumbnail((cell_side, cell_side))
    heights = [max(p.height for p in row) for row in thumbs]
    captions = [[_wrap(cell.caption, font, cell_side) for cell in row] for row in rows]
    caption_hs = [max(len(lines) for lines in row) * line_h + 3 for row in captions]
    headers = [_wrap(label, font, cell_side) for label in column_labels]
    header_h = max((len(lines) for lines in headers), default=0) * line_h + (3 if headers else 0)
    title_h = 28 if title else 0
    label_w = max((int(font.getlength(label)) for label in row_labels), default=0)
    label_w = label_w + 2 * pad if label_w else 0
    columns = max(len(row) for row in rows)
    width = label_w + columns * (cell_side + pad) + pad
    height = title_h + header_h + sum(heights) + sum(caption_hs) + len(rows) * pad + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill="black", font=_font(18))
    for c, lines in enumerate(headers):
        draw.multiline_text((label_w + pad + c * (cell_side + pad), title_h + 2), "\n".join(lines), fill="black",
                            font=font, spacing=3)
    top = title_h + header_h + pad
    for r, (pictures, lines_of_row) in enumerate(zip(thumbs, captions, strict=True)):
        if r < len(row_labels):
            draw.text((pad, top + heights[r] // 2 - 7), row_labels[r], fill="black", font=font)
        for c, (picture, lines) in enumerate(zip(pictures, lines_of_row, strict=True)):
            left = label_w + pad + c * (cell_side + pad)
            sheet.paste(picture, (left + (cell_side - picture.width) // 2, top + (heights[r] - picture.height) // 2))
            draw.multiline_text((left, top + heights[r] + 2), "\n".join(lines), fill="dimgray", font=font,
                                spacing=3)
        top += heights[r] + caption_hs[r] + pad
    return sheet


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width`` pixels (a longer word gets a line of its own,
    cut to fit)."""
    lines: list[str] = []
    for word in text.split():
        joined = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(joined) <= width:
            lines[-1] = joined
            continue
        while font.getlength(word) > width and len(word) > 1:
            word = word[:-1]
        lines.append(word)
    return lines or [""]
