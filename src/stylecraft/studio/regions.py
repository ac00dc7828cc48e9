"""Regional jobs: a map painted over the photo in flat colours (black where the photo is kept) and a painting
per colour. The map is checked here, at the studio's boundary, and turned into masks by the API's
:func:`~stylecraft.api.region_masks`, as `stylecraft transfer --mask-from MAP --regions COLOUR=STYLE,...` does."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageColor

from .. import api, images
from ..api.masks import NAME_DISTANCE
from ..errors import ConfigError
from .schemas import RegionMap
from .store import JobStore

#: The page's brush colours: far from black and from one another, and none a mix of two others (what the
#: soft edges between regions are), so that ``region_masks`` tells them apart.
BRUSHES = {"red": "#e8443a", "green": "#2fb36b", "blue": "#3a6fe8", "yellow": "#f2c230"}
#: Where no region is painted (the eraser's colour): the photo is kept there.
BACKGROUND = "#000000"


def _rgb(colour: str) -> np.ndarray:
    return np.array(ImageColor.getrgb(colour)[:3], dtype=np.float32)


def _named(colour: str) -> str:
    """The name of the brush that paints ``colour`` (the page's words), else the colour itself."""
    name, distance = min(((name, float(np.linalg.norm(_rgb(value) - _rgb(colour)))) for name, value in BRUSHES.items()),
                         key=lambda pair: pair[1])
    return name if distance <= NAME_DISTANCE / 2 else colour


def check(store: JobStore, content: dict[str, Any], regions: RegionMap, styles: list[str]) -> None:
    """ConfigError in one line unless ``regions`` can paint ``content`` (an upload's record) with ``styles``:
    one colour per style, a map of the photo's shape, something painted, and every painted colour given a
    painting and every painting's colour painted."""
    if len(regions.colours) != len(styles):
        raise ConfigError(f"regions: {len(regions.colours)} colour(s) for {len(styles)} painting(s); give one "
                          "colour per painting, in the same order")
    if len({colour.lower() for colour in regions.colours}) != len(regions.colours):
        raise ConfigError("regions: a colour is given twice; give each region's colour once")
    record = store.upload(regions.map)
    if record["kind"] != "picture":
        raise ConfigError(f"regions: the map {record['name']} is a {record['kind']}, not a picture")
    size, photo = (record["width"], record["height"]), (content["width"], content["height"])
    expected = images.fit_long_side(*photo, max(size))
    if abs(size[0] - expected[0]) > 1 or abs(size[1] - expected[1]) > 1:
        raise ConfigError(f"regions: the map is {size[0]} x {size[1]} px and the photo {photo[0]} x {photo[1]}: "
                          "paint the map over this photo (its shape, at any size)")
    try:  # its bytes, so that no message names the server's folders
        found = [colour for colour in api.flat_colours(store.upload_path(regions.map).read_bytes())
                 if np.linalg.norm(_rgb(colour) - _rgb(BACKGROUND)) > NAME_DISTANCE]
    except ConfigError as exc:
        raise ConfigError(f"regions: the map: {exc}") from None
    if not found:
        raise ConfigError("regions: the map is empty; paint at least one region over the photo")
    wanted = np.stack([_rgb(colour) for colour in regions.colours])
    nearest = []
    for colour in found:
        distance = np.linalg.norm(wanted - _rgb(colour), axis=1)
        if distance.min() > NAME_DISTANCE:
            raise ConfigError(f"regions: the {_named(colour)} region has no painting; choose one for it, or "
                              "erase it")
        nearest.append(int(distance.argmin()))
    for index, colour in enumerate(regions.colours):
        if index not in nearest:
            raise ConfigError(f"regions: {_named(colour)} has a painting but is not painted on the photo; paint "
                              "its region, or leave it without a painting")


def masks(store: JobStore, regions: dict[str, Any]) -> list[Image.Image]:
    """The masks, in the styles' order, of a job's checked ``regions`` (its options' ``regions``)."""
    return api.region_masks(store.upload_path(regions["map"]), colours=regions["colours"])
