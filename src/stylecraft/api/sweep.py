"""Sweeps: run a mode once per combination of settings and lay the pictures out in one labelled contact sheet.

    sheet = grid("transfer", [Axis.inputs("content", ["a.jpg", "b.jpg"]), Axis.inputs("style", ["x.jpg"]),
                              Axis.of("style_weight", [1, 10, 100])], size=256)

At most two axes may have more than one value (rows and columns); single-valued axes apply to every cell.
Each cell is captioned with its setting and the seconds it took.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .. import checks, images, report
from ..errors import ConfigError, StylecraftError
from ..images import ImageInput
from ..optimize import Mode
from ..progress import CANCELLED, Stop
from .transfer import run

Cell = tuple[str, dict[str, object]]


def _text(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Axis:
    """One swept setting: its name and, for each value, a label and the options it sets."""

    name: str
    cells: tuple[Cell, ...]

    @classmethod
    def of(cls, name: str, values: Sequence[object]) -> Axis:
        """A run option (``style_weight``, or ``style-weight`` as the CLI spells it) over ``values``."""
        return cls(name, tuple((f"{name}={_text(v)}", {name.replace("-", "_"): v}) for v in values))

    @classmethod
    def inputs(cls, name: str, sources: Sequence[ImageInput]) -> Axis:
        """Input pictures (``content`` or ``style``), labelled by their file names."""
        return cls(name, tuple((Path(s).name if isinstance(s, (str, Path)) else f"{name} {i + 1}", {name: s})
                               for i, s in enumerate(sources)))


def grid(mode: Mode | str, axes: Sequence[Axis], *, cell_side: int = 256,
         on_cell: Callable[[int, int, str], None] | None = None, stop: Stop | None = None,
         **options: object) -> Image.Image:
    """The contact sheet of ``mode`` run over ``axes`` (``options`` go to every run, as for :func:`run`:
    ``callbacks`` receive each run's progress).

    ``on_cell(index, total, label)`` is called before each run. ``stop`` (a ``threading.Event`` or anything
    with ``is_set()``) and Ctrl-C end the sweep in the run under way: the sheet then holds the cells done, the
    last one as far as it got, and its ``info["stopped"]`` says why ("cancelled" or "interrupted"). A run
    ended by a fault (a non-finite loss) ends the sweep with a StylecraftError.
    """
    checks.within("cell_side", cell_side)
    mode = Mode(mode)
    names = {axis.name for axis in axes}
    for kind, needed in (("content", mode.uses_content), ("style", mode.uses_style)):
        if needed and kind not in names:
            raise ConfigError(f"a {mode.value} grid needs `{kind}`")
    swept = [axis for axis in axes if len(axis.cells) > 1]
    if len(swept) > 2:
        raise ConfigError("a grid sweeps at most two things at once (rows and columns)")
    fixed = {k: v for axis in axes if len(axis.cells) == 1 for k, v in axis.cells[0][1].items()}
    rows_axis = swept[0] if swept else Axis("", (("", {}),))
    cols_axis = swept[1] if len(swept) > 1 else Axis("", (("", {}),))
    total = len(rows_axis.cells) * len(cols_axis.cells)
    rows: list[list[report.Cell]] = []
    stopped: str | None = None
    for index, ((row_label, row_opts), (col_label, col_opts)) in enumerate(
            itertools.product(rows_axis.cells, cols_axis.cells)):
        cell_options: dict[str, Any] = {**fixed, **row_opts, **col_opts}
        content, style = cell_options.pop("content", None), cell_options.pop("style", None)
        label = ", ".join(x for x in (row_label, col_label) if x) or mode.value
        if on_cell is not None:
            on_cell(index, total, label)
        began = time.perf_counter()
        run_options: dict[str, Any] = {**options, **cell_options}
        result = run(mode, content, style if mode.uses_style else None, stop=stop, **run_options)
        stopped = result.stopped
        if stopped not in (None, CANCELLED, "interrupted"):
            raise StylecraftError(f"grid cell {label}: {stopped}")
        seconds = time.perf_counter() - began
        caption = f"{col_label or row_label or mode.value}  {seconds:.1f} s" + ("  (stopped)" if stopped else "")
        if index % len(cols_axis.cells) == 0:
            rows.append([])
        rows[-1].append(report.Cell(images.to_pil(result.image), caption))
        if stopped:
            break
    title = f"stylecraft {mode.value}: " + (" x ".join(axis.name for axis in swept) or "single run")
    two = len(swept) > 1
    columns = max(len(row) for row in rows)
    sheet = report.contact_sheet(rows, [label for label, _ in rows_axis.cells] if two else [],
                                 [label for label, _ in cols_axis.cells][:columns] if two else [],
                                 title=title, cell_side=cell_side)
    if stopped:
        sheet.info["stopped"] = stopped
    return sheet
