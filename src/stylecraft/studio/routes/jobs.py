"""Jobs: queue one, follow it, cancel, restart or delete it, and fetch its pictures."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from ... import images
from ...errors import ConfigError
from ...features import downsampling
from .. import regions
from ..models import check_model
from ..schemas import DEFAULTS, Error, Job, JobRequest
from ..store import JobFile, JobStore, Unrunnable
from ..views import PRIVATE, Runner, Settings, Store, picture_route, public_job

router = APIRouter()

#: The shortest side a picture may have for the optimiser: its deepest layer needs one position.
MIN_SIDE = 2 ** max(downsampling(layer) for layer in (*DEFAULTS.content_layers, *DEFAULTS.style_layers))


def _check(request: JobRequest, config: Settings, store: JobStore) -> tuple[list[str], int, int]:
    """The request's style ids, the result's size (long side) and its pixels, once it is known to fit this
    studio's limits and the optimiser's rules. A real-time model keeps the photo's size unless asked for
    another, as `stylecraft apply` does; the optimiser paints at its default size."""
    content = store.upload(request.content)
    video = content["kind"] == "video"
    if video and request.method != "model":
        raise ConfigError("a video is painted here with a real-time model: the optimiser takes minutes a frame "
                          "(on the command line: stylecraft video --style)")
    size = request.size or (max(content["width"], content["height"]) if request.method == "model" else DEFAULTS.size)
    limit, what = (config.max_video_pixels, "frame") if video else (config.max_pixels, "picture")
    width, height = images.fit_long_side(content["width"], content["height"], size)
    if width * height > limit:
        raise ConfigError(f"size {size} makes a {width} x {height} {what}, more than this studio's limit "
                          f"of {limit:,} pixels; use a size of {_largest(content, limit)} or less")
    pixels = width * height
    if request.iterations > config.max_iterations:
        raise ConfigError(f"{request.iterations} iterations is more than this studio's limit of "
                          f"{config.max_iterations}")
    styles = request.styles
    if request.method == "model":
        if request.regions is not None:
            raise ConfigError("regions are painted with the optimiser: choose method 'optimise'")
        if not request.model:
            raise ConfigError("choose a real-time model")
        check_model(config.models_folder, request.model)
        return [], size, pixels
    if not styles:
        raise ConfigError("add at least one style picture")
    if len(styles) > config.max_styles:
        raise ConfigError(f"{len(styles)} style pictures: at most {config.max_styles}")
    if len(set(styles)) != len(styles):
        raise ConfigError("the same painting is chosen for two colours; paint both regions in one colour"
                          if request.regions else "the same style picture is given twice")
    for picture in [content, *map(store.upload, styles)]:
        _check_runnable(picture, size)
    if request.regions is not None:
        regions.check(store, content, request.regions, styles)
    DEFAULTS.replace(size=size, iterations=request.iterations, style_weight=request.style_weight,
                     preserve_color=request.preserve_color, seed=request.seed).validate("transfer", len(styles))
    return styles, size, pixels


def _check_runnable(picture: dict[str, Any], size: int) -> None:
    """Unrunnable if the optimiser could not paint with ``picture`` at ``size``: a video, or a side too short
    for its deepest layer."""
    if picture["kind"] != "picture":
        raise Unrunnable(f"{picture['name']} is a {picture['kind']}, not a picture: a style must be a picture")
    width, height = images.fit_long_side(picture["width"], picture["height"], size)
    if min(width, height) < MIN_SIDE:
        raise Unrunnable(f"size {size} makes {picture['name']} {width} x {height} px, too small: the optimiser "
                         f"needs at least {MIN_SIDE} px a side; use a larger size")


def _largest(picture: dict[str, Any], max_pixels: int) -> int:
    """The largest size (long side) at which ``picture`` has at most ``max_pixels`` pixels."""
    width, height = picture["width"], picture["height"]
    side = math.isqrt(max_pixels * max(width, height) // min(width, height))
    while math.prod(images.fit_long_side(width, height, side)) > max_pixels:
        side -= 1
    return side


@router.get("/api/jobs", response_model=list[Job], summary="Every job, newest first")
async def jobs(store: Store) -> list[dict[str, Any]]:
    return [public_job(store, job) for job in store.list_jobs()]


@router.post("/api/jobs", status_code=201, response_model=Job, summary="Queue a job",
             responses={404: {"model": Error}, 429: {"model": Error}, 507: {"model": Error}})
async def create_job(request: JobRequest, config: Settings, store: Store, worker: Runner) -> dict[str, Any]:
    styles, size, pixels = await run_in_threadpool(_check, request, config, store)
    options = {**request.model_dump(exclude={"content", "styles"}), "size": size}
    if request.method != "model":
        options["model"] = None
    room = 4 * pixels  # at most: the result as a PNG, its preview and thumbnail
    if store.upload(request.content)["kind"] == "video":  # H.264 at the same quality: about the source's bytes
        room += 2 * store.upload_path(request.content, "video").stat().st_size
    job = await run_in_threadpool(store.create_job, request.content, styles, options, config.max_queue, room)
    worker.wake()
    return public_job(store, job)


@router.get("/api/jobs/{job_id}", response_model=Job, summary="One job", responses={404: {"model": Error}})
async def get_job(job_id: str, store: Store) -> dict[str, Any]:
    return public_job(store, store.job(job_id))


@router.post("/api/jobs/{job_id}/cancel", response_model=Job, summary="Cancel a queued or running job",
             responses={404: {"model": Error}, 409: {"model": Error}})
async def cancel_job(job_id: str, store: Store) -> dict[str, Any]:
    return public_job(store, store.cancel(job_id))


@router.post("/api/jobs/{job_id}/restart", response_model=Job,
             summary="Queue a failed, cancelled or interrupted job again",
             responses={404: {"model": Error}, 409: {"model": Error}, 429: {"model": Error}})
async def restart_job(job_id: str, config: Settings, store: Store, worker: Runner) -> dict[str, Any]:
    job = await run_in_threadpool(store.restart, job_id, config.max_queue)
    worker.wake()
    return public_job(store, job)


@router.delete("/api/jobs/{job_id}", status_code=204, summary="Delete a job and its pictures (a running job "
               "is stopped first)", responses={404: {"model": Error}})
async def delete_job(job_id: str, store: Store) -> Response:
    await run_in_threadpool(store.delete, job_id)
    return Response(status_code=204)


async def _picture(store: JobStore, job_id: str, kind: JobFile, missing: str, media_type: str,
                   headers: dict[str, str] = PRIVATE) -> Response:
    """A job's picture, read whole in one go: the worker renames new previews over old ones, and a reply
    streamed from the path could mix one's length with another's bytes."""
    store.job(job_id)
    try:
        data = await run_in_threadpool(store.job_file(job_id, kind).read_bytes)
    except OSError:
        raise HTTPException(404, missing) from None
    return Response(data, media_type=media_type, headers=headers)


@picture_route(router, "/api/jobs/{job_id}/preview", summary="The picture so far")
async def preview(job_id: str, store: Store) -> Response:
    return await _picture(store, job_id, "preview", "no preview yet", "image/jpeg")


@picture_route(router, "/api/jobs/{job_id}/result", summary="The result (PNG with its settings); ?download=true to "
               "save it")
async def result(job_id: str, store: Store, download: bool = False) -> Response:
    headers = dict(PRIVATE)
    video = store.job_file(job_id, "video")
    if download:
        suffix = "mp4" if video.exists() else "png"
        headers["Content-Disposition"] = f'attachment; filename="stylecraft-{job_id}.{suffix}"'
    if video.exists():  # written once, when the job ends: served as a file, so that players can seek
        store.job(job_id)
        return FileResponse(video, media_type="video/mp4", headers=headers)
    return await _picture(store, job_id, "result", "this job has no result yet", "image/png", headers)


@picture_route(router, "/api/jobs/{job_id}/thumbnail", summary="The result's thumbnail")
async def thumbnail(job_id: str, store: Store) -> Response:
    return await _picture(store, job_id, "thumb", "this job has no result yet", "image/jpeg")
