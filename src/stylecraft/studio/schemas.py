"""The studio API's request and response shapes (they make its OpenAPI schema at ``/openapi.json``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..checks import BOUNDS
from ..optimize import TransferConfig
from .store import ID_PATTERN, JobFields

DEFAULTS = TransferConfig()


class RegionMap(BaseModel):
    """Where each painting goes: a map painted over the photo in flat colours, and each painting's colour."""

    model_config = ConfigDict(extra="forbid")

    map: str = Field(pattern=ID_PATTERN.pattern, description="id of the uploaded region map: a picture of the "
                     "photo's shape (any size) in flat colours, black where the photo is kept")
    colours: list[Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]] = Field(
        min_length=1, description="the colour (#rrggbb) of each style's region in the map, in the styles' order")


class JobRequest(BaseModel):
    """A new job: uploaded pictures by id and the common options (defaults from TransferConfig)."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(pattern=ID_PATTERN.pattern, description="id of the uploaded content photo")
    styles: list[str] = Field(default_factory=list, description="ids of uploaded style pictures (optimisation)")
    method: Literal["optimise", "model"] = Field("optimise", description="optimisation or a real-time model")
    model: str | None = Field(None, description="a model's name from /api/models, a built-in style or a file "
                              "(method 'model')")
    size: int | None = Field(None, ge=16, le=BOUNDS["size"][1], description="long side of the result in pixels "
                             "(default: the photo's own with a real-time model, as `stylecraft apply`; "
                             f"{DEFAULTS.size} for the optimiser)")
    iterations: int = Field(DEFAULTS.iterations, ge=BOUNDS["iterations"][0], le=BOUNDS["iterations"][1],
                            description="optimiser steps (optimisation)")
    style_weight: float = Field(DEFAULTS.style_weight, ge=0, le=1e6, allow_inf_nan=False,
                                description="style strength (optimisation)")
    preserve_color: bool = Field(DEFAULTS.preserve_color, description="keep the photo's colours")
    seed: int | None = Field(None, ge=BOUNDS["seed"][0], le=BOUNDS["seed"][1],
                             description="random seed (default: a new one)")
    regions: RegionMap | None = Field(None, description="a style per region of the photo (optimisation)")


class Upload(BaseModel):
    """An accepted picture or video (``seconds`` long)."""

    id: str
    name: str
    width: int
    height: int
    kind: Literal["picture", "video"] = "picture"
    seconds: float | None = None
    image: str
    thumbnail: str


class Picture(BaseModel):
    """An input picture (or video) of a job."""

    id: str
    name: str
    kind: Literal["picture", "video"] = "picture"
    thumbnail: str


class Job(JobFields):
    """A job as the page sees it: the store's fields, its pictures and its files as addresses."""

    content: Picture
    styles: list[Picture]
    queue_position: int | None
    preview: str | None
    result: str | None
    download: str | None
    thumbnail: str | None


class Error(BaseModel):
    """Every error response."""

    error: str
