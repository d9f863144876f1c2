"""fal through its queue API, against a loopback stand-in: the exact requests we send, the
results we store, and how faults, refusals and cancels come out."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime

from PIL import Image

from mediagate.clock import FrozenClock
from tests.conftest import Server, poll
from tests.providers.conftest import balance, gen, generate, live_with, png
from tests.providers.fal_fake import KEY, FakeFal


def test_text_to_image_sends_the_mapped_fields_and_stores_the_outputs(server: Server) -> None:
    with FakeFal(polls=2) as fal, live_with(server, fal) as (live, t):
        job_id = generate(t, gen(units={"count": 2, "aspect_ratio": "16:9", "resolution": "2K"}))
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "completed", job
        submit = fal.calls("POST")
        assert len(submit) == 1
        assert submit[0].path == "/fal-ai/nano-banana-pro"
        assert submit[0].headers["authorization"] == KEY
        assert submit[0].json == {
            "prompt": "a lighthouse at dusk",
            "num_images": 2,
            "aspect_ratio": "16:9",
            "output_format": "png",
            "resolution": "2K",
        }
        rid = next(iter(fal.queue))
        assert fal.calls("GET", f"/fal-ai/nano-banana-pro/requests/{rid}/status")
        assert fal.calls("GET", f"/fal-ai/nano-banana-pro/requests/{rid}")
        assert job["provider_task_id"] == f"fal:{rid}"
        assert job["engine"] == "fal"
        outputs = job["outputs"]
        assert [(o["mime_type"], o["width"], o["height"]) for o in outputs] == [
            ("image/png", 64, 48),
            ("image/png", 65, 48),
        ]
        # Copied into our storage: served by us, identical to what the provider made.
        image = live.client().get(outputs[1]["url"])
        assert image.status_code == 200 and image.content == png(65, 48)
        assert balance(t) == {"balance": 5000 - 40, "held": 0, "available": 5000 - 40}


def test_image_to_image_uses_the_edit_endpoint_with_the_inputs(server: Server) -> None:
    source = png(32, 32, (10, 200, 10))
    data_url = "data:image/png;base64," + base64.b64encode(source).decode()
    with FakeFal() as fal, live_with(server, fal) as (live, t):
        job_id = generate(t, gen("google/nano-banana", input_image_urls=[data_url]))
        assert live.wait_job(t.client, job_id)["status"] == "completed"
        (submit,) = fal.calls("POST")
        assert submit.path == "/fal-ai/nano-banana/edit"
        # No ratio asked for: none is sent, and the edit keeps the source's shape.
        assert "aspect_ratio" not in submit.json
        sent = submit.json["image_urls"]
        assert len(sent) == 1 and sent[0].startswith("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(sent[0].split(",", 1)[1]))).size == (32, 32)
        # Status and result live under the app id, without the /edit subpath.
        rid = next(iter(fal.queue))
        assert fal.calls("GET", f"/fal-ai/nano-banana/requests/{rid}/status")


def test_video_maps_duration_and_resolution_and_stores_the_mp4(server: Server) -> None:
    with FakeFal() as fal, live_with(server, fal) as (live, t):
        job_id = generate(
            t,
            gen("wan-2.6", units={"duration": 10, "resolution": "1080p", "aspect_ratio": "9:16"}),
        )
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "completed", job
        (submit,) = fal.calls("POST")
        assert submit.path == "/fal-ai/wan/v2.6/text-to-video"
        assert submit.json == {
            "prompt": "a lighthouse at dusk",
            "aspect_ratio": "9:16",
            "resolution": "1080p",
            "duration": "10",
        }
        (video,) = job["outputs"]
        assert video["mime_type"] == "video/mp4"
        body = live.client().get(video["url"]).content
        assert body[4:8] == b"ftyp" and len(body) == video["bytes"]


def test_a_429_is_retried_after_its_retry_after(server: Server) -> None:
    with FakeFal() as fal, live_with(server, fal) as (live, t):
        fal.fail(
            "/fal-ai/nano-banana-pro",
            429,
            {"detail": "slow down"},
            headers={"Retry-After": "0.4"},
            method="POST",
        )
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "completed", job
        first, second = fal.calls("POST")
        assert second.at - first.at >= 0.4
        assert balance(t)["balance"] == 5000 - 20


def test_server_errors_while_polling_are_retried_without_resubmitting(server: Server) -> None:
    with FakeFal(polls=1) as fal, live_with(server, fal) as (live, t):
        fal.fail("/fal-ai/nano-banana-pro/requests", 500, times=2, method="GET")
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "completed", job
        assert len(fal.calls("POST")) == 1


def test_losing_touch_while_polling_requeues_and_resumes_the_same_task(server: Server) -> None:
    with FakeFal(polls=1) as fal, live_with(server, fal) as (live, t):
        # More failures than one poll's retries: the job goes back to the queue, and the next
        # attempt polls the task it saved instead of paying for a second one.
        fal.fail("/fal-ai/nano-banana-pro/requests", 503, times=3, method="GET")
        job = live.wait_job(t.client, generate(t, gen()), timeout=30)
        assert job["status"] == "completed", job
        assert len(fal.calls("POST")) == 1
        assert job["attempts"] == 2
        assert balance(t)["balance"] == 5000 - 20


def test_exhausted_retries_fail_the_job_and_release_the_hold(server: Server) -> None:
    with FakeFal() as fal, live_with(server, fal) as (live, t):
        fal.fail("/fal-ai/", 500, {"detail": "boom"}, times=3, method="POST")
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_unavailable"
        assert len(fal.calls("POST")) == 3  # one try and provider_retries=2 more
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}


def test_a_safety_refusal_fails_at_once_with_nothing_charged(server: Server) -> None:
    refusal = {
        "detail": [
            {"loc": ["body", "prompt"], "msg": "prompt flagged", "type": "content_policy_violation"}
        ]
    }
    with FakeFal() as fal, live_with(server, fal) as (live, t):
        fal.fail("/fal-ai/", 422, refusal, method="POST")
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_rejected"
        assert "prompt flagged" in job["error"]["message"]
        assert len(fal.calls("POST")) == 1  # never retried
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}
        # A refusal reported when the task completes counts the same.
        fal.task_error = {"error": "output flagged", "error_type": "content_policy_violation"}
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["error"]["code"] == "provider_rejected"
        assert balance(t)["balance"] == 5000


def test_cancel_reaches_fal(server: Server) -> None:
    with FakeFal() as fal, live_with(server, fal) as (live, t):
        fal.hold = True
        job_id = generate(t, gen())
        poll(lambda: {"n": len(fal.calls("GET"))}, lambda v: v["n"] > 0, 20)
        r = t.client.post(f"/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "canceled"
        rid = next(iter(fal.queue))
        assert fal.calls("PUT", f"/fal-ai/nano-banana-pro/requests/{rid}/cancel")
        assert fal.queue[rid].canceled
        assert balance(t)["balance"] == 5000


def test_the_circuit_opens_after_repeated_faults_and_recovers_half_open(server: Server) -> None:
    clock = FrozenClock(datetime.now(UTC))
    with (
        FakeFal() as fal,
        live_with(
            server,
            fal,
            provider_breaker_failures=2,
            provider_breaker_cooldown_seconds=60,
            provider_retries=0,
            clock=clock,
        ) as (live, t),
    ):
        fal.fail("/fal-ai/", 500, times=2, method="POST")
        for _ in range(2):
            assert live.wait_job(t.client, generate(t, gen()))["status"] == "failed"
        assert len(fal.calls("POST")) == 2
        # Open: the next job fails without calling fal at all.
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "failed" and "circuit_open" in job["error"]["message"]
        assert len(fal.calls("POST")) == 2
        # After the cooldown one probe goes through; it succeeds and closes the circuit.
        clock.advance(seconds=61)
        assert live.wait_job(t.client, generate(t, gen()))["status"] == "completed"
        assert live.wait_job(t.client, generate(t, gen()))["status"] == "completed"
        assert len(fal.calls("POST")) == 4


def test_the_callers_own_errors_never_open_the_circuit(server: Server) -> None:
    bad = {"detail": [{"loc": ["body", "num_images"], "msg": "too many", "type": "value_error"}]}
    with (
        FakeFal() as fal,
        live_with(server, fal, provider_breaker_failures=2, provider_retries=0) as (live, t),
    ):
        fal.fail("/fal-ai/", 422, bad, times=3, method="POST")
        for _ in range(3):
            job = live.wait_job(t.client, generate(t, gen()))
            assert job["error"]["code"] == "provider_invalid"
        assert live.wait_job(t.client, generate(t, gen()))["status"] == "completed"


def test_a_model_whose_providers_are_not_configured_is_unavailable(server: Server) -> None:
    t = server.tenant(mode="live")
    listed = {m["id"]: m for m in t.client.get("/v1/models/list").json()["data"]["models"]}
    assert listed["wan-2.6"]["available"] is False
    r = t.client.post("/v1/generate", json=gen("wan-2.6"))
    assert r.status_code == 503 and r.json()["message"] == "model_unavailable"
    with FakeFal() as fal, live_with(server, fal) as (live, lt):
        listed = {m["id"]: m for m in lt.client.get("/v1/models/list").json()["data"]["models"]}
        assert listed["wan-2.6"]["available"] is True
        # veo3 has no fal route: still unavailable, never silently served by fal.
        assert listed["veo3"]["available"] is False
        r = lt.client.post("/v1/generate", json=gen("veo3"))
        assert r.status_code == 503
