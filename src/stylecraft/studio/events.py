"""Job changes fanned out to the pages that follow them: the hub, and the server-sent event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

router = APIRouter()


class Hub:
    """Fans job changes out from any thread to the event streams of connected pages."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def publish(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every subscriber (from any thread); a slow page loses its oldest messages."""
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
                loop.call_soon_threadsafe(_put_latest, queue, message)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of messages for the running event loop, for as long as the block lasts."""
        entry: tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]] = (
            asyncio.get_running_loop(), asyncio.Queue(maxsize=200))
        with self._lock:
            self._subscribers.append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._subscribers.remove(entry)


def _put_latest(queue: asyncio.Queue[dict[str, Any]], message: dict[str, Any]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


@router.get("/api/events", summary="Server-sent events: `job` (a job changed) and `deleted`",
            response_class=StreamingResponse)
async def events(request: Request) -> StreamingResponse:
    hub: Hub = request.app.state.hub

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
