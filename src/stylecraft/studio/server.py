"""The studio's HTTP server: uvicorn with bounds on slow and idle clients.

uvicorn alone has no deadline for a request's headers: a client that sends half a header (or a byte now and
then, "slowloris") holds its connection, and its file descriptor, for ever, and ``limit_concurrency`` answers
503 only to requests whose headers have arrived. :class:`GuardedH11` is uvicorn's h11 protocol with both
bounds added: each request's headers must arrive within ``header_timeout`` seconds of the connection (or of the
last response on a kept-alive one), and a connection beyond ``max_connections`` is closed as soon as it is made.
uvicorn's own settings do the rest: ``timeout_keep_alive`` closes a connection idle after a response,
``limit_concurrency`` answers 503 to requests beyond the bound, and h11's ``max_incomplete_event_size`` bounds
a header's bytes, ``ws_max_size`` a WebSocket message's. With a certificate it serves HTTPS.
"""

from __future__ import annotations

import asyncio
import logging

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import StudioConfig

log = logging.getLogger("stylecraft.studio")
#: The most bytes a request's line and headers may take (h11's default, stated here so that it is a choice).
MAX_HEADER_BYTES = 16 * 1024
#: Room beyond the live view's frame limit for a WebSocket message's other bytes.
WS_OVERHEAD = 64 * 1024


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers and a bound on open connections (set
    by :func:`server` for each studio)."""

    header_timeout = StudioConfig.header_timeout
    max_connections = StudioConfig.max_connections
    #: Whether connections are being closed for their number (said once in the log, not once a connection).
    cutting = False
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = type(self)
        if len(self.connections) > self.max_connections:
            if not guard.cutting:
                log.warning("more than %d connections open: new ones are closed at once until some end",
                            self.max_connections)
            guard.cutting = True
            transport.close()
            return
        guard.cutting = False
        self._await_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        """Give the next request ``header_timeout`` seconds for its line and headers."""
        self._cancel_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        """Close the connection if its request's headers have still not all arrived (h11 waits for them in its
        IDLE state; a request being answered or sending its body is left alone)."""
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("a client sent no complete request headers in %g s: connection closed", self.header_timeout)
            self.transport.close()


def server(app: FastAPI, config: StudioConfig, log_level: str = "info") -> uvicorn.Server:
    """The uvicorn server of ``app`` with ``config``'s bounds on slow clients, idle connections and their
    number (run it with ``server.run(sockets=[...])``)."""
    protocol = type("StudioH11", (GuardedH11,), {"header_timeout": config.header_timeout,
                                                "max_connections": config.max_connections})
    return uvicorn.Server(uvicorn.Config(
        app, log_level=log_level, timeout_graceful_shutdown=2, http=protocol,
        timeout_keep_alive=config.keep_alive, limit_concurrency=config.max_connections,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        # the live view's frames: the app refuses a large one with its reason, the protocol anything far larger
        ws_max_size=2 * config.max_live_frame_kb * 1024 + WS_OVERHEAD,
        ssl_certfile=config.certfile, ssl_keyfile=config.keyfile))

