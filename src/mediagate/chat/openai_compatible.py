"""Chat through any OpenAI-compatible server: OpenAI, vLLM, Ollama, llama.cpp's server.

Speaks ``POST {base_url}/chat/completions``, whole or streamed as server-sent events. httpx's
transport is the seam for tests and for the operator's network policy. The base URL and key are
operator configuration, not user input, so the URL does not go through the SSRF guard. The key
never appears in messages, reprs or logs: provider text is redacted before it leaves here.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from mediagate.chat.engines import (
    ChatMessage,
    ChatRateLimited,
    ChatRejected,
    ChatUnavailable,
)
from mediagate.net.borrowed import BorrowedTransport

# Client errors that say "try again", not "your request is wrong".
_TRANSIENT_STATUS = frozenset({408, 409, 425})


class OpenAIChat:
    """A chat model behind an OpenAI-compatible API.

    >>> chat = OpenAIChat(base_url="http://127.0.0.1:11434/v1", api_key=None, model="llama3")

    ``api_key=None`` sends no ``Authorization`` header (Ollama, llama.cpp). Each call opens its
    own short-lived client, so there is nothing to close. Failures: 4xx -> :class:`ChatRejected`;
    429 -> :class:`ChatRateLimited` (a :class:`ChatUnavailable` with ``retry_after``); 408, 409,
    425, 5xx, network errors, timeouts and malformed or cut-off responses ->
    :class:`ChatUnavailable`. ``timeout`` bounds connecting and each read, so a stream that stalls
    for that long fails too.
    """

    name = "openai-compatible"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60,
        system_prompt: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.system_prompt = system_prompt
        self._api_key = api_key or None
        self._transport = BorrowedTransport(transport) if transport is not None else None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIChat(base_url={self.base_url!r}, model={self.model!r})"

    async def reply(self, messages: list[ChatMessage]) -> str:
        async with self._client() as client:
            response = await self._send(client, messages, stream=False)
            try:
                await self._read(response)
            finally:
                await response.aclose()
        await self._raise_for_status(response)
        return self._content(response)

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        async with self._client() as client:
            response = await self._send(client, messages, stream=True)
            try:
                await self._raise_for_status(response)
                if response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignored "stream": true answered in one piece.
                    await self._read(response)
                    yield self._content(response)
                    return
                async for delta in self._deltas(response):
                    yield delta
            finally:
                await response.aclose()

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=self.timeout)

    async def _send(
        self, client: httpx.AsyncClient, messages: list[ChatMessage], *, stream: bool
    ) -> httpx.Response:
        wire = [{"role": m.role, "content": m.content} for m in messages]
        if self.system_prompt:
            wire.insert(0, {"role": "system", "content": self.system_prompt})
        body = {"model": self.model, "messages": wire, "stream": stream}
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = client.build_request(
            "POST", f"{self.base_url}/chat/completions", json=body, headers=headers
        )
        try:
            return await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    async def _read(self, response: httpx.Response) -> None:
        try:
            await response.aread()
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    async def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        await self._read(response)
        detail = self._redact(_error_text(response))
        if status == 429:
            retry_after = _retry_after(response.headers.get("retry-after"))
            wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            raise ChatRateLimited(
                f"the chat provider is rate limiting requests (HTTP 429){wait}: {detail}",
                retry_after=retry_after,
            )
        if status >= 500 or status in _TRANSIENT_STATUS:
            raise ChatUnavailable(
                f"the chat provider failed (HTTP {status}): {detail}", status=status
            )
        raise ChatRejected(
            f"the chat provider refused the request (HTTP {status}): {detail}", status=status
        )

    def _content(self, response: httpx.Response) -> str:
        try:
            message = response.json()["choices"][0]["message"]
            content = message.get("content")
        except (ValueError, LookupError, TypeError, AttributeError):
            raise ChatUnavailable(
                "the chat provider sent a response without choices[0].message"
            ) from None
        if content is None:  # e.g. a refusal or a tool call: no text to show
            return ""
        if not isinstance(content, str):
            raise ChatUnavailable("the chat provider sent a message content that is not text")
        return content

    async def _deltas(self, response: httpx.Response) -> AsyncIterator[str]:
        """The text deltas of a chat-completions event stream, up to ``data: [DONE]``.

        Chat-completion streams put one JSON object on each ``data:`` line, so each line is
        handled as it arrives. Comments (``:``), blank lines and other fields are skipped.
        """
        finished = False
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].removeprefix(" ")
                if data.strip() == "[DONE]":
                    return
                delta, done = self._chunk(data)
                finished = finished or done
                if delta:
                    yield delta
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if not finished:
            raise ChatUnavailable("the chat provider's stream ended before the reply was complete")

    def _chunk(self, data: str) -> tuple[str, bool]:
        """``(text, finished)`` of one streamed chunk."""
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise ChatUnavailable(
                "the chat provider sent a stream chunk that is not JSON"
            ) from None
        if not isinstance(chunk, dict):
            raise ChatUnavailable("the chat provider sent a stream chunk that is not an object")
        if chunk.get("error") is not None:
            detail = self._redact(_message_of(chunk["error"]) or "unknown error")
            raise ChatUnavailable(f"the chat provider failed during the stream: {detail}")
        choices = chunk.get("choices") or []  # a usage chunk has none
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return "", False
        choice: dict[str, Any] = choices[0]
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        return (content if isinstance(content, str) else ""), bool(choice.get("finish_reason"))

    def _unreachable(self, exc: httpx.HTTPError) -> ChatUnavailable:
        if isinstance(exc, httpx.TimeoutException):
            return ChatUnavailable(f"the chat provider did not answer within {self.timeout:g}s")
        return ChatUnavailable(
            self._redact(f"could not reach the chat provider: {type(exc).__name__}: {exc}")
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _message_of(error: object) -> str | None:
    message = error.get("message") if isinstance(error, dict) else error
    return message[:500] if isinstance(message, str) and message else None


def _error_text(response: httpx.Response) -> str:
    """The OpenAI-style ``error.message`` when there is one, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = _message_of(body.get("error")) if isinstance(body, dict) else None
    return message or response.text[:500] or response.reason_phrase


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, round(when.timestamp() - time.time()))
