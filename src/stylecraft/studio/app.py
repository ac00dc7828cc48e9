"""The studio's ASGI application: one page, a JSON API (schema at ``/openapi.json``) and an event stream.

Every error is JSON ``{"error": "one line"}`` that the page shows. Uploads are checked by decoding them (a
few at a time, as decoding a large picture takes hundreds of MB), shrunk to the largest size a job can ask
for, kept under ids made here and re-encoded, within a storage quota; pictures are served only from the data
folder and only by job or upload id. Who may send what is :mod:`.security`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from .. import api, images
from ..errors import ConfigError, ImageError, UsageError, one_line
from ..optimize import TransferConfig
from .config import StudioConfig
from .models import list_models, model_path
from .security import RedactToken, error, install_guard
from .store import ID_PATTERN, Conflict, JobStore, NotFound, QueueFull, StorageFull
from .store import Job as JobRecord
from .worker import Worker

log = logging.getLogger("stylecraft.studio")

STATIC = Path(__file__).parent / "static"
DEFAULTS = TransferConfig()


class JobRequest(BaseModel):
    """A new job: uploaded pictures by id and the common options (defaults from TransferConfig)."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(pattern=ID_PATTERN.pattern, description="id of the uploaded content photo")
    styles: list[str] = Field(default_factory=list, description="ids of uploaded style pictures (optimisation)")
    method: Literal["optimise", "model"] = Field("optimise", description="optimisation or a real-time model")
    model: str | None = Field(None, description="a model file's name from /api/models (method 'model')")
    size: int = Field(DEFAULTS.size, ge=16, description="long side of the result in pixels")
    iterations: int = Field(DEFAULTS.iterations, ge=1, description="optimiser steps (optimisation)")
    style_weight: float = Field(DEFAULTS.style_weight, ge=0, le=1e6, allow_inf_nan=False,
                                description="style strength (optimisation)")
    preserve_color: bool = Field(DEFAULTS.preserve_color, description="keep the photo's colours")
    seed: int | None = Field(None, ge=0, lt=2**63, description="random seed (default: a new one)")


class Upload(BaseModel):
    """An accepted picture."""

    id: str
    name: str
    width: int
    height: int
    image: str
    thumbnail: str


class Picture(BaseModel):
    """An input picture of a job."""

    id: str
    name: str
    thumbnail: str


class Job(BaseModel):
    """A job as the page sees it."""

    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
    options: dict
    content: Picture
    styles: list[Picture]
    created: float
    started: float | None
    finished: float | None
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed: float | None
    seed: int | None
    error: str | None
    version: int
    queue_position: int | None
    preview: str | None
    result: str | None
    download: str | None
    thumbnail: str | None


class Error(BaseModel):
    """Every error response."""

    error: str


class Hub:
    """Fans job changes out from any thread to the event streams of connected pages."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self._lock = threading.Lock()

    def publish(self, message: dict) -> None:
        """Send ``message`` to every subscriber (from any thread); a slow page loses its oldest messages."""
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
                loop.call_soon_threadsafe(_put_latest, queue, message)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue]:
        """A queue of messages for the running event loop, for as long as the block lasts."""
        entry = (asyncio.get_running_loop(), asyncio.Queue(maxsize=200))
        with self._lock:
            self._subscribers.append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._subscribers.remove(entry)


def _put_latest(queue: asyncio.Queue, message: dict) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


def display_name(filename: str | None) -> str:
    """A file name fit for display only: no folders, no control characters, at most 80 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:80] or "picture"


