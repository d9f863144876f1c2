"""The OpenAI-compatible chat engine against a real local server speaking the wire format."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from mediagate.chat import (
    ChatMessage,
    ChatRateLimited,
    ChatRejected,
    ChatUnavailable,
    OpenAIChat,
)
from tests.chat.conftest import (
    DONE,
    FakeChatServer,
    JSONReply,
    SSEReply,
    Stall,
    chunk,
    completion,
    error_body,
    usage_chunk,
)

KEY = "sk-test-0123456789abcdef"
CONVERSATION = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Hi"),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "Name a colour."),
]
WIRE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Name a colour."},
]


def _chat(server: FakeChatServer, **overrides: Any) -> OpenAIChat:
    options: dict[str, Any] = {"base_url": server.base_url, "api_key": KEY, "model": "gpt-test"}
    options.update(overrides)
    return OpenAIChat(**options)


async def _collect(chat: OpenAIChat, messages: list[ChatMessage] = CONVERSATION) -> list[str]:
    return [delta async for delta in chat.stream(messages)]


async def test_reply_posts_the_conversation_and_returns_the_content(
    chat_server: FakeChatServer,
) -> None:
    chat_server.replies = [JSONReply(200, completion("Teal."))]

    assert await _chat(chat_server).reply(CONVERSATION) == "Teal."

    [request] = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["json"] == {"model": "gpt-test", "messages": WIRE, "stream": False}


async def test_without_a_key_no_authorization_header_is_sent(
    chat_server: FakeChatServer,
) -> None:
    chat_server.replies = [JSONReply(200, completion("Teal.")), SSEReply([chunk("Teal."), DONE])]
    chat = _chat(chat_server, api_key=None, base_url=chat_server.base_url + "/")

    assert await chat.reply(CONVERSATION) == "Teal."
    assert await _collect(chat) == ["Teal."]

    for request in chat_server.requests:
        assert request["path"] == "/v1/chat/completions"
        assert "Authorization" not in request["headers"]


async def test_the_system_prompt_goes_first(chat_server: FakeChatServer) -> None:
    chat_server.replies = [JSONReply(200, completion("Hi."))]

    await _chat(chat_server, system_prompt="You are Mediagate.").reply(CONVERSATION[1:2])

    assert chat_server.requests[0]["json"]["messages"] == [
        {"role": "system", "content": "You are Mediagate."},
        {"role": "user", "content": "Hi"},
    ]


async def test_a_null_content_is_an_empty_reply(chat_server: FakeChatServer) -> None:
    chat_server.replies = [JSONReply(200, completion(None))]

    assert await _chat(chat_server).reply(CONVERSATION) == ""


async def test_deltas_arrive_while_the_server_is_still_streaming(
    chat_server: FakeChatServer,
) -> None:
    first_seen = threading.Event()
    chat_server.replies = [
        SSEReply(
            [
                ": keep-alive\n\n",
                chunk(role="assistant", content=""),
                chunk("Te"),
                first_seen,  # the server goes on only once the client has the first delta
                "\n",
                chunk("al"),
                chunk(),
                chunk("."),
                chunk(finish="stop"),
                usage_chunk(),
                DONE,
            ]
        )
    ]
    deltas: list[str] = []

    async for delta in _chat(chat_server).stream(CONVERSATION):
        if not deltas:
            assert DONE not in chat_server.sent
            first_seen.set()
        deltas.append(delta)

    assert deltas == ["Te", "al", "."]
    assert chat_server.waits == [True]
    [request] = chat_server.requests
    assert request["json"] == {"model": "gpt-test", "messages": WIRE, "stream": True}
    assert request["headers"]["Accept"] == "text/event-stream"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"


async def test_the_stream_ends_at_done(chat_server: FakeChatServer) -> None:
    chat_server.replies = [SSEReply([chunk("Teal"), DONE, "data: {not json\n\n"])]

    assert await _collect(_chat(chat_server)) == ["Teal"]


async def test_a_finished_stream_without_done_is_complete(chat_server: FakeChatServer) -> None:
    chat_server.replies = [SSEReply([chunk("Teal"), chunk(finish="stop")])]

    assert await _collect(_chat(chat_server)) == ["Teal"]


async def test_a_server_that_ignores_stream_true_still_streams_its_reply(
    chat_server: FakeChatServer,
) -> None:
    chat_server.replies = [JSONReply(200, completion("Teal."))]

    assert await _collect(_chat(chat_server)) == ["Teal."]


async def test_a_stream_cut_mid_way_is_unavailable(chat_server: FakeChatServer) -> None:
    chat_server.replies = [SSEReply([chunk(role="assistant"), chunk("Te")], cut=True)]
    deltas: list[str] = []

    with pytest.raises(ChatUnavailable) as caught:
        async for delta in _chat(chat_server).stream(CONVERSATION):
            deltas.append(delta)

    assert deltas == ["Te"]
    assert "could not reach the chat provider" in caught.value.message


async def test_a_stream_that_ends_unfinished_is_unavailable(chat_server: FakeChatServer) -> None:
    chat_server.replies = [SSEReply([chunk("Te")])]

    with pytest.raises(ChatUnavailable, match="ended before the reply was complete"):
        await _collect(_chat(chat_server))


async def test_an_error_inside_the_stream_is_unavailable(chat_server: FakeChatServer) -> None:
    error = error_body(f"overloaded while serving {KEY}", "server_error", None)
    chat_server.replies = [SSEReply([chunk("Te"), f"data: {json.dumps(error)}\n\n"])]

    with pytest.raises(ChatUnavailable) as caught:
        await _collect(_chat(chat_server))

    assert "overloaded while serving ***" in caught.value.message
    assert KEY not in caught.value.message


async def test_a_stalled_stream_times_out(chat_server: FakeChatServer) -> None:
    never = threading.Event()
    chat_server.replies = [SSEReply([chunk("Te"), never, DONE])]
    deltas: list[str] = []

    with pytest.raises(ChatUnavailable, match="did not answer within 0.3s"):
        async for delta in _chat(chat_server, timeout=0.3).stream(CONVERSATION):
            deltas.append(delta)

    assert deltas == ["Te"]
    never.set()


@pytest.mark.parametrize("streaming", [False, True], ids=["reply", "stream"])
@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Invalid value for 'messages': must not be empty."),
        (401, f"Incorrect API key provided: {KEY}. You can find your API key at ..."),
        (404, "The model `gpt-test` does not exist or you do not have access to it."),
    ],
)
async def test_client_errors_are_rejected_with_the_providers_message(
    chat_server: FakeChatServer, streaming: bool, status: int, message: str
) -> None:
    chat_server.replies = [JSONReply(status, error_body(message, "invalid_request_error", None))]
    chat = _chat(chat_server)

    with pytest.raises(ChatRejected) as caught:
        await (_collect(chat) if streaming else chat.reply(CONVERSATION))

    assert caught.value.status == status
    assert message.replace(KEY, "***") in caught.value.message
    assert KEY not in caught.value.message and KEY not in str(caught.value)


@pytest.mark.parametrize("streaming", [False, True], ids=["reply", "stream"])
@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_are_unavailable(
    chat_server: FakeChatServer, streaming: bool, status: int
) -> None:
    body = error_body(f"The server had an error ({KEY})", "server_error", None)
    chat_server.replies = [JSONReply(status, body)]
    chat = _chat(chat_server)

    with pytest.raises(ChatUnavailable) as caught:
        await (_collect(chat) if streaming else chat.reply(CONVERSATION))

    assert not isinstance(caught.value, ChatRateLimited)
    assert caught.value.status == status
    assert f"HTTP {status}" in caught.value.message
    assert "The server had an error (***)" in caught.value.message


@pytest.mark.parametrize("streaming", [False, True], ids=["reply", "stream"])
@pytest.mark.parametrize(("header", "seconds"), [({"Retry-After": "7"}, 7.0), ({}, None)])
async def test_rate_limits_are_unavailable_with_retry_after(
    chat_server: FakeChatServer,
    streaming: bool,
    header: dict[str, str],
    seconds: float | None,
) -> None:
    body = error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
    chat_server.replies = [JSONReply(429, body, header)]
    chat = _chat(chat_server)

    with pytest.raises(ChatRateLimited) as caught:
        await (_collect(chat) if streaming else chat.reply(CONVERSATION))

    assert isinstance(caught.value, ChatUnavailable)
    assert caught.value.status == 429
    assert caught.value.retry_after == seconds
    assert "Rate limit reached for requests" in caught.value.message


async def test_an_error_body_that_is_not_json_is_quoted(chat_server: FakeChatServer) -> None:
    chat_server.replies = [JSONReply(503, "upstream connect error")]

    with pytest.raises(ChatUnavailable, match="upstream connect error"):
        await _chat(chat_server).reply(CONVERSATION)


@pytest.mark.parametrize("body", [{"choices": []}, {"object": "list"}, ["no"]])
async def test_a_reply_without_a_message_is_unavailable(
    chat_server: FakeChatServer, body: Any
) -> None:
    chat_server.replies = [JSONReply(200, body)]

    with pytest.raises(ChatUnavailable, match=r"without choices\[0\]\.message"):
        await _chat(chat_server).reply(CONVERSATION)


@pytest.mark.parametrize("streaming", [False, True], ids=["reply", "stream"])
async def test_connection_refused_is_unavailable(closed_port: int, streaming: bool) -> None:
    chat = OpenAIChat(base_url=f"http://127.0.0.1:{closed_port}/v1", api_key=KEY, model="m")

    with pytest.raises(ChatUnavailable, match="could not reach the chat provider") as caught:
        await (_collect(chat) if streaming else chat.reply(CONVERSATION))

    assert KEY not in caught.value.message


@pytest.mark.parametrize("streaming", [False, True], ids=["reply", "stream"])
async def test_a_silent_server_times_out(chat_server: FakeChatServer, streaming: bool) -> None:
    chat_server.replies = [Stall()]
    chat = _chat(chat_server, timeout=0.3)

    with pytest.raises(ChatUnavailable, match="did not answer within 0.3s"):
        await (_collect(chat) if streaming else chat.reply(CONVERSATION))


async def test_a_callers_transport_is_used_and_left_open() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion("Teal."))

    transport = httpx.MockTransport(answer)
    chat = OpenAIChat(
        base_url="http://llm.internal/v1", api_key=None, model="m", transport=transport
    )

    assert await chat.reply(CONVERSATION) == "Teal."
    assert await chat.reply(CONVERSATION) == "Teal."  # still usable: not closed by the first call

    assert [str(r.url) for r in seen] == ["http://llm.internal/v1/chat/completions"] * 2
    await transport.aclose()


def test_the_key_is_not_in_the_repr() -> None:
    chat = OpenAIChat(base_url="http://127.0.0.1:1/v1", api_key=KEY, model="gpt-test")

    assert KEY not in repr(chat)
    assert chat.name == "openai-compatible"
