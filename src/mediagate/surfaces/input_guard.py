"""What every request's input must be before a route sees it, answered in the surface's
envelope: a body within its route's size cap (413), and no NUL character in the path, the
query or a JSON body (400).

Without a cap, a client (before any authentication: FastAPI reads a body parameter before it
solves dependencies) could make the server hold a body of any size in memory. Most routes
take a small JSON object; the few that carry images get what their own limits add up to, and
the routes that stream uploads keep enforcing their own, finer limits first. FastAPI's
``max_body_size`` counts bytes too, but answers a declared ``Content-Length`` over the limit
with a plain-text body, whatever the surface's envelope.

PostgreSQL cannot store U+0000 in text at all: a NUL that reached a statement failed it, a
500 for the request or a crashed job. SQLite would store it. So it is refused at the edge,
the same on both: in a JSON body the only spelling of NUL is the escape ``\\u0000`` (an odd
run of backslashes before ``u0000``; raw control characters are invalid JSON), which the
chunks are searched for as they pass, without holding them. Multipart text fields are
checked where they are parsed (``assets/uploads.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagate.errors import NUL_REFUSED
from mediagate.surfaces.errors import ErrorRenderers

# A JSON body of fields and short texts: prompts are at most 10,000 characters.
DEFAULT_MAX_BODY = 1024 * 1024
# What a body holds besides its images (fields, JSON or multipart framing).
BODY_SLACK = 1024 * 1024
_ESCAPE = b"u0000"
_BACKSLASH = 0x5C


class InputGuard:
    """Refuses a body over its route's limit at once when ``Content-Length`` declares one,
    else as the bytes arrive (a chunked body); refuses NUL in the path and the query at once,
    and in a JSON body at the chunk that holds it.

    ``limits`` holds ``(method, path, bytes)``, where a path that ends in ``/`` covers every
    path under it; every other request gets ``DEFAULT_MAX_BODY``."""

    def __init__(
        self, app: ASGIApp, renderers: ErrorRenderers, limits: Sequence[tuple[str, str, int]]
    ) -> None:
        self.app = app
        self.renderers = renderers
        self.limits = limits

    def limit_for(self, method: str, path: str) -> int:
        for limit_method, route, limit in self.limits:
            if method == limit_method and (
                path == route or (route.endswith("/") and path.startswith(route))
            ):
                return limit
        return DEFAULT_MAX_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]  # percent-decoded already
        if "\x00" in path or b"%00" in scope["query_string"]:
            field = "path" if "\x00" in path else "query"
            render = self.renderers.for_path(path)
            message = f"{field}: {NUL_REFUSED}"
            await render(400, "invalid_request", message, {"field": field}, None)(
                scope, receive, send
            )
            return
        limit = self.limit_for(scope["method"], path)
        too_large = f"the request body may be at most {limit} bytes here"
        declared, json_body = _body_headers(scope)
        if declared is not None and declared > limit:
            render = self.renderers.for_path(path)
            await render(413, "payload_too_large", too_large, {}, None)(scope, receive, send)
            return
        received = 0
        nul = _NulSearch() if json_body else None

        async def guarded_receive() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                chunk = incoming.get("body", b"")
                received += len(chunk)
                # An HTTPException passes through FastAPI's body parsing unchanged, and the
                # app's handler renders it in the surface's envelope.
                if received > limit:
                    raise HTTPException(413, detail=too_large)
                if nul is not None and nul.found_in(chunk):
                    raise HTTPException(400, detail=f"body: {NUL_REFUSED}")
            return incoming

        await self.app(scope, guarded_receive, send)


class _NulSearch:
    """Finds ``\\u0000`` escapes in JSON arriving in chunks. Only the bytes that an escape
    can straddle are kept from one chunk to the next: the last five, and the length of the
    run of backslashes just before them."""

    def __init__(self) -> None:
        self._tail = b""
        self._run_before = 0  # backslashes that end the bytes before ``_tail``

    def found_in(self, chunk: bytes) -> bool:
        window = self._tail + chunk
        at = window.find(_ESCAPE)
        while at != -1:
            if _backslashes_before(window, at, self._run_before) % 2 == 1:
                return True
            at = window.find(_ESCAPE, at + 1)
        cut = max(0, len(window) - len(_ESCAPE))
        self._run_before = _backslashes_before(window, cut, self._run_before)
        self._tail = window[cut:]
        return False


def _backslashes_before(window: bytes, at: int, run_before: int) -> int:
    """How many backslashes end ``window[:at]``, counting on into what came before it."""
    start = at
    while start > 0 and window[start - 1] == _BACKSLASH:
        start -= 1
    return at - start + (run_before if start == 0 else 0)


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The declared length, and whether the body may be read as JSON (FastAPI reads a body
    without a ``Content-Type`` as JSON too)."""
    length, json_body = None, True
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"content-type":
            media = value.partition(b";")[0].strip().lower()
            json_body = media == b"application/json" or media.endswith(b"+json")
    return length, json_body
