"""Sharing a caller's httpx transport with short-lived clients."""

from __future__ import annotations

import httpx


class BorrowedTransport(httpx.AsyncBaseTransport):
    """A caller's transport, shared by our short-lived clients and left open for its owner
    (closing a client would otherwise close the transport with it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None
