"""What the page needs to know first: version, device, defaults, presets, limits, the models (the built-in styles
and the models folder's files), the brushes that paint regions and the queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ... import api
from ...api.masks import MIN_SHARE
from ...optimize import PRESETS
from ..models import offered
from ..regions import BACKGROUND, BRUSHES
from ..schemas import DEFAULTS
from ..views import Runner, Settings, Store

router = APIRouter()


@router.get("/api/info", summary="Version, device, defaults, presets, limits, models, brushes and queue length")
async def info(config: Settings, store: Store, worker: Runner) -> dict[str, Any]:
    return {"version": api.version(), "device": config.device, "token_required": bool(config.token),
            "defaults": {"size": DEFAULTS.size, "iterations": DEFAULTS.iterations,
                         "style_weight": DEFAULTS.style_weight, "preserve_color": DEFAULTS.preserve_color},
            "presets": {name: {"size": preset.size, "iterations": preset.iterations}
                        for name in PRESETS for preset in [DEFAULTS.with_preset(name)]},
            "limits": {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                       "max_queue": config.max_queue, "max_styles": config.max_styles,
                       "max_iterations": config.max_iterations, "max_video_bytes": config.max_video_bytes,
                       "max_video_seconds": config.max_video_seconds, "max_video_pixels": config.max_video_pixels},
            "models": offered(config.models_folder),
            "brushes": {"colours": BRUSHES, "background": BACKGROUND, "min_share": MIN_SHARE},
            "pending": store.pending(), "running": worker.current}


@router.get("/api/models", summary="Real-time models: the built-in styles (builtin: true), then the models folder's "
            "files")
async def models(config: Settings) -> list[dict[str, Any]]:
    return offered(config.models_folder)
