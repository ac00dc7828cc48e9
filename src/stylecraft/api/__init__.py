"""The Python API: paths or PIL images in, PIL images out. The CLI and the web studio are built on it, and it
is the one place where inputs are validated.

``transfer`` holds the optimisation front (:func:`run`, :func:`transfer`, :func:`reconstruct`,
:func:`texture`); ``realtime`` the real-time networks (train, load, export, apply); ``video`` paints videos
with them.
"""

from ..runtime import resolve_device
from .batch import BatchResult, BatchSettings, paint_batch
from .masks import flat_colours, region_masks
from .realtime import (
    BACKENDS,
    apply_many,
    apply_model,
    export_model,
    list_styles,
    load_style_model,
    style_sheet,
    train_network,
)
from .score import score
from .sweep import Axis, grid
from .transfer import reconstruct, run, settle, texture, transfer
from .version import version
from .video import paint_frames, paint_video

__all__ = ["BACKENDS", "Axis", "BatchResult", "BatchSettings", "apply_many", "apply_model", "export_model",
           "flat_colours", "grid", "list_styles", "load_style_model", "paint_batch", "paint_frames", "paint_video",
           "reconstruct", "region_masks", "resolve_device", "run", "score", "settle", "style_sheet", "texture",
           "train_network", "transfer", "version"]
