"""The kie.ai adapter, end to end: jobs submitted over our HTTP API run against a loopback
kie that speaks its envelope wire format; we check what kie received and what we stored."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import av
import pytest
from PIL import Image

from tests.conftest import Server, Tenant, poll
from tests.providers.conftest import balance, data_url, download, gen, generate, live_with, png
from tests.providers.fakes_kie import FakeKie

AUTH = "Bearer test-kie-key"
CALLBACK = "https://mediagate.invalid/kie-callback-unused"
IMAGE_SUBMIT = "/api/v1/gpt4o-image/generate"
IMAGE_RECORD = "/api/v1/gpt4o-image/record-info"
VEO_SUBMIT = "/api/v1/veo/generate"
VEO_RECORD = "/api/v1/veo/record-info"
SUNO_SUBMIT = "/api/v1/generate"
SUNO_RECORD = "/api/v1/generate/record-info"
UPLOAD = "/api/file-base64-upload"


def _submit(t: Tenant, model: str, prompt: str = "a red fox in snow", **body: Any) -> str:
    return generate(t, gen(model, prompt=prompt, **body))


def _task_id(job: dict[str, Any], fake: FakeKie) -> str:
    provider, task_id = job["provider_task_id"].split(":", 1)
    assert provider == "kie" and task_id in fake.tasks
    return task_id


# -- happy paths ----------------------------------------------------------------------------


def test_gpt4o_image_is_submitted_polled_and_stored(server: Server) -> None:
    with FakeKie(polls=2) as fake, live_with(server, fake) as (live, t):
        job = live.wait_job(
            t.client, _submit(t, "gpt4o_image", units={"count": 2, "aspect_ratio": "16:9"})
        )
        assert job["status"] == "completed", job
        [submit] = fake.calls("POST", IMAGE_SUBMIT)
        assert submit.headers["authorization"] == AUTH
        # kie's sizes are ratios; 16:9 is nearest 3:2. No callBackUrl: this API polls fine.
        assert submit.json == {"prompt": "a red fox in snow", "size": "3:2", "nVariants": 2}
        task_id = _task_id(job, fake)
        polls = fake.calls("GET", IMAGE_RECORD)
        assert len(polls) == 3  # two GENERATING answers, then SUCCESS
        assert all(
            p.query == {"taskId": task_id} and p.headers["authorization"] == AUTH for p in polls
        )
        assert not fake.calls(path=UPLOAD)

        assert len(job["outputs"]) == 2
        for out in job["outputs"]:
            assert out["mime_type"] == "image/png" and (out["width"], out["height"]) == (96, 64)
            assert Image.open(io.BytesIO(download(out).content)).size == (96, 64)
        assert job["credits"] == {"estimated": 20, "held": 20, "charged": 20}
        assert balance(t) == {"balance": 4980, "held": 0, "available": 4980}


def test_input_images_are_uploaded_to_kie_and_sent_as_links(server: Server) -> None:
    source = png(40, 30, (10, 120, 240))
    with FakeKie(polls=1) as fake, live_with(server, fake) as (live, t):
        job = live.wait_job(
            t.client,
            _submit(t, "gpt4o_image", "make it pop", input_image_urls=[data_url(source)]),
        )
        assert job["status"] == "completed", job
        [upload] = fake.calls("POST", UPLOAD)
        assert upload.headers["authorization"] == AUTH
        assert upload.json["uploadPath"] == "mediagate"
        header, _, encoded = upload.json["base64Data"].partition(";base64,")
        assert header == "data:image/png"
        assert Image.open(io.BytesIO(base64.b64decode(encoded))).size == (40, 30)
        [link] = fake.uploads
        [submit] = fake.calls("POST", IMAGE_SUBMIT)
        assert submit.json == {
            "prompt": "make it pop",
            "size": "1:1",
            "nVariants": 1,
            "filesUrl": [link],
        }
        assert job["credits"]["charged"] == 10


@pytest.mark.parametrize(
    ("model", "aspect", "sent_aspect", "with_image", "credits"),
    [
        ("veo3_fast", "9:16", "9:16", True, 75),  # image-to-video costs 1.5x
        ("veo3", "1:1", "Auto", False, 280),  # kie has no 1:1: let it choose
    ],
)
def test_veo_video_on_kie(
    server: Server, model: str, aspect: str, sent_aspect: str, with_image: bool, credits: int
) -> None:
    images = [data_url(png(64, 48))] if with_image else []
    with FakeKie(polls=2) as fake, live_with(server, fake) as (live, t):
        job = live.wait_job(
            t.client,
            _submit(t, model, units={"aspect_ratio": aspect}, input_image_urls=images),
        )
        assert job["status"] == "completed", job
        [submit] = fake.calls("POST", VEO_SUBMIT)
        expected: dict[str, Any] = {
            "prompt": "a red fox in snow",
            "model": model,
            "aspectRatio": sent_aspect,
        }
        if with_image:
            expected["imageUrls"] = list(fake.uploads)
        assert submit.json == expected
        task_id = _task_id(job, fake)
        assert [p.query for p in fake.calls("GET", VEO_RECORD)] == [{"taskId": task_id}] * 3
        [out] = job["outputs"]
        assert out["mime_type"] == "video/mp4"
        assert download(out).content == fake.mp4
        assert job["credits"]["charged"] == credits
        assert balance(t)["available"] == 5000 - credits


@pytest.mark.parametrize(("count", "tracks"), [(1, 1), (2, 2)])
def test_suno_music_on_kie(server: Server, count: int, tracks: int) -> None:
    with FakeKie(polls=3) as fake, live_with(server, fake) as (live, t):
        job = live.wait_job(t.client, _submit(t, "V5", "lofi beats", units={"count": count}))
        assert job["status"] == "completed", job
        [submit] = fake.calls("POST", SUNO_SUBMIT)
        assert submit.headers["authorization"] == AUTH
        assert submit.json == {
            "prompt": "lofi beats",
            "model": "V5",
            "callBackUrl": CALLBACK,  # required by kie; we poll instead
            "customMode": False,
            "instrumental": False,
        }
        task_id = _task_id(job, fake)
        assert [p.query for p in fake.calls("GET", SUNO_RECORD)] == [{"taskId": task_id}] * 4
        assert len(job["outputs"]) == tracks
        # Music is priced per track: both delivered tracks are charged (V5 is 35 a track).
        assert job["credits"]["charged"] == 35 * tracks
        for out in job["outputs"]:
            assert out["mime_type"] == "audio/mpeg"
            mp3 = download(out).content
            assert mp3 == fake.mp3
            with av.open(io.BytesIO(mp3)) as container:
                assert container.streams.audio[0].codec_context.name.startswith("mp3")


# -- faults ---------------------------------------------------------------------------------


def test_http_429_is_retried_after_retry_after(server: Server) -> None:
    with FakeKie(polls=1) as fake, live_with(server, fake) as (live, t):
        fake.fail(
            VEO_SUBMIT, 429, {"code": 429, "msg": "slow down"}, headers={"Retry-After": "0.4"}
        )
        job = live.wait_job(t.client, _submit(t, "veo3_fast"))
        assert job["status"] == "completed", job
        first, second = fake.calls("POST", VEO_SUBMIT)
        assert second.at - first.at >= 0.4
        assert job["credits"]["charged"] == 50


@pytest.mark.parametrize(
    ("path", "status", "body", "model"),
    [
        (IMAGE_SUBMIT, 500, {"error": "boom"}, "gpt4o_image"),  # plain HTTP 5xx
        (IMAGE_RECORD, 200, {"code": 500, "msg": "Server Error"}, "gpt4o_image"),
        (VEO_SUBMIT, 200, {"code": 455, "msg": "System maintenance"}, "veo3_fast"),
        (VEO_RECORD, 200, {"code": 429, "msg": "Rate limited"}, "veo3_fast"),
        (SUNO_SUBMIT, 200, {"code": 430, "msg": "Your call frequency is too high"}, "V4_5"),
    ],
)
def test_transient_errors_are_retried(
    server: Server, path: str, status: int, body: dict[str, Any], model: str
) -> None:
    method = "GET" if path.endswith("record-info") else "POST"
    with FakeKie(polls=1) as fake, live_with(server, fake) as (live, t):
        fake.fail(path, status, body, times=2, method=method)
        job = live.wait_job(t.client, _submit(t, model))
        assert job["status"] == "completed", job
        assert len(fake.calls(method, path)) >= 3  # two faults, then the real answer
        assert len(fake.tasks) == 1  # a retried poll never submits twice


@pytest.mark.parametrize(
    ("model", "failure"),
    [
        ("V5", {"status": "SENSITIVE_WORD_ERROR", "errorMessage": "Contains banned words"}),
        (
            "veo3",
            {
                "successFlag": 3,
                "errorCode": 400,
                "errorMessage": "Your prompt was flagged by Website as violating content policies",
            },
        ),
        (
            "gpt4o_image",
            {
                "status": "GENERATE_FAILED",
                "successFlag": 2,
                "errorCode": 400,
                "errorMessage": "Your content was flagged by OpenAI as violating content policies",
            },
        ),
    ],
)
def test_safety_refusal_fails_the_job_and_releases_the_hold(
    server: Server, model: str, failure: dict[str, Any]
) -> None:
    with FakeKie(polls=1) as fake, live_with(server, fake) as (live, t):
        fake.next_failure = failure
        job = live.wait_job(t.client, _submit(t, model))
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "provider_rejected"
        assert job["credits"]["charged"] == 0
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}
        assert len(fake.tasks) == 1


def test_refusal_at_submit_is_rejected(server: Server) -> None:
    with FakeKie() as fake, live_with(server, fake) as (live, t):
        refusal = {"code": 400, "msg": "The prompt contains sensitive words"}
        fake.fail(SUNO_SUBMIT, 200, refusal, method="POST")
        job = live.wait_job(t.client, _submit(t, "V4"))
        assert job["status"] == "failed" and job["error"]["code"] == "provider_rejected"
        assert len(fake.calls("POST", SUNO_SUBMIT)) == 1  # not retried
        assert balance(t)["available"] == 5000


@pytest.mark.parametrize(
    ("model", "failure", "code"),
    [
        # A bad request is the caller's fault, not a safety refusal.
        (
            "veo3_fast",
            {
                "successFlag": 3,
                "errorCode": 400,
                "errorMessage": "Only English prompts are supported",
            },
            "provider_invalid",
        ),
        # The task failed at kie: no other route to fall back to.
        (
            "V5",
            {"status": "GENERATE_AUDIO_FAILED", "errorCode": 501, "errorMessage": "upstream error"},
            "provider_unavailable",
        ),
    ],
)
def test_failed_tasks_fail_the_job_without_charge(
    server: Server, model: str, failure: dict[str, Any], code: str
) -> None:
    with FakeKie(polls=1) as fake, live_with(server, fake) as (live, t):
        fake.next_failure = failure
        job = live.wait_job(t.client, _submit(t, model))
        assert job["status"] == "failed" and job["error"]["code"] == code, job
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}


@pytest.mark.parametrize(
    ("path", "model", "code"),
    [(IMAGE_SUBMIT, "gpt4o_image", 402), (SUNO_SUBMIT, "V5", 429)],  # Suno's "no credits" code
)
def test_kie_out_of_credits_is_an_account_failure(
    server: Server, path: str, model: str, code: int
) -> None:
    with FakeKie() as fake, live_with(server, fake) as (live, t):
        fake.fail(path, 200, {"code": code, "msg": "Insufficient credits"}, method="POST")
        job = live.wait_job(t.client, _submit(t, model))
        assert job["status"] == "failed" and job["error"]["code"] == "provider_auth_failed", job
        assert len(fake.calls("POST", path)) == 1  # not retried
        assert balance(t)["available"] == 5000


def test_cancel_stops_polling_kie_which_has_no_cancel_call(server: Server) -> None:
    with FakeKie() as fake, live_with(server, fake) as (live, t):
        fake.hold = True
        job_id = _submit(t, "veo3_fast")
        poll(lambda: {"polls": len(fake.calls("GET", VEO_RECORD))}, lambda s: s["polls"] >= 2)
        r = t.client.post(f"/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200, r.text
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "canceled", job
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}
        seen = len(fake.requests)
        paths = {r.path for r in fake.requests}
        assert paths == {VEO_SUBMIT, VEO_RECORD}  # nothing else: kie offers no cancel
        time.sleep(0.3)  # six poll intervals
        assert len(fake.requests) <= seen + 1  # polling stopped (one may have been in flight)


def test_a_resolution_the_route_does_not_deliver_skips_it(server: Server) -> None:
    # kie's Veo route delivers 720p only: a 1080p job is never sent there to be charged at
    # the 1080p price for a 720p clip.
    with FakeKie() as fake, live_with(server, fake) as (live, t):
        job = live.wait_job(t.client, _submit(t, "veo3", units={"resolution": "1080p"}))
        assert job["status"] == "failed"
        assert "at 1080p" in job["error"]["message"]
        assert not fake.calls("POST")
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}
        job = live.wait_job(t.client, _submit(t, "veo3", units={"resolution": "720p"}))
        assert job["status"] == "completed", job
