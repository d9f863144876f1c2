"""The LLM planner against a real local HTTP server speaking the OpenAI wire format."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from mediagate.agent.planner import LLMPlanner, PlannerError, RuleBasedPlanner, planner_for
from mediagate.agent.runner import run_agent
from mediagate.agent.state import TOOLS, AgentState, Step
from tests.agent.conftest import FakeChatServer, chat_reply, error_body

KEY = "sk-test-0123456789"
INSTRUCTIONS = (
    "put these two photos side by side, black and white, write 'Summer 2026' at the bottom"
)


def _state(inputs: list[Image.Image], **overrides: Any) -> AgentState:
    fields: dict[str, Any] = {"aspect_ratio": "16:9", "resolution": "2K", "max_steps": 8}
    fields.update(overrides)
    return AgentState(INSTRUCTIONS, inputs, **fields)


def _planner(server: FakeChatServer, **overrides: Any) -> LLMPlanner:
    options: dict[str, Any] = {"base_url": server.base_url, "api_key": KEY, "model": "gpt-test"}
    options.update(overrides)
    return LLMPlanner(**options)


async def _ignore(index: int, step: Step, image: Image.Image) -> None:
    pass


async def test_a_full_run_follows_the_models_plan(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    compose = {"layout": "row", "aspect_ratio": "16:9"}
    caption = {"text": "Summer 2026", "position": "bottom"}
    chat_server.replies = [
        (200, chat_reply("compose", compose, call_id="call_a", content="Side by side.")),
        (200, chat_reply("adjust", {"grayscale": True}, call_id="call_b")),
        (200, chat_reply("overlay_text", caption, call_id="call_c", content="Add the caption.")),
        (200, chat_reply("finish", {}, call_id="call_d", content="All done.")),
    ]
    events: list[tuple[int, str]] = []

    async def on_step(index: int, step: Step, image: Image.Image) -> None:
        events.append((index, step.tool))

    image, steps = await run_agent(_state(photos), _planner(chat_server), on_step)

    assert [(s.tool, s.args) for s in steps] == [
        ("compose", compose),
        ("adjust", {"grayscale": True}),
        ("overlay_text", caption),
        ("finish", {}),
    ]
    assert [s.summary for s in steps] == [
        "Side by side.",
        "Adjust (grayscale=True)",
        "Add the caption.",
        "All done.",
    ]
    assert events == [(1, "compose"), (2, "adjust"), (3, "overlay_text"), (4, "finish")]
    assert image.size == (2048, 1152)
    arr = np.asarray(image, dtype=np.int16)
    assert (arr[..., 0] == arr[..., 2]).all()

    assert len(chat_server.requests) == 4
    for request in chat_server.requests:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == f"Bearer {KEY}"
        assert request["headers"]["Content-Type"] == "application/json"
        body = request["json"]
        assert body["model"] == "gpt-test"
        assert body["tool_choice"] == "auto"
        assert [t["function"]["name"] for t in body["tools"]] == list(TOOLS)
        assert all(t["type"] == "function" for t in body["tools"])
        assert body["tools"][0]["function"]["parameters"]["required"] == ["prompt"]

    first = chat_server.requests[0]["json"]["messages"]
    assert [m["role"] for m in first] == ["system", "user"]
    assert INSTRUCTIONS in first[1]["content"]
    assert "2 (0: 400x300, 1: 300x400)" in first[1]["content"]
    assert "16:9" in first[1]["content"] and "2048x1152" in first[1]["content"]

    last = chat_server.requests[3]["json"]["messages"]
    assert [m["role"] for m in last] == ["system", "user"] + ["assistant", "tool"] * 3
    for (call, result), (call_id, step) in zip(
        zip(last[2::2], last[3::2], strict=True),
        zip(("call_a", "call_b", "call_c"), steps, strict=False),
        strict=True,
    ):
        [tool_call] = call["tool_calls"]
        assert tool_call["id"] == call_id and tool_call["type"] == "function"
        assert tool_call["function"]["name"] == step.tool
        assert json.loads(tool_call["function"]["arguments"]) == step.args
        assert result["tool_call_id"] == call_id
        assert "2048x1152" in result["content"]
    assert "Steps left: 5" in last[-1]["content"]


async def test_only_allowed_tools_are_offered(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [(200, chat_reply("finish", {}))]
    state = _state(photos, allowed_tools=frozenset({"compose", "overlay_text"}))
    await _planner(chat_server).next_step(state)
    offered = [t["function"]["name"] for t in chat_server.bodies()[0]["tools"]]
    assert offered == ["compose", "overlay_text", "finish"]


async def test_a_reply_without_tool_calls_means_finish(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [(200, chat_reply(None, content="The image is ready."))]
    step = await _planner(chat_server).next_step(_state(photos))
    assert step == Step("finish", {}, "The image is ready.")


async def test_invalid_arguments_go_back_to_the_model_without_costing_a_step(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [
        (200, chat_reply("adjust", {"brightness": 9}, call_id="call_x")),
        (200, chat_reply("adjust", {"brightness": 1.2}, call_id="call_y")),
    ]
    planner = _planner(chat_server)
    step = await planner.next_step(_state(photos))
    assert step.args == {"brightness": 1.2}
    retry = chat_server.bodies()[1]["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "tool"]
    assert retry[2]["tool_calls"][0]["id"] == retry[3]["tool_call_id"] == "call_x"
    assert retry[3]["content"].startswith("Error: adjust: brightness must be between")


async def test_repeated_invalid_arguments_fail(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [(200, chat_reply("edit", {"prompt": "make it pretty"}))] * 3
    with pytest.raises(PlannerError, match="no supported edit") as caught:
        await _planner(chat_server).next_step(_state(photos))
    assert not caught.value.retryable and len(chat_server.requests) == 3


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            chat_reply("adjust", raw_arguments='{"grayscale": tru'),
            "invalid JSON arguments for adjust",
        ),
        (chat_reply("adjust", raw_arguments="[1, 2]"), "not a JSON object"),
        (chat_reply("paint", {"prompt": "x"}), "unknown tool: 'paint'"),
        ({"choices": []}, r"without choices\[0\].message"),
    ],
)
async def test_malformed_replies_raise(
    chat_server: FakeChatServer, photos: list[Image.Image], reply: Any, message: str
) -> None:
    chat_server.replies = [(200, reply)]
    with pytest.raises(PlannerError, match=message) as caught:
        await _planner(chat_server).next_step(_state(photos))
    assert not caught.value.retryable


async def test_a_disallowed_tool_is_refused(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [(200, chat_reply("generate", {"prompt": "x"}))]
    state = _state(photos, allowed_tools=frozenset({"compose"}))
    with pytest.raises(PlannerError, match="not allowed in this run: 'generate'"):
        await _planner(chat_server).next_step(state)


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (
            429,
            error_body("Rate limit reached for gpt-test", "requests", "rate_limit_exceeded"),
            True,
        ),
        (500, error_body("The server had an error", "server_error", "internal_error"), True),
        (503, {"detail": "overloaded"}, True),
        (400, error_body("Invalid 'tools[0]'", "invalid_request_error", "invalid_value"), False),
    ],
)
async def test_http_errors(
    chat_server: FakeChatServer,
    photos: list[Image.Image],
    status: int,
    body: dict[str, Any],
    retryable: bool,
) -> None:
    chat_server.replies = [(status, body)]
    with pytest.raises(PlannerError) as caught:
        await _planner(chat_server).next_step(_state(photos))
    assert caught.value.retryable is retryable
    assert f"HTTP {status}" in caught.value.message
    expected = body["error"]["message"] if "error" in body else "overloaded"
    assert expected in caught.value.message


async def test_the_key_never_shows(chat_server: FakeChatServer, photos: list[Image.Image]) -> None:
    echo = f"Incorrect API key provided: {KEY}."
    chat_server.replies = [(401, error_body(echo, "invalid_request_error", "invalid_api_key"))]
    planner = _planner(chat_server)
    with pytest.raises(PlannerError) as caught:
        await planner.next_step(_state(photos))
    assert KEY not in str(caught.value) and "Incorrect API key provided: ***" in str(caught.value)
    assert not caught.value.retryable
    assert KEY not in repr(planner)


async def test_no_key_no_authorization_header(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [(200, chat_reply("finish", {}))]
    await _planner(chat_server, api_key=None).next_step(_state(photos))
    assert "Authorization" not in chat_server.requests[0]["headers"]


async def test_timeouts_and_unreachable_servers_are_retryable(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [("sleep", 0.5)]
    with pytest.raises(PlannerError, match="did not answer within 0.1s") as caught:
        await _planner(chat_server, timeout=0.1).next_step(_state(photos))
    assert caught.value.retryable

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    planner = LLMPlanner(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, model="m")
    with pytest.raises(PlannerError, match="could not reach the chat model") as caught:
        await planner.next_step(_state(photos))
    assert caught.value.retryable


async def test_a_given_transport_is_used_and_left_open(
    chat_server: FakeChatServer, photos: list[Image.Image]
) -> None:
    chat_server.replies = [
        (200, chat_reply("compose", {"layout": "column"}, call_id="c1")),
        (200, chat_reply("finish", {}, call_id="c2")),
    ]
    transport = httpx.AsyncHTTPTransport(retries=0)
    try:
        planner = planner_for(
            False,
            {
                "base_url": chat_server.base_url,
                "model": "m",
                "api_key": KEY,
                "transport": transport,
            },
        )
        assert isinstance(planner, LLMPlanner)
        _image, steps = await run_agent(_state(photos), planner, _ignore)
    finally:
        await transport.aclose()
    assert [s.tool for s in steps] == ["compose", "finish"]


def test_planner_for() -> None:
    assert isinstance(planner_for(False, None), RuleBasedPlanner)
    llm = planner_for(False, {"base_url": "http://h/v1/", "model": "m", "timeout": 5})
    assert isinstance(llm, LLMPlanner) and llm.base_url == "http://h/v1" and llm.timeout == 5
    with pytest.raises(ValueError, match="lack model"):
        planner_for(False, {"base_url": "http://h/v1"})
    with pytest.raises(ValueError, match="unknown chat model setting"):
        planner_for(False, {"base_url": "http://h/v1", "model": "m", "temperature": 0})
