"""Contact sheets: captions stay under their own picture."""

from __future__ import annotations

import numpy as np
from PIL import Image

from stylecraft import report


def test_long_captions_wrap_inside_their_cell():
    side, pad = 96, 8
    caption = "The Wreck of a Transport Ship (known as The Shipwreck of the Minotaur), J. M. W. Turner, 1810"
    cells = [[report.Cell(Image.new("RGB", (side, side), "black"), caption) for _ in range(3)]]
    sheet = np.asarray(report.contact_sheet(cells, cell_side=side).convert("L"))
    below = sheet[pad + side:]
    assert (below < 200).sum() > 0, "the captions are drawn"
    assert below.shape[0] > 3 * 17, "a caption this long takes several lines"
    for column in range(1, 3):
        gap = below[:, column * (side + pad): column * (side + pad) + pad]
        assert (gap > 250).all(), "a caption runs into its neighbour's column"
