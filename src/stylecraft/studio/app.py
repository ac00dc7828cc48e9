"""The studio's ASGI application: one page, a JSON API (schema at ``/openapi.json``) and an event stream.

``create_app`` puts the pieces together: the guard every request passes (:mod:`.security`), the routers
(:mod:`.routes`: info, uploads, styles, jobs; :mod:`.events`; the live camera's socket, :mod:`.live`), the
error handlers, and the store, worker, previews and live painters that live as long as the app. Every error is
JSON ``{"error": "one line"}`` that the page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import api, checks, files
from ..errors import UsageError, one_line
from . import events, leftovers, live
from .config import StudioConfig
from .events import Hub
from .live import Painters
from .previews import Previews
from .routes import info, jobs, styles, uploads
from .schemas import Error
from .security import RedactToken, error, install_guard
from .store import Conflict, JobStore, NotFound, QueueFull, StorageFull, Unrunnable, private_folder
from .views import public_job
from .worker import Cluster, Worker

log = logging.getLogger("stylecraft.studio")

STATIC = Path(__file__).parent / "static"
#: Seconds a client refused for a full queue is asked to wait before trying again.
RETRY_AFTER = 30


def create_app(config: StudioConfig) -> FastAPI:
    """The studio for ``config``: the store opens and the worker starts with the app's lifespan; the store,
    the worker, the settings, the event hub and the bound on decoding live on ``app.state``."""
    hub = Hub()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def on_change(job_id: str) -> None:
            try:
                hub.publish({"type": "job", "data": public_job(store, store.job(job_id))})
            except NotFound:
                hub.publish({"type": "deleted", "data": {"id": job_id}})

        store = JobStore(config.data, config.db, on_change=on_change, max_bytes=config.max_storage_bytes)
        worker = Worker(store, config.models_folder, config.device, config.preview_every,
                        upload_ttl=config.keep_uploads_hours * 3600, cluster=_cluster(config))
        app.state.store, app.state.worker = store, worker
        app.state.previews = previews = Previews(store, config.device)
        app.state.decoding = asyncio.Semaphore(config.max_decoding)
        app.state.live = Painters(config, store)
        worker.start()
        redact_token = RedactToken()
        access_log = logging.getLogger("uvicorn.access")
        access_log.addFilter(redact_token)
        try:
            yield
        finally:
            access_log.removeFilter(redact_token)
            previews.close()
            await run_in_threadpool(worker.stop)
            leftovers.forget(config.data)  # the cluster, if it started one, was shut down
            store.close()

    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN, and the studio fetches nothing from
    # outside; the schema itself is at /openapi.json.
    app = FastAPI(title="stylecraft studio", version=api.version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Stylise photos from the browser: upload pictures, queue jobs, follow their progress "
                  "(server-sent events at /api/events) and download the results. Errors are "
                  '`{"error": "message"}`.', responses={400: {"model": Error}})
    app.state.config, app.state.hub = config, hub
    install_guard(app, config)
    _install_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/live", include_in_schema=False)
    async def live_page() -> FileResponse:
        return FileResponse(STATIC / "live.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (info.router, uploads.router, styles.router, jobs.router, events.router, live.router):
        app.include_router(router)
    return app


def _cluster(config: StudioConfig) -> Cluster | None:
    """The Ray cluster that runs the jobs with ``engine`` ray (the ``ray`` extra), else None. The Ray processes a
    killed studio left running on this data folder are ended first, and a cluster started here is recorded
    there for the next studio to do the same (:mod:`.leftovers`)."""
    if config.engine == "local":
        return None
    checks.require("ray", "ray", "`engine` ray")
    from ..api.ray_engine import RayJobs

    ended = leftovers.end_left_over(config.data)
    if ended:
        log.warning("ended %d Ray processes left running by a studio that was killed (ids %s)", len(ended),
                    ", ".join(map(str, ended)))
    cluster = RayJobs(config.address, config.workers, config.gpus_per_worker)
    if cluster.started:
        leftovers.record(config.data)
    return cluster


def _install_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": "one line"}`` with its status."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
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
        statuses = {QueueFull: 429, NotFound: 404, Conflict: 409, StorageFull: 507, Unrunnable: 422}
        headers = {"Retry-After": str(RETRY_AFTER)} if isinstance(exc, QueueFull) else None
        return error(statuses.get(type(exc), 400), str(exc), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, f"internal error: {one_line(exc)}")


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host`` and ``port`` (0: a free port the system picks). Its protocol is named:
    asyncio turns Nagle's algorithm off only on sockets whose ``proto`` says TCP, and with it on, the live
    view's picture waited about 40 ms behind its own metadata message for a delayed acknowledgement."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host.strip("[]"), port))
        listening.listen(socket.SOMAXCONN)
    except OSError as exc:
        listening.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another `port` "
                         "or `host`") from None
    return listening


def check_ready(config: StudioConfig, port: int) -> socket.socket:
    """The socket the studio will serve on, once it is known that the studio can run; else one line, before
    anything is printed or started: the port is taken, the data folder cannot be written, the database is
    damaged, another studio uses the folder or the database, or the certificate cannot be used."""
    if config.certfile and config.keyfile:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(config.certfile, config.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot serve HTTPS with {config.certfile} and {config.keyfile} ({one_line(exc, 200)})"
                             "; give a PEM certificate chain and its private key") from None
    listening = _listen(config.host, port)
    try:
        try:
            private_folder(config.data, keep_existing=True)
        except OSError as exc:
            raise UsageError(f"cannot create the data folder {config.data} ({exc.strerror or exc})") from None
        files.check_writable(config.data / "studio.db")
        JobStore(config.data, config.db).close()
    except BaseException:
        listening.close()
        raise
    return listening


def serve(config: StudioConfig, listening: socket.socket, log_level: str = "info") -> None:
    """Run the studio with uvicorn (its bounds on slow clients: :mod:`.server`) on the ``listening`` socket from
    :func:`check_ready` until interrupted."""
    from .server import server

    server(create_app(config), config, log_level).run(sockets=[listening])
