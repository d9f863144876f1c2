"""The xAI adapter through the real app: POST /v1/generate with a live key, served by a fake
xAI on loopback; we check what reached xAI and what the job stored."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from mediagate.catalog.loader import PACKAGED
from tests.conftest import Server, Tenant, poll
from tests.providers.conftest import balance, data_url, download, gen, generate, live_with, png
from tests.providers.fakes_xai import INVALID, KEY, FakeXai

CREDITS = 5000
MODERATED = {"code": INVALID, "error": "Generated image rejected by content moderation."}


@contextlib.contextmanager
def xai(server: Server, fake: FakeXai, **overrides: Any) -> Iterator[tuple[Server, Tenant]]:
    """A Mediagate using ``fake`` as xAI; the base URL ends in /v1 as the real one does."""
    with fake, live_with(server, fake, xai_base_url=f"{fake.url}/v1", **overrides) as pair:
        yield pair


def submit(t: Tenant, model: str, **fields: Any) -> str:
    return generate(t, gen(model, prompt="a red fox", **fields))


def test_text_to_image_sends_xai_fields_and_stores_the_images(server: Server) -> None:
    fake = FakeXai()
    with xai(server, fake) as (live, t):
        job = live.wait_job(
            t.client,
            submit(t, "xai/grok-imagine-image", units={"count": 2, "aspect_ratio": "16:9"}),
        )
        assert job["status"] == "completed", job
        assert job["engine"] == "xai"
        assert job["provider_task_id"] is None  # images answer at once: nothing to resume
        [sent] = fake.calls("POST")
        assert sent.path == "/v1/images/generations"
        assert sent.headers["authorization"] == KEY
        assert sent.json == {
            "model": "grok-imagine-image",
            "prompt": "a red fox",
            "n": 2,
            "response_format": "b64_json",
            "resolution": "1k",
            "aspect_ratio": "16:9",
        }
        assert len(job["outputs"]) == 2
        for out in job["outputs"]:
            assert out["mime_type"] == "image/png"
            assert (out["width"], out["height"]) == (96, 54)
            assert Image.open(io.BytesIO(download(out).content)).size == (96, 54)
        assert job["credits"] == {"estimated": 40, "held": 40, "charged": 40}
        assert balance(t) == {"balance": CREDITS - 40, "held": 0, "available": CREDITS - 40}


def test_unsupported_aspect_ratio_maps_to_the_nearest_xai_one(server: Server) -> None:
    fake = FakeXai()
    with xai(server, fake) as (live, t):
        job = live.wait_job(
            t.client, submit(t, "xai/grok-imagine-image", units={"aspect_ratio": "21:9"})
        )
        assert job["status"] == "completed", job
        assert fake.calls("POST")[0].json["aspect_ratio"] == "20:9"
        assert (job["outputs"][0]["width"], job["outputs"][0]["height"]) == (100, 45)


def test_url_outputs_are_downloaded_from_xai(server: Server, tmp_path: Path) -> None:
    """A route that asks for ``response_format: url`` gets links, which we copy at once."""
    catalog = json.loads(PACKAGED.read_text())
    model = next(m for m in catalog["models"] if m["id"] == "xai/grok-imagine-image")
    model["routes"][0]["params"]["response_format"] = "url"
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    fake = FakeXai()
    with xai(server, fake, catalog_path=path) as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-image"))
        assert job["status"] == "completed", job
        assert fake.calls("POST")[0].json["response_format"] == "url"
        [hosted] = fake.files.values()
        assert download(job["outputs"][0]).content == hosted[0]


def test_edit_sends_the_input_image_as_a_data_url(server: Server) -> None:
    fake = FakeXai()
    source = png(50, 40, (10, 200, 10))
    with xai(server, fake) as (live, t):
        task = submit(t, "xai/grok-imagine-image/edit", input_image_urls=[data_url(source)])
        job = live.wait_job(t.client, task)
        assert job["status"] == "completed", job
        [sent] = fake.calls("POST")
        assert sent.path == "/v1/images/edits"
        assert sent.headers["authorization"] == KEY
        body = sent.json
        assert "images" not in body and body["image"]["type"] == "image_url"
        header, _, encoded = body["image"]["url"].partition(",")
        assert header == "data:image/png;base64"
        received = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert received.size == (50, 40) and received.getpixel((0, 0))[:3] == (10, 200, 10)
        assert {k: body[k] for k in ("model", "prompt", "n", "response_format")} == {
            "model": "grok-imagine-image",
            "prompt": "a red fox",
            "n": 1,
            "response_format": "b64_json",
        }
        assert len(job["outputs"]) == 1 and job["credits"]["charged"] == 20


def test_edit_with_several_images_sends_the_images_list(server: Server) -> None:
    fake = FakeXai()
    sources = [png(50, 40), png(30, 30, (0, 0, 255))]
    with xai(server, fake) as (live, t):
        task = submit(
            t, "xai/grok-imagine-image/edit", input_image_urls=[data_url(s) for s in sources]
        )
        assert live.wait_job(t.client, task)["status"] == "completed"
        body = fake.calls("POST")[0].json
        assert "image" not in body
        assert [i["type"] for i in body["images"]] == ["image_url", "image_url"]
        sizes = [
            Image.open(io.BytesIO(base64.b64decode(i["url"].partition(",")[2]))).size
            for i in body["images"]
        ]
        assert sizes == [(50, 40), (30, 30)]


def test_text_to_video_is_polled_until_done(server: Server) -> None:
    fake = FakeXai(pending_polls=2)
    with xai(server, fake) as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-video/text-to-video"))
        assert job["status"] == "completed", job
        [sent] = fake.calls("POST")
        assert sent.path == "/v1/videos/generations"
        assert sent.headers["authorization"] == KEY
        assert sent.json == {
            "model": "grok-imagine-video",
            "prompt": "a red fox",
            "duration": 6,
            "resolution": "720p",
            "aspect_ratio": "16:9",
        }
        [request_id] = fake.videos
        polls = fake.calls("GET", f"/v1/videos/{request_id}")
        assert len(polls) == 3  # pending, pending, done
        assert all(p.headers["authorization"] == KEY for p in polls)
        assert job["provider_task_id"] == f"xai:{request_id}"
        [out] = job["outputs"]
        assert out["mime_type"] == "video/mp4"
        assert download(out).content == fake.mp4
        assert job["credits"]["charged"] == 10
        assert balance(t)["balance"] == CREDITS - 10


def test_rate_limit_is_retried_after_retry_after(server: Server) -> None:
    fake = FakeXai()
    fake.fail(
        "/v1/images/generations",
        429,
        {"code": "Too many requests", "error": "rate limit reached"},
        headers={"Retry-After": "0.4"},
    )
    with xai(server, fake) as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-image"))
        assert job["status"] == "completed", job
        first, second = fake.arrivals("/v1/images/generations")
        assert second - first >= 0.4
        assert balance(t)["balance"] == CREDITS - 20


def test_server_error_is_retried(server: Server) -> None:
    fake = FakeXai(pending_polls=0)
    fake.fail("/v1/videos/generations", 500, {"code": "Internal", "error": "upstream hiccup"})
    with xai(server, fake) as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-video/text-to-video"))
        assert job["status"] == "completed", job
        assert len(fake.calls("POST", "/v1/videos/generations")) == 2
        assert len(fake.videos) == 1


def test_moderation_refusal_fails_the_job_and_charges_nothing(server: Server) -> None:
    fake = FakeXai()
    fake.fail("/v1/images/generations", 400, MODERATED)
    with xai(server, fake) as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-image"))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_rejected"
        assert "content moderation" in job["error"]["message"]
        assert len(fake.calls("POST")) == 1  # a refusal is not retried
        assert job["credits"]["charged"] == 0
        assert balance(t) == {"balance": CREDITS, "held": 0, "available": CREDITS}


def test_images_withheld_by_moderation(server: Server) -> None:
    fake = FakeXai()
    fake.withheld = {1}
    with xai(server, fake) as (live, t):
        # One of two withheld: the other is delivered, and only it is charged.
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-image", units={"count": 2}))
        assert job["status"] == "completed", job
        assert len(job["outputs"]) == 1 and job["credits"]["charged"] == 20
        # Every image withheld: a refusal.
        fake.withheld = {0}
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-image"))
        assert job["status"] == "failed" and job["error"]["code"] == "provider_rejected"
        assert balance(t) == {"balance": CREDITS - 20, "held": 0, "available": CREDITS - 20}


def test_moderated_video_is_rejected(server: Server) -> None:
    fake = FakeXai(pending_polls=1)
    fake.video_outcome = {
        "status": "done",
        "video": {"url": "", "duration": 6, "respect_moderation": False},
        "model": "grok-imagine-video",
    }
    with xai(server, fake) as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-video/text-to-video"))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_rejected"
        assert balance(t) == {"balance": CREDITS, "held": 0, "available": CREDITS}


def test_failed_video_fails_the_job_without_charge(server: Server) -> None:
    fake = FakeXai(pending_polls=1)
    fake.video_outcome = {
        "status": "failed",
        "error": {"code": "internal_error", "message": "generation crashed"},
    }
    with xai(server, fake) as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-video/text-to-video"))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_unavailable"
        assert "xai: failed" in job["error"]["message"]
        assert len(fake.calls("POST")) == 1  # the task ran and failed: not resubmitted
        assert balance(t) == {"balance": CREDITS, "held": 0, "available": CREDITS}


def test_wrong_key_is_an_auth_failure(server: Server) -> None:
    fake = FakeXai()
    with xai(server, fake, xai_api_key="not-the-key") as (live, t):
        job = live.wait_job(t.client, submit(t, "xai/grok-imagine-image"))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_auth_failed"
        [sent] = fake.calls("POST")
        assert sent.headers["authorization"] == "Bearer not-the-key"
        assert balance(t)["balance"] == CREDITS


def test_cancel_stops_polling_since_xai_has_no_cancel_call(server: Server) -> None:
    fake = FakeXai()
    fake.hold = True
    with xai(server, fake) as (live, t):
        task = submit(t, "xai/grok-imagine-video/text-to-video")
        poll(lambda: {"polls": len(fake.calls("GET"))}, lambda s: s["polls"] >= 1, timeout=30)
        [request_id] = fake.videos
        job = t.client.get(f"/v1/jobs/{task}").json()["data"]
        assert job["provider_task_id"] == f"xai:{request_id}"
        assert t.client.post(f"/v1/jobs/{task}/cancel").status_code == 200
        job = live.wait_job(t.client, task)
        assert job["status"] == "canceled"
        settled = len(fake.requests)
        time.sleep(0.3)  # six poll intervals: a live poller would have asked again
        assert len(fake.requests) == settled
        # Only the submit and status polls ever reached xAI: it has no cancel endpoint.
        assert {(r.method, r.path) for r in fake.requests} == {
            ("POST", "/v1/videos/generations"),
            ("GET", f"/v1/videos/{request_id}"),
        }
        assert balance(t) == {"balance": CREDITS, "held": 0, "available": CREDITS}