def create_app(config: StudioConfig) -> FastAPI:
    """The studio for ``config``: the store opens and the worker starts with the app's lifespan."""
    hub = Hub()
    state: dict = {}
    redact_token = RedactToken()
    decoding = asyncio.Semaphore(config.max_decoding)

    def store() -> JobStore:
        return state["store"]

    def worker() -> Worker:
        return state["worker"]

    def on_change(job_id: str) -> None:
        try:
            hub.publish({"type": "job", "data": public_job(store().job(job_id))})
        except NotFound:
            hub.publish({"type": "deleted", "data": {"id": job_id}})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["store"] = JobStore(config.data, config.db, on_change=on_change, max_bytes=config.max_storage_bytes)
        state["worker"] = Worker(state["store"], config.models_folder, config.device, config.preview_every,
                                 upload_ttl=config.keep_uploads_hours * 3600)
        state["worker"].start()
        access_log = logging.getLogger("uvicorn.access")
        access_log.addFilter(redact_token)
        try:
            yield
        finally:
            access_log.removeFilter(redact_token)
            await run_in_threadpool(state["worker"].stop)
            state["store"].close()

    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN, and the studio fetches nothing from
    # outside; the schema itself is at /openapi.json.
    app = FastAPI(title="stylecraft studio", version=api.version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Stylise photos from the browser: upload pictures, queue jobs, follow their progress "
                  "(server-sent events at /api/events) and download the results. Errors are "
                  '`{"error": "message"}`.', responses={400: {"model": Error}})
    app.state.config = config
    app.state.hub = hub
    app.state.internals = state

    def picture(upload_id: str) -> dict:
        try:
            name = store().upload(upload_id)["name"]
        except NotFound:
            name = "(deleted)"
        return {"id": upload_id, "name": name, "thumbnail": f"/api/uploads/{upload_id}/thumbnail"}

    def public_job(job: JobRecord) -> dict:
        base = f"/api/jobs/{job.id}"
        return {
            **{name: getattr(job, name) for name in ("id", "state", "options", "created", "started", "finished",
                                                       "iteration", "iterations", "losses", "elapsed", "seed",
                                                       "error", "version")},
            "content": picture(job.content), "styles": [picture(s) for s in job.styles],
            "queue_position": store().queue_position(job),
            "preview": f"{base}/preview?v={job.preview}" if job.preview else None,
            "result": f"{base}/result" if job.result else None,
            "download": f"{base}/result?download=true" if job.result else None,
            "thumbnail": f"{base}/thumbnail" if job.result else None,
        }

    install_guard(app, config)

    def file_route(path: str, summary: str) -> Callable[[Callable], Callable]:
        """A picture's GET route, which answers HEAD too (so a client can check a picture without fetching it)."""
        def register(handler: Callable) -> Callable:
            app.head(path, include_in_schema=False)(handler)
            return app.get(path, response_class=FileResponse, summary=summary)(handler)
        return register

    @app.exception_handler(HTTPException)
    async def httperror(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = list(first.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        where = ".".join(str(part) for part in loc)
        return error(422, f"{where}: {first['msg']}" if where else str(first["msg"]))

    @app.exception_handler(UsageError)
    async def usage(request: Request, exc: UsageError) -> JSONResponse:
        statuses = {QueueFull: 429, NotFound: 404, Conflict: 409, StorageFull: 507}
        return error(statuses.get(type(exc), 400), str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, f"internal error: {one_line(exc)}")

    # the page ----------------------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # the API ----------------------------------------------------------------------------------------------------

    @app.get("/api/info", summary="Version, device, defaults, limits, models and queue length")
    async def info() -> dict:
        return {"version": api.version(), "device": config.device, "token_required": bool(config.token),
                "defaults": {"size": DEFAULTS.size, "iterations": DEFAULTS.iterations,
                             "style_weight": DEFAULTS.style_weight, "preserve_color": DEFAULTS.preserve_color},
                "limits": {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                           "max_queue": config.max_queue, "max_styles": config.max_styles,
                           "max_size": config.max_size, "max_iterations": config.max_iterations},
                "models": list_models(config.models_folder),
                "pending": store().pending(), "running": worker().current}

    @app.get("/api/models", summary="Real-time model files in the models folder")
    async def models() -> list[dict]:
        return list_models(config.models_folder)

    @app.post("/api/uploads", status_code=201, response_model=Upload, summary="Upload a picture",
              responses={413: {"model": Error}, 507: {"model": Error}})
    async def upload(file: UploadFile) -> dict:
        name = display_name(file.filename)
        data = await file.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            return error(413, f"{name}: larger than the limit of {config.max_upload_mb:g} MB")
        async with decoding:
            try:
                picture_ = await run_in_threadpool(images.load_image, data, config.max_pixels, config.max_size)
            except ImageError as exc:
                raise ImageError(f"{name}: {str(exc).removeprefix('the image: ')}") from None
            record = await run_in_threadpool(store().add_upload, picture_, name)
        return {**record, "image": f"/api/uploads/{record['id']}/image",
                "thumbnail": f"/api/uploads/{record['id']}/thumbnail"}

    @file_route("/api/uploads/{upload_id}/image", summary="An uploaded picture")
    async def upload_image(upload_id: str) -> FileResponse:
        store().upload(upload_id)
        return FileResponse(store().upload_path(upload_id), media_type="image/png")

    @file_route("/api/uploads/{upload_id}/thumbnail", summary="Its thumbnail")
    async def upload_thumbnail(upload_id: str) -> FileResponse:
        store().upload(upload_id)
        return FileResponse(store().upload_path(upload_id, thumb=True), media_type="image/jpeg")

    @app.get("/api/jobs", response_model=list[Job], summary="Every job, newest first")
    async def jobs() -> list[dict]:
        return [public_job(job) for job in store().list_jobs()]

    @app.post("/api/jobs", status_code=201, response_model=Job, summary="Queue a job",
              responses={404: {"model": Error}, 429: {"model": Error}})
    async def create_job(request: JobRequest) -> dict:
        options = request.model_dump(exclude={"content", "styles"})
        if request.size > config.max_size:
            raise ConfigError(f"size {request.size} is more than this studio's limit of {config.max_size} px")
        if request.iterations > config.max_iterations:
            raise ConfigError(f"{request.iterations} iterations is more than this studio's limit of "
                              f"{config.max_iterations}")
        styles = request.styles
        if request.method == "model":
            if not request.model:
                raise ConfigError("choose a real-time model")
            model_path(config.models_folder, request.model)
            styles = []
        else:
            options["model"] = None
            if not styles:
                raise ConfigError("add at least one style picture")
            if len(styles) > config.max_styles:
                raise ConfigError(f"{len(styles)} style pictures: at most {config.max_styles}")
            if len(set(styles)) != len(styles):
                raise ConfigError("the same style picture is given twice")
            DEFAULTS.replace(size=request.size, iterations=request.iterations, style_weight=request.style_weight,
                             preserve_color=request.preserve_color, seed=request.seed).validate("transfer", len(styles))
        room = 4 * request.size**2  # at most: the result as a PNG, its preview and thumbnail
        job = await run_in_threadpool(store().create_job, request.content, styles, options, config.max_queue, room)
        worker().wake()
        return public_job(job)

    @app.get("/api/jobs/{job_id}", response_model=Job, summary="One job",
             responses={404: {"model": Error}})
    async def get_job(job_id: str) -> dict:
        return public_job(store().job(job_id))

    @app.post("/api/jobs/{job_id}/cancel", response_model=Job, summary="Cancel a queued or running job",
              responses={404: {"model": Error}, 409: {"model": Error}})
    async def cancel_job(job_id: str) -> dict:
        return public_job(store().cancel(job_id))

    @app.post("/api/jobs/{job_id}/restart", response_model=Job,
              summary="Queue a failed, cancelled or interrupted job again",
              responses={404: {"model": Error}, 409: {"model": Error}, 429: {"model": Error}})
    async def restart_job(job_id: str) -> dict:
        job = await run_in_threadpool(store().restart, job_id, config.max_queue)
        worker().wake()
        return public_job(job)

    @app.delete("/api/jobs/{job_id}", status_code=204, summary="Delete a job and its pictures (a running job "
                "is stopped first)", responses={404: {"model": Error}})
    async def delete_job(job_id: str) -> Response:
        await run_in_threadpool(store().delete, job_id)
        return Response(status_code=204)

    async def job_picture(job_id: str, name: str, missing: str, media_type: str, headers: dict) -> Response:
        """A job's picture, read whole in one go: the worker renames new previews over old ones, and a reply
        streamed from the path could mix one's length with another's bytes."""
        store().job(job_id)
        try:
            data = await run_in_threadpool((store().job_dir(job_id) / name).read_bytes)
        except OSError:
            raise HTTPException(404, missing) from None
        return Response(data, media_type=media_type, headers=headers)

    @file_route("/api/jobs/{job_id}/preview", summary="The picture so far")
    async def preview(job_id: str) -> Response:
        return await job_picture(job_id, "preview.jpg", "no preview yet", "image/jpeg", {"Cache-Control": "no-store"})

    @file_route("/api/jobs/{job_id}/result", summary="The result (PNG with its settings); ?download=true to save it")
    async def result(job_id: str, download: bool = False) -> Response:
        headers = {"Cache-Control": "no-cache"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="stylecraft-{job_id}.png"'
        return await job_picture(job_id, "result.png", "this job has no result yet", "image/png", headers)

    @file_route("/api/jobs/{job_id}/thumbnail", summary="The result's thumbnail")
    async def thumbnail(job_id: str) -> Response:
        return await job_picture(job_id, "thumb.jpg", "this job has no result yet", "image/jpeg",
                                 {"Cache-Control": "no-cache"})

    @app.get("/api/events", summary="Server-sent events: `job` (a job changed) and `deleted`",
             response_class=StreamingResponse)
    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            with hub.subscribe() as queue:
                yield "retry: 2000\n\n"
                while not await request.is_disconnected():
                    try:
                        message = await asyncio.wait_for(queue.get(), timeout=10)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"event: {message['type']}\ndata: {json.dumps(message['data'])}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return app


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another `port` "
                             "or `host`") from None


def check_ready(config: StudioConfig, port: int) -> None:
    """Fail with one line, before anything is printed or started, if the studio could not run: the port is
    taken, the data folder cannot be written, or another studio uses the folder or the database."""
    _check_port(config.host, port)
    try:
        config.data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the data folder {config.data} ({exc.strerror or exc})") from None
    images.check_writable(config.data / "studio.db")
    JobStore(config.data, config.db).close()


def serve(config: StudioConfig, port: int = 8000, log_level: str = "info") -> None:
    """Run the studio with uvicorn until interrupted (call :func:`check_ready` first for one-line refusals)."""
    import uvicorn

    uvicorn.run(create_app(config), host=config.host.strip("[]"), port=port, log_level=log_level,
                timeout_graceful_shutdown=2)
