"""Uploads: streamed to disk within the byte limit as they arrive (so that no upload is held whole in memory
before the bound on decoding applies), checked by decoding them (a few at a time, since decoding a large
picture takes hundreds of MB), and kept at full size (a job may paint them at any size up to the studio's
pixel limit) under ids made here. A file that is no picture may be a video: it is kept as it came once its
first frame decodes and it fits the video limits (bytes, seconds, pixels)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image

from ... import images
from ...errors import ConfigError, ImageError
from ...video.io import VideoReader
from ..config import StudioConfig
from ..schemas import Error, Upload
from ..security import error
from ..store import JobStore
from ..views import PRIVATE, Settings, Store, display_name, picture_route, public_upload

router = APIRouter()

#: Bytes read from an upload at a time.
CHUNK = 2**20


@router.post("/api/uploads", status_code=201, response_model=Upload, summary="Upload a picture",
             responses={413: {"model": Error}, 507: {"model": Error}})
async def upload(file: UploadFile, request: Request, config: Settings, store: Store) -> dict[str, Any] | JSONResponse:
    name = display_name(file.filename)
    limit = max(config.max_upload_bytes, config.max_video_bytes)
    with store.incoming() as (stream, path):
        size = await _receive(file, stream, limit)
        if size > limit:
            return error(413, f"{name}: larger than the limit of {config.max_video_mb:g} MB for a video")
        async with request.app.state.decoding:
            problem, record = None, None
            if size <= config.max_upload_bytes:  # larger can only be a video: never decoded as a picture
                try:
                    picture = await run_in_threadpool(_decode, path, config.max_pixels)
                    record = await run_in_threadpool(store.add_upload, picture, name)
                except ImageError as exc:
                    problem = f"{name}: {str(exc).removeprefix('the image: ')}"
            if record is None:
                record = await run_in_threadpool(_video, path, name, config, store)
            if record is None:
                if problem is None:
                    return error(413, f"{name}: larger than the limit of {config.max_upload_mb:g} MB for a picture")
                raise ImageError(problem)
    return public_upload(record)


async def _receive(file: UploadFile, stream: IO[bytes], limit: int) -> int:
    """Copy the upload into ``stream`` a chunk at a time, stopping once it is past ``limit`` bytes; return the
    bytes seen."""
    size = 0
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            break
        await run_in_threadpool(stream.write, chunk)
    await run_in_threadpool(stream.flush)
    return size


def _decode(path: Path, max_pixels: int) -> Image.Image:
    """The picture in the file at ``path`` (its bytes, so that errors name no server path)."""
    return images.load_image(path.read_bytes(), max_pixels)


def _video(path: Path, name: str, config: StudioConfig, store: JobStore) -> dict[str, Any] | None:
    """Keep the file at ``path`` as a video upload if it is one that fits the limits; None if it is no video
    (a still or animated picture, of no known length) or this studio has no video support installed."""
    try:
        reader = VideoReader(path)
    except ConfigError:  # PyAV is not installed: pictures only
        return None
    except ImageError as exc:
        if "not a video" in str(exc) or "no video stream" in str(exc):
            return None
        raise ImageError(f"{name}: {str(exc).split(': ', 1)[-1]}") from None
    with reader:
        info = reader.info
        if not math.isfinite(info.duration):
            return None
        if info.duration > config.max_video_seconds:
            raise ConfigError(f"{name}: a video of {info.duration:.1f} s, longer than this studio's limit of "
                              f"{config.max_video_seconds:g} s")
        if info.width * info.height > config.max_video_pixels:
            raise ConfigError(f"{name}: frames of {info.width} x {info.height}, more than this studio's limit "
                              f"of {config.max_video_pixels:,} pixels a frame")
        first = Image.fromarray(next(iter(reader)))
    return store.add_video_upload(path, name, (info.width, info.height), info.duration, first)


@picture_route(router, "/api/uploads/{upload_id}/image", summary="An uploaded picture")
async def upload_image(upload_id: str, store: Store) -> FileResponse:
    record = store.upload(upload_id)
    if record["kind"] == "video":
        return FileResponse(store.upload_path(upload_id, "video"), media_type="application/octet-stream",
                            headers=PRIVATE)
    return FileResponse(store.upload_path(upload_id), media_type="image/png", headers=PRIVATE)


@picture_route(router, "/api/uploads/{upload_id}/thumbnail", summary="Its thumbnail")
async def upload_thumbnail(upload_id: str, store: Store) -> FileResponse:
    store.upload(upload_id)
    return FileResponse(store.upload_path(upload_id, "thumb"), media_type="image/jpeg", headers=PRIVATE)
