"""What the routes share: the store, worker, previews and settings of the running studio (FastAPI dependencies,
from ``app.state``), an upload and a job as the page sees them, and picture routes that answer HEAD too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from .config import StudioConfig
from .previews import Previews
from .store import Job, JobFields, JobStore, NotFound
from .worker import Worker


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


def _worker(request: Request) -> Worker:
    worker: Worker = request.app.state.worker
    return worker


def _previews(request: Request) -> Previews:
    previews: Previews = request.app.state.previews
    return previews


def _config(request: Request) -> StudioConfig:
    config: StudioConfig = request.app.state.config
    return config


Store = Annotated[JobStore, Depends(_store)]
Runner = Annotated[Worker, Depends(_worker)]
Settings = Annotated[StudioConfig, Depends(_config)]
Painter = Annotated[Previews, Depends(_previews)]
Handler = TypeVar("Handler", bound=Callable[..., Any])
#: Headers of the user's pictures: private, never kept in a cache.
PRIVATE = {"Cache-Control": "no-store"}


def display_name(filename: str | None) -> str:
    """A file name fit for display only: no folders, no control characters, at most 80 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:80] or "picture"


def picture(store: JobStore, upload_id: str) -> dict[str, str]:
    """An input picture (or video) of a job: its id, display name, kind and thumbnail."""
    try:
        record = store.upload(upload_id)
        name, kind = record["name"], record["kind"]
    except NotFound:
        name, kind = "(deleted)", "picture"
    return {"id": upload_id, "name": name, "kind": kind, "thumbnail": f"/api/uploads/{upload_id}/thumbnail"}


def public_upload(record: dict[str, Any]) -> dict[str, Any]:
    """An upload as the page sees it (the ``Upload`` schema): its record and its pictures' addresses."""
    return {**record, "image": f"/api/uploads/{record['id']}/image",
            "thumbnail": f"/api/uploads/{record['id']}/thumbnail"}


def public_job(store: JobStore, job: Job) -> dict[str, Any]:
    """A job as the page sees it (the ``Job`` schema): its pictures and results as addresses."""
    base = f"/api/jobs/{job.id}"
    return {
        **job.model_dump(include=set(JobFields.model_fields)),
        "content": picture(store, job.content), "styles": [picture(store, s) for s in job.styles],
        "queue_position": store.queue_position(job),
        "preview": f"{base}/preview?v={job.preview}" if job.preview else None,
        "result": f"{base}/result" if job.result else None,
        "download": f"{base}/result?download=true" if job.result else None,
        "thumbnail": f"{base}/thumbnail" if job.result else None,
    }


def picture_route(router: APIRouter, path: str, summary: str) -> Callable[[Handler], Handler]:
    """A picture's GET route, which answers HEAD too (so a client can check a picture without fetching it)."""
    def register(handler: Handler) -> Handler:
        router.head(path, include_in_schema=False)(handler)
        return router.get(path, response_class=FileResponse, summary=summary)(handler)
    return register
