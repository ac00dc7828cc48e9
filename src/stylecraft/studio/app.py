"""The studio's ASGI application: one page, a JSON API (schema at ``/openapi.json``) and an event stream.

Every error is JSON ``{"error": "one line"}`` that the page shows. Uploads are checked by decoding them, kept
under ids made here and re-encoded; pictures are served only from the data folder and only by job or upload
id. With a token, every request needs it (``Authorization: Bearer``, or the cookie the page gets when opened
as ``/?token=...``). Bound to a loopback address, requests must name a loopback host (against DNS rebinding),
and requests that change something must come from the page's own origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from .. import api, images
from ..errors import ConfigError, ImageError, UsageError
from ..optimize import TransferConfig
from .config import StudioConfig
from .jobs import ID_PATTERN, Conflict, JobStore, NotFound, QueueFull, Worker, list_models, model_path

log = logging.getLogger("stylecraft.studio")

STATIC = Path(__file__).parent / "static"
DEFAULTS = TransferConfig()
COOKIE = "stylecraft_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: Largest body of a request other than an upload (a job's settings are a few hundred bytes).
MAX_JSON_BYTES = 64 * 1024
#: Room for the multipart envelope around an upload's bytes.
MULTIPART_OVERHEAD = 16 * 1024
LOCKED_PAGE = """<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>stylecraft studio</title><body style="font-family: system-ui, sans-serif; max-width: 34rem; margin: 4rem auto;
padding: 0 1rem; line-height: 1.5"><h1>stylecraft studio</h1><p>This studio is protected by a token. Open it with
the link that <code>stylecraft serve</code> printed when it started (it ends in <code>?token=…</code>).</p>"""


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


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _host_name(host_header: str) -> str:
    return urlsplit(f"//{host_header}").hostname or ""


def create_app(config: StudioConfig) -> FastAPI:
    """The studio for ``config``: the store opens and the worker starts with the app's lifespan."""
    hub = Hub()
    state: dict = {}

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
        state["store"] = JobStore(config.data, config.db, on_change=on_change)
        state["worker"] = Worker(state["store"], config.models_folder, config.device, config.preview_every)
        state["worker"].start()
        try:
            yield
        finally:
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

    def public_job(job: dict) -> dict:
        base = f"/api/jobs/{job['id']}"
        return {
            **{k: job[k] for k in ("id", "state", "options", "created", "started", "finished", "iteration",
                                   "iterations", "losses", "elapsed", "seed", "error", "version")},
            "content": picture(job["content"]), "styles": [picture(s) for s in job["styles"]],
            "queue_position": store().queue_position(job),
            "preview": f"{base}/preview?v={job['preview']}" if job["preview"] else None,
            "result": f"{base}/result" if job["result"] else None,
            "download": f"{base}/result?download=true" if job["result"] else None,
            "thumbnail": f"{base}/thumbnail" if job["result"] else None,
        }

    # guards ----------------------------------------------------------------------------------------------------

    @app.middleware("http")
    async def guard(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette's middleware signature
        host = _host_name(request.headers.get("host", ""))
        if config.loopback and host not in LOOPBACK_NAMES + config.extra_hosts:
            return _error(400, f"this studio answers only on localhost, not {host or 'an empty host'!r}")
        if config.token:
            query_token = request.query_params.get("token")
            if request.url.path == "/" and query_token is not None:
                if not hmac.compare_digest(query_token.encode(), config.token.encode()):
                    return _error(401, "wrong token")
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(COOKIE, config.token, httponly=True, samesite="strict")
                return response
            supplied = request.cookies.get(COOKIE, "")
            authorization = request.headers.get("authorization", "")
            if authorization.lower().startswith("bearer "):
                supplied = authorization[7:].strip()
            if not hmac.compare_digest(supplied.encode(), config.token.encode()):
                if request.url.path == "/":
                    return HTMLResponse(LOCKED_PAGE, status_code=401)
                return _error(401, "this studio needs its token: open the link printed by `stylecraft serve` "
                              "(…/?token=…) or send `Authorization: Bearer TOKEN`",
                              headers={"WWW-Authenticate": "Bearer"})
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin and urlsplit(origin).netloc != request.headers.get("host"):
                return _error(403, "requests from other web sites are refused")
            length = request.headers.get("content-length")
            if length is None and "transfer-encoding" in request.headers:
                return _error(411, "send the request with a Content-Length")
            limit = (config.max_upload_bytes + MULTIPART_OVERHEAD if request.url.path == "/api/uploads"
                     else MAX_JSON_BYTES)
            if length is not None and (not length.isdigit() or int(length) > limit):
                return _error(413, f"the upload is larger than the limit of {config.max_upload_mb:g} MB")
        return await call_next(request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = list(first.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        where = ".".join(str(part) for part in loc)
        return _error(422, f"{where}: {first['msg']}" if where else str(first["msg"]))

    @app.exception_handler(UsageError)
    async def usage(request: Request, exc: UsageError) -> JSONResponse:
        status = 429 if isinstance(exc, QueueFull) else 404 if isinstance(exc, NotFound) else \
            409 if isinstance(exc, Conflict) else 400
        return _error(status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

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
                "models": list_models(config.models_folder), "models_folder": str(config.models_folder),
                "pending": store().pending(), "running": worker().current}

    @app.get("/api/models", summary="Real-time model files in the models folder")
    async def models() -> list[dict]:
        return list_models(config.models_folder)

    @app.post("/api/uploads", status_code=201, response_model=Upload, summary="Upload a picture",
              responses={413: {"model": Error}})
    async def upload(file: UploadFile) -> dict:
        name = display_name(file.filename)
        data = await file.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            return _error(413, f"{name}: larger than the limit of {config.max_upload_mb:g} MB")
        try:
            picture_ = await run_in_threadpool(images.load_image, data, config.max_pixels)
        except ImageError as exc:
            raise ImageError(f"{name}: {str(exc).removeprefix('the image: ')}") from None
        record = await run_in_threadpool(store().add_upload, picture_, name)
        return {**record, "image": f"/api/uploads/{record['id']}/image",
                "thumbnail": f"/api/uploads/{record['id']}/thumbnail"}

    @app.get("/api/uploads/{upload_id}/image", response_class=FileResponse, summary="An uploaded picture")
    async def upload_image(upload_id: str) -> FileResponse:
        store().upload(upload_id)
        return FileResponse(store().upload_path(upload_id), media_type="image/png")

    @app.get("/api/uploads/{upload_id}/thumbnail", response_class=FileResponse, summary="Its thumbnail")
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
        job = await run_in_threadpool(store().create_job, request.content, styles, options, config.max_queue)
        worker().wake()
        return public_job(job)

    @app.get("/api/jobs/{job_id}", response_model=Job, summary="One job",
             responses={404: {"model": Error}})
    async def get_job(job_id: str) -> dict:
        return public_job(store().job(job_id))

    @app.post("/api/jobs/{job_id}/cancel", response_model=Job, summary="Cancel a queued or running job",
              responses={404: {"model": Error}, 409: {"model": Error}})
    async def cancel_job(job_id: str) -> dict:
        if store().cancel(job_id) == "running":
            worker().cancel(job_id)
        return public_job(store().job(job_id))

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
        if await run_in_threadpool(store().delete, job_id) == "running":
            worker().cancel(job_id)
        return Response(status_code=204)

    def job_file(job_id: str, name: str, missing: str) -> Path:
        store().job(job_id)
        path = store().job_dir(job_id) / name
        if not path.is_file():
            raise HTTPException(404, missing)
        return path

    @app.get("/api/jobs/{job_id}/preview", response_class=FileResponse, summary="The picture so far")
    async def preview(job_id: str) -> FileResponse:
        return FileResponse(job_file(job_id, "preview.jpg", "no preview yet"), media_type="image/jpeg",
                            headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/result", response_class=FileResponse,
             summary="The result (PNG with its settings); ?download=true to save it")
    async def result(job_id: str, download: bool = False) -> FileResponse:
        path = job_file(job_id, "result.png", "this job has no result yet")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"},
                            filename=f"stylecraft-{job_id}.png" if download else None)

    @app.get("/api/jobs/{job_id}/thumbnail", response_class=FileResponse, summary="The result's thumbnail")
    async def thumbnail(job_id: str) -> FileResponse:
        return FileResponse(job_file(job_id, "thumb.jpg", "this job has no result yet"), media_type="image/jpeg",
                            headers={"Cache-Control": "no-cache"})

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


def check_port(host: str, port: int) -> None:
    """Fail with one line, before starting, if ``host:port`` cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port "
                             "or --host") from None


def serve(config: StudioConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the studio with uvicorn until interrupted."""
    import uvicorn

    JobStore(config.data, config.db).close()  # one line now, not a traceback later, if the folder is taken
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=2)
