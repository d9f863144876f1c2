"""The generate & chat API over real HTTP: /api/generate, /api/status/:jobId, /api/chat."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import httpx
import pytest

from tests.chat.conftest import DONE, FakeChatServer, JSONReply, SSEReply, chunk, completion
from tests.conftest import Server, finished, poll


def _wait(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return poll(lambda: client.get(f"/api/status/{job_id}").json(), finished, timeout)


def test_generate_an_image(server: Server) -> None:
    t = server.tenant()
    r = t.client.post(
        "/api/generate",
        json={"prompt": "A futuristic city at night", "type": "image", "aspect_ratio": "16:9"},
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"jobId", "status"} and r.json()["status"] == "queued"
    job_id = r.json()["jobId"]
    assert re.fullmatch(r"job_\d{13}_[0-9a-f]{6}", job_id)
    done = _wait(t.client, job_id)
    assert done["status"] == "completed" and done["type"] == "image" and done["progress"] == 100
    assert done["createdAt"].endswith("Z") and done["completedAt"].endswith("Z")
    result = done["result"]
    assert (result["width"], result["height"]) == (1024, 576)
    assert httpx.get(result["url"]).headers["content-type"] == "image/png"


def test_prefer_wait_returns_the_final_status(server: Server) -> None:
    t = server.tenant()
    r = t.client.post(
        "/api/generate", json={"prompt": "x", "type": "image"}, headers={"Prefer": "wait=60"}
    )
    assert r.status_code == 200 and r.json()["status"] == "completed"
    assert r.headers["preference-applied"] == "wait=60"
    assert t.client.get(f"/api/status/{r.json()['jobId']}").json()["status"] == "completed"


def test_generate_a_video_of_ten_seconds(server: Server) -> None:
    import av

    t = server.tenant()
    r = t.client.post(
        "/api/generate",
        json={
            "prompt": "Ocean waves at sunset",
            "type": "video",
            "duration": 10,
            "aspect_ratio": "16:9",
        },
    )
    assert r.status_code == 200, r.text
    done = _wait(t.client, r.json()["jobId"], timeout=120)
    assert done["status"] == "completed", done
    result = done["result"]
    assert result["mimeType"] == "video/mp4" and result["duration"] == 10
    assert httpx.get(result["posterUrl"]).headers["content-type"] == "image/png"
    with av.open(io.BytesIO(httpx.get(result["url"]).content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (1280, 720)
        assert float(container.duration / av.time_base) == pytest.approx(10, abs=0.1)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "x", "type": "video", "duration": 7},
        {"prompt": "x", "type": "image", "duration": 5},
        {"prompt": "x", "type": "audio"},
        {"type": "image"},
        {"prompt": "", "type": "image"},
        {"prompt": "x", "type": "image", "aspect_ratio": "4:3"},
        {"prompt": "x", "type": "image", "style": "noir"},
    ],
)
def test_bad_parameters_are_400(server: Server, body: dict[str, Any]) -> None:
    r = server.tenant().client.post("/api/generate", json=body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error", "code"} and r.json()["code"] == 400
    assert r.json()["error"]


def test_both_durations_pass(server: Server) -> None:
    t = server.tenant()
    for duration in (5, 10):
        r = t.client.post(
            "/api/generate", json={"prompt": "x", "type": "video", "duration": duration}
        )
        assert r.status_code == 200


def test_auth_and_isolation(server: Server) -> None:
    r = server.client().post("/api/generate", json={"prompt": "x", "type": "image"})
    assert r.status_code == 401 and r.json() == {"error": r.json()["error"], "code": 401}
    a, b = server.tenant(), server.tenant()
    job_id = a.client.post("/api/generate", json={"prompt": "x", "type": "image"}).json()["jobId"]
    assert a.client.get(f"/api/status/{job_id}").status_code == 200
    assert b.client.get(f"/api/status/{job_id}").json() == {
        "error": f"no job {job_id}",
        "code": 404,
    }
    assert a.client.get("/api/status/job_1_abcdef").status_code == 404


def test_live_key_without_an_engine_is_502(server: Server) -> None:
    t = server.tenant(mode="live")
    r = t.client.post("/api/generate", json={"prompt": "x", "type": "image"})
    assert r.status_code == 502 and r.json()["code"] == 502
    r = t.client.post("/api/chat", json={"message": "hi"})
    assert r.status_code == 502 and r.json()["code"] == 502


def test_free_video_quota_is_429_with_retry_after(server: Server) -> None:
    with server.sibling(own_database=True) as app:
        t = app.tenant(plan="free", credits=10_000)
        for _ in range(2):
            assert (
                t.client.post("/api/generate", json={"prompt": "x", "type": "video"}).status_code
                == 200
            )
        r = t.client.post("/api/generate", json={"prompt": "x", "type": "video"})
        assert r.status_code == 429 and r.json()["code"] == 429
        assert "videos" in r.json()["error"] and int(r.headers["retry-after"]) > 0


def test_chat_reply_and_conversation(server: Server) -> None:
    t = server.tenant()
    r = t.client.post("/api/chat", json={"message": "What can you help me with?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"reply", "timestamp", "conversation_id"}
    assert "image" in body["reply"].lower() and "offline" in body["reply"].lower()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])
    price = t.client.post(
        "/api/chat",
        json={"message": "How much is veo3?", "conversation_id": body["conversation_id"]},
    ).json()
    assert "280" in price["reply"] and price["conversation_id"] == body["conversation_id"]
    follow = t.client.post(
        "/api/chat", json={"message": "and at 1080p?", "conversation_id": body["conversation_id"]}
    ).json()
    assert "350" in follow["reply"]
    other = server.tenant()
    r = other.client.post(
        "/api/chat", json={"message": "hi", "conversation_id": body["conversation_id"]}
    )
    assert r.status_code == 404
    assert t.client.post("/api/chat", json={"message": ""}).status_code == 400


def _sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def test_chat_streams_with_event_stream(server: Server) -> None:
    t = server.tenant()
    with t.client.stream(
        "POST",
        "/api/chat",
        json={"message": "list the video models"},
        headers={"Accept": "text/event-stream"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _sse(r)
    deltas = [d["text"] for name, d in events if name == "delta"]
    assert len(deltas) > 3 and events[-1][0] == "done"
    assert "".join(deltas) == events[-1][1]["reply"]
    assert "veo3" in events[-1][1]["reply"]


def test_chat_quota_edge_on_the_free_plan(server: Server) -> None:
    with server.sibling(own_database=True) as app:
        t = app.tenant(plan="free")
        # Three keys of one workspace: the quota is per workspace, the minute limit per key.
        keys = [t.key] + [
            app.cli("keys", "create", "--workspace", t.name, "--mode", "sandbox").strip()
            for _ in range(2)
        ]
        clients = [app.client(k) for k in keys]
        for i in range(50):
            r = clients[i // 20].post("/api/chat", json={"message": "hello"})
            assert r.status_code == 200, (i, r.text)
        r = clients[2].post("/api/chat", json={"message": "hello"})
        assert r.status_code == 429 and "50 chat messages" in r.json()["error"]


def test_live_chat_through_an_openai_compatible_server(server: Server) -> None:
    fake = FakeChatServer()
    fake.thread.start()
    try:
        fake.replies = [
            JSONReply(200, completion("Hello from the model")),
            SSEReply(
                [chunk(role="assistant"), chunk("Hel"), chunk("lo"), chunk(finish="stop"), DONE]
            ),
            JSONReply(503, {"error": {"message": "overloaded", "type": "server"}}),
        ]
        with server.sibling(
            own_database=True,
            chat_base_url=fake.base_url,
            chat_model="gpt-test",
            chat_api_key="sk-x",
        ) as app:
            t = app.tenant(mode="live", plan="free")
            r = t.client.post("/api/chat", json={"message": "hi"})
            assert r.status_code == 200 and r.json()["reply"] == "Hello from the model"
            with t.client.stream(
                "POST",
                "/api/chat",
                headers={"Accept": "text/event-stream"},
                json={"message": "again", "conversation_id": r.json()["conversation_id"]},
            ) as s:
                events = _sse(s)
            assert [d["text"] for n, d in events if n == "delta"] == ["Hel", "lo"]
            assert events[-1][1]["reply"] == "Hello"
            # The second request carried the first exchange as history.
            sent = fake.requests[1]["json"]["messages"]
            assert [m["content"] for m in sent] == ["hi", "Hello from the model", "again"]
            failed = t.client.post("/api/chat", json={"message": "third"})
            assert failed.status_code == 502 and "overloaded" in failed.json()["error"]
            used = t.client.get("/v1/usage").json()["data"]["daily"]["chat"]["used"]
            assert used == 2  # the failed reply gave its message back
    finally:
        fake.release.set()
        fake.httpd.shutdown()
        fake.httpd.server_close()
        fake.thread.join(timeout=5)


def test_an_internal_failure_is_500_in_the_surface_shape(server: Server, tmp_path: Any) -> None:
    """A server whose database lost its tables answers 500, not a traceback."""
    from mediagate.app import create_app
    from tests.conftest import LiveServer

    empty = f"sqlite+aiosqlite:///{tmp_path / 'no-tables.db'}"
    settings = server.settings.model_copy(
        update={"database_url": empty, "embedded_workers": False, "data_dir": tmp_path}
    )
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url) as client:
        r = client.post(
            "/api/generate",
            json={"prompt": "x", "type": "image"},
            headers={"Authorization": "Bearer mg_test_whatever"},
        )
        assert r.status_code == 500
        assert r.json() == {"error": "the server hit an unexpected error", "code": 500}
        assert (
            client.get("/v1/credits/balance", headers={"Authorization": "Bearer mg_test_x"}).json()[
                "code"
            ]
            == 500
        )
