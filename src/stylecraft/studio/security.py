"""Who may use a studio, and what a request may carry: the guard every request passes first.

- Bound to a loopback address, a request must name localhost or that address (against DNS rebinding).
- With a token, every request carries it: ``Authorization: Bearer TOKEN``, or the cookie that a page gets
  when opened as ``/?token=...`` (or ``/live?token=...``). The cookie holds a value derived from the token, not
  the token itself, and the token is cut out of the access log.
- A request that changes something must come from the page's own origin and declare its length, within the
  limit for its kind (an upload, or a JSON body).
- The live camera's WebSocket (:func:`websocket_refusal`) passes the same host check, and its Origin must be
  the studio's own before it is accepted; its token is the cookie or the socket's first message.
- Every response says what the browser may do with it: scripts, styles and pictures from the studio only, never
  framed by another site, never sniffed as another content type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import unquote_plus, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..errors import shorten
from .config import StudioConfig

COOKIE = "stylecraft_token"
#: Largest body of a request other than an upload (a job's settings are a few hundred bytes).
MAX_JSON_BYTES = 64 * 1024
#: Room for the multipart envelope around an upload's bytes.
MULTIPART_OVERHEAD = 16 * 1024
UPLOAD_PATH = "/api/uploads"
#: The pages a browser opens, each of which takes the token in its link once and sets the cookie.
PAGES = ("/", "/live")
LOCKED_STYLE = "body { font-family: system-ui, sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1rem; " \
    "line-height: 1.5 }"
LOCKED_PAGE = f"""<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>stylecraft studio</title><style>{LOCKED_STYLE}</style><h1>stylecraft studio</h1><p>This studio is protected
by a token. Open it with the link that <code>stylecraft serve</code> printed when it started (it ends in
<code>?token=…</code>).</p>"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(LOCKED_STYLE.encode()).digest()).decode()
#: Sent with every response. The page's own files only (the favicon is a data: address, a picked picture is
#: shown from a blob: one before it is uploaded), no framing, no content sniffing.
SECURITY_HEADERS = {
    "Content-Security-Policy": f"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               f"style-src 'self' 'sha256-{_STYLE_HASH}'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
#: A query parameter: its separator and key, and its value.
_QUERY_PARAMETER = re.compile(r"([?&][^=&\s\"]*=)([^&\s\"]*)")


#: Settings of the server that a page's error may name, by the ``stylecraft serve`` option that sets them.
SERVER_OPTIONS = {"max_storage_mb": "--max-storage-mb", "keep_uploads_hours": "--keep-uploads-hours"}


def in_page_words(message: str) -> str:
    """``message`` with each `parameter` named as the page's reader knows it: a form field in plain words,
    a server setting by its ``stylecraft serve`` option."""
    return re.sub(r"`([a-z_]+)`", lambda m: SERVER_OPTIONS.get(m.group(1), m.group(1).replace("_", " ")), message)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The studio's one error shape, ``{"error": "one line"}``, in the page's words and never echoing more
    than 300 characters."""
    return JSONResponse({"error": shorten(in_page_words(message), 300)}, status_code=status, headers=headers)


def cookie_value(token: str) -> str:
    """What the login cookie carries: derived from the token, so that a leaked cookie does not give the token."""
    return hmac.new(token.encode(), b"stylecraft studio cookie", hashlib.sha256).hexdigest()


def redact(text: str) -> str:
    """``text`` with the value of any ``token`` query parameter replaced by ``***``, however its key is spelled
    (``tok%65n=`` is ``token=`` to the server)."""
    def hide(match: re.Match[str]) -> str:
        key = unquote_plus(match.group(1)[1:-1])
        return match.group(1) + "***" if key == "token" else match.group(0)

    return _QUERY_PARAMETER.sub(hide, text)


class RedactToken(logging.Filter):
    """Cuts the token out of uvicorn's access log lines (``GET /?token=... HTTP/1.1``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def _host_name(host_header: str) -> str:
    try:
        return urlsplit(f"//{host_header}").hostname or ""
    except ValueError:
        return ""


def same_secret(supplied: str, expected: str) -> bool:
    """Whether ``supplied`` is ``expected`` (compared in constant time)."""
    return hmac.compare_digest(supplied.encode("utf-8", "replace"), expected.encode())


def install_guard(app: FastAPI, config: StudioConfig) -> None:
    """Put the guard in front of every route of ``app``."""

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = _refusal(request, config) or await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def _wrong_host(host_header: str, config: StudioConfig) -> str | None:
    """Why a request naming ``host_header`` is refused (a loopback studio answers only to its own names), or
    None."""
    host = _host_name(host_header)
    if config.loopback and host not in config.host_names:
        return f"this studio answers only on localhost, not {shorten(host) or 'an empty host'!r}"
    return None


def _refusal(request: Request, config: StudioConfig) -> Response | None:
    """The answer to a request the studio refuses (its host, token or body); None for one it serves."""
    wrong_host = _wrong_host(request.headers.get("host", ""), config)
    if wrong_host:
        return error(400, wrong_host)
    if config.token:
        refused = _check_token(request, config.token)
        if refused is not None:
            return refused
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return _check_body(request, config)
    return None


def _check_token(request: Request, token: str) -> Response | None:
    query_token = request.query_params.get("token")
    if request.url.path in PAGES and query_token is not None:
        if not same_secret(query_token, token):
            return error(401, "wrong token")
        response = RedirectResponse(request.url.path, status_code=303)
        response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="strict")
        return response
    if granted(request.headers.get("authorization", ""), request.cookies.get(COOKIE, ""), token):
        return None
    if request.url.path in PAGES:
        return HTMLResponse(LOCKED_PAGE, status_code=401)
    return error(401, "this studio needs its token: open the link printed by `stylecraft serve` (…/?token=…) or "
                 "send `Authorization: Bearer TOKEN`", headers={"WWW-Authenticate": "Bearer"})


def granted(authorization: str, cookie: str, token: str) -> bool:
    """Whether a request's ``Authorization`` header (``Bearer TOKEN``) or, without one, its login ``cookie``
    carries ``token``."""
    if authorization.lower().startswith("bearer "):
        return same_secret(authorization[7:].strip(), token)
    return same_secret(cookie, cookie_value(token))


def websocket_refusal(headers: Mapping[str, str], config: StudioConfig) -> str | None:
    """Why a WebSocket handshake with ``headers`` is refused before it is accepted: a host a loopback studio
    does not answer to, or an Origin other than the studio's own (another web site's script: browsers send
    cookies with its handshakes too, so the Origin is what tells). None for one that may be accepted."""
    wrong_host = _wrong_host(headers.get("host", ""), config)
    if wrong_host:
        return wrong_host
    origin = headers.get("origin", "")
    if not origin or urlsplit(origin).netloc != headers.get("host"):
        return "the live view answers only to the studio's own page"
    return None


def _check_body(request: Request, config: StudioConfig) -> Response | None:
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return error(403, "requests from other web sites are refused")
    length = request.headers.get("content-length")
    if length is None and "transfer-encoding" in request.headers:
        return error(411, "send the request with a Content-Length")
    if request.url.path == UPLOAD_PATH:
        largest = max(config.max_upload_mb, config.max_video_mb)  # which of the two applies is known once decoded
        limit, what = int(largest * 2**20) + MULTIPART_OVERHEAD, f"the upload limit of {largest:g} MB"
    else:
        limit, what = MAX_JSON_BYTES, f"the limit of {MAX_JSON_BYTES // 1024} KB for a request"
    if length is not None and (not length.isdigit() or int(length) > limit):
        return error(413, f"the request is larger than {what}")
    return None
