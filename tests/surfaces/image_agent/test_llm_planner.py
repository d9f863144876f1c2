"""A live key plans through the configured OpenAI-compatible chat model, over real HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.agent.conftest import FakeChatServer, chat_reply
from tests.conftest import Server


@pytest.fixture
def chat() -> Iterator[FakeChatServer]:
    server = FakeChatServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


def test_live_run_follows_the_models_tool_calls(server: Server, chat: FakeChatServer) -> None:
    chat.replies = [
        (200, chat_reply("adjust", {"grayscale": True}, call_id="c1", content="Go gray")),
        (200, chat_reply("overlay_text", {"text": "HELLO", "position": "top"}, call_id="c2")),
        (200, chat_reply("finish", {}, call_id="c3")),
    ]
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 30, 30)).save(buf, "PNG")
    with server.sibling(
        own_database=True,
        agent_llm_base_url=chat.base_url,
        agent_llm_model="gpt-test",
        agent_llm_api_key="sk-test",
    ) as llm:
        t = llm.tenant(credits=1000, mode="live")
        r = t.client.post(
            "/v2/image/agent",
            data={"instructions": "gray with a title", "max_steps": "5"},
            files=[("images", ("a.png", buf.getvalue(), "image/png"))],
        )
        assert r.status_code == 202, r.text
        job = llm.wait_job(t.client, r.json()["data"]["job_id"], timeout=60)
    assert job["status"] == "completed", job
    assert job["engine"] == "agent" and job["mode"] == "live"
    assert job["credits"]["charged"] == 3 * 4  # three steps at 2K
    first = chat.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    assert first["json"]["model"] == "gpt-test"
    names = {tool["function"]["name"] for tool in first["json"]["tools"]}
    assert {"adjust", "overlay_text", "finish"} <= names
    # The second request carries the first tool call and its result, paired by id.
    messages = chat.requests[1]["json"]["messages"]
    call_ids = [c["id"] for m in messages for c in m.get("tool_calls") or []]
    results = [m["tool_call_id"] for m in messages if m.get("role") == "tool"]
    assert call_ids == ["c1"] and results == ["c1"]
