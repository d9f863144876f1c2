"""The OpenAI adapter against a fake OpenAI API, through the real app over HTTP."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Server, poll
from tests.providers.conftest import balance, data_url, gen, generate, live_with, png
from tests.providers.fakes_openai import KEY, FakeOpenAI

REFUSAL = {
    "error": {
        "message": "Your request was rejected by the safety system.",
        "type": "image_generation_user_error",
        "param": None,
        "code": "moderation_blocked",
    }
}


def _live(server: Server, fake: FakeOpenAI, **settings: Any) -> Any:
    # The SDK appends its paths (/images/generations) to the base URL, as with /v1 upstream.
    return live_with(server, fake, openai_base_url=f"{fake.url}/v1", **settings)


def test_text_to_image_maps_count_and_aspect_and_stores_the_images(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        job_id = generate(t, gen("gpt4o_image", units={"count": 2, "aspect_ratio": "16:9"}))
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "completed", job
        (sent,) = fake.calls("POST")
        assert sent.path == "/v1/images/generations"
        assert sent.headers["authorization"] == KEY
        assert sent.json == {
            "model": "gpt-image-1",
            "prompt": "a lighthouse at dusk",
            "n": 2,
            "size": "1536x1024",
        }
        outputs = job["outputs"]
        assert [(o["mime_type"], o["width"], o["height"]) for o in outputs] == [
            ("image/png", 1536, 1024),
            ("image/png", 1536, 1024),
        ]
        image = live.client().get(outputs[1]["url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content == png(1536, 1024, (40, 90, 200))
        assert job["credits"]["charged"] == 20
        assert balance(t) == {"balance": 4980, "held": 0, "available": 4980}


def test_portrait_and_square_sizes(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        for aspect, size in [("9:16", "1024x1536"), ("1:1", "1024x1024")]:
            job = live.wait_job(
                t.client, generate(t, gen("gpt4o_image", units={"aspect_ratio": aspect}))
            )
            assert job["status"] == "completed", job
            assert fake.calls("POST")[-1].json["size"] == size
            assert f"{job['outputs'][0]['width']}x{job['outputs'][0]['height']}" == size


def test_input_images_go_to_the_edits_endpoint_as_multipart(server: Server) -> None:
    first, second = png(32, 32, (10, 200, 10)), png(40, 20, (200, 10, 10))
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        body = gen(
            "gpt4o_image",
            units={"aspect_ratio": "3:4"},
            input_image_urls=[data_url(first), data_url(second)],
        )
        job = live.wait_job(t.client, generate(t, body))
        assert job["status"] == "completed", job
        (sent,) = fake.calls("POST")
        assert sent.path == "/v1/images/edits"
        assert sent.headers["authorization"] == KEY
        assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
        ((fields, uploads),) = fake.image_forms
        assert fields == {
            "model": "gpt-image-1",
            "prompt": "a lighthouse at dusk",
            "n": "1",
            "size": "1024x1536",
        }
        assert [(name, u.content_type, u.data) for name, u in uploads] == [
            ("image[]", "image/png", first),
            ("image[]", "image/png", second),
        ]
        (output,) = job["outputs"]
        assert (output["width"], output["height"]) == (1024, 1536)


def test_sora_video_is_created_polled_and_downloaded(server: Server) -> None:
    with FakeOpenAI(polls=2) as fake, _live(server, fake) as (live, t):
        body = gen("sora-2", units={"duration": 8, "aspect_ratio": "9:16"})
        job = live.wait_job(t.client, generate(t, body))
        assert job["status"] == "completed", job
        (created,) = fake.calls("POST")
        assert created.path == "/v1/videos"
        assert created.headers["authorization"] == KEY
        assert created.headers["content-type"].startswith("multipart/form-data")
        (video,) = fake.videos.values()
        assert video.fields == {
            "model": "sora-2",
            "prompt": "a lighthouse at dusk",
            "seconds": "8",
            "size": "720x1280",
        }
        assert video.reference is None
        polls = fake.calls("GET", f"/v1/videos/{video.id}")
        assert [p.path for p in polls] == [f"/v1/videos/{video.id}"] * 3 + [
            f"/v1/videos/{video.id}/content"
        ]
        assert all(p.headers["authorization"] == KEY for p in polls)
        assert job["provider_task_id"] == f"openai:{video.id}"
        (output,) = job["outputs"]
        assert output["mime_type"] == "video/mp4"
        stored = live.client().get(output["url"])
        assert stored.status_code == 200 and stored.content == fake.mp4
        assert len(stored.content) == output["bytes"]
        # 10 credits per 4-second segment.
        assert balance(t) == {"balance": 4980, "held": 0, "available": 4980}


def test_image_to_video_sends_the_reference_fitted_to_the_video_size(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        body = gen("sora-2-pro", units={"duration": 4}, input_image_urls=[data_url(png(64, 48))])
        job = live.wait_job(t.client, generate(t, body))
        assert job["status"] == "completed", job
        (video,) = fake.videos.values()
        assert video.fields["model"] == "sora-2-pro"
        assert video.fields["size"] == "1280x720" and video.fields["seconds"] == "4"
        assert video.reference is not None
        assert video.reference.content_type == "image/png"
        assert Image.open(io.BytesIO(video.reference.data)).size == (1280, 720)


def test_sora_2_pro_at_1080p_asks_for_the_1080p_size(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        body = gen(
            "sora-2-pro",
            units={"duration": 8, "resolution": "1080p", "aspect_ratio": "9:16"},
        )
        job = live.wait_job(t.client, generate(t, body))
        assert job["status"] == "completed", job
        (video,) = fake.videos.values()
        assert video.fields["size"] == "1024x1792" and video.fields["seconds"] == "8"


@pytest.mark.parametrize("header", [{"Retry-After": "0.4"}, {"Retry-After-Ms": "400"}])
def test_a_429_is_retried_after_its_retry_after(server: Server, header: dict[str, str]) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.fail(
            "/v1/images/generations",
            429,
            {
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            headers=header,
        )
        job = live.wait_job(t.client, generate(t, gen("gpt4o_image")))
        assert job["status"] == "completed", job
        first, second = fake.calls("POST")
        assert second.at - first.at >= 0.4
        assert balance(t)["balance"] == 4990


def test_server_errors_are_retried(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.fail(
            "/v1/videos",
            500,
            {
                "error": {
                    "message": "The server had an error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            times=2,
            method="POST",
        )
        # ... and while polling, without creating the video twice.
        fake.fail("/v1/videos/", 502, b"Bad gateway", times=1, method="GET")
        job = live.wait_job(t.client, generate(t, gen("sora-2")))
        assert job["status"] == "completed", job
        assert len(fake.calls("POST")) == 3
        assert len(fake.videos) == 1


def test_a_request_that_times_out_is_retried(server: Server) -> None:
    with (
        FakeOpenAI() as fake,
        _live(server, fake, provider_request_timeout_seconds=0.3) as (
            live,
            t,
        ),
    ):
        fake.slow, fake.delay = 1, 1.0
        job = live.wait_job(t.client, generate(t, gen("gpt4o_image")))
        assert job["status"] == "completed", job
        assert len(fake.calls("POST")) == 2
        assert balance(t)["balance"] == 4990


def test_exhausted_retries_fail_the_job_and_release_the_hold(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.fail("/v1/images/generations", 503, times=3)
        job = live.wait_job(t.client, generate(t, gen("gpt4o_image")))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_unavailable"
        assert len(fake.calls("POST")) == 3
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}


def test_a_safety_refusal_fails_at_once_with_nothing_charged(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.fail("/v1/images/generations", 400, REFUSAL)
        job = live.wait_job(t.client, generate(t, gen("gpt4o_image")))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_rejected"
        assert "rejected by the safety system" in job["error"]["message"]
        assert len(fake.calls("POST")) == 1  # never retried
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}


def test_a_video_failed_by_moderation_is_rejected(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.video_error = {"code": "moderation_blocked", "message": "The video was blocked."}
        job = live.wait_job(t.client, generate(t, gen("sora-2")))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_rejected"
        assert "The video was blocked." in job["error"]["message"]
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}


def test_a_video_failed_for_another_reason_fails_the_job(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.video_error = {"code": "internal_error", "message": "Generation failed."}
        job = live.wait_job(t.client, generate(t, gen("sora-2")))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_unavailable"
        assert "openai: failed" in job["error"]["message"]
        assert len(fake.calls("POST")) == 1
        assert balance(t)["balance"] == 5000


def test_an_exhausted_quota_is_not_retried(server: Server) -> None:
    quota = {
        "error": {
            "message": "You exceeded your current quota.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.fail("/v1/images/generations", 429, quota, headers={"Retry-After": "0"})
        job = live.wait_job(t.client, generate(t, gen("gpt4o_image")))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_auth_failed"
        assert len(fake.calls("POST")) == 1
        assert balance(t)["balance"] == 5000


def test_a_wrong_key_fails_with_an_auth_error(server: Server) -> None:
    with FakeOpenAI() as fake, _live(server, fake, openai_api_key="sk-wrong") as (live, t):
        job = live.wait_job(t.client, generate(t, gen("gpt4o_image")))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_auth_failed"
        (sent,) = fake.calls("POST")
        assert sent.headers["authorization"] == "Bearer sk-wrong"
        assert balance(t)["balance"] == 5000


def test_cancel_stops_polling_without_a_provider_call(server: Server) -> None:
    # OpenAI has no call that stops a running video: the job ends canceled on our side, and
    # nothing is deleted at OpenAI (DELETE only removes finished videos).
    with FakeOpenAI() as fake, _live(server, fake) as (live, t):
        fake.hold = True
        job_id = generate(t, gen("sora-2"))
        poll(lambda: {"n": len(fake.calls("GET"))}, lambda v: v["n"] > 0, 20)
        assert t.client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "canceled"
        assert not fake.calls("DELETE")
        (video,) = fake.videos.values()
        assert video.status == "in_progress"
        polled = len(fake.calls("GET"))
        time.sleep(0.3)  # several poll intervals: nobody is polling any more
        assert len(fake.calls("GET")) == polled
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}
