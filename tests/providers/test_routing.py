"""Routing across a model's providers: nano-banana-pro routes to Google first, then fal. When
Google fails the job moves to fal and is charged once; an open circuit skips Google without a
call; a refusal or the caller's own error never moves on."""

from __future__ import annotations

from tests.conftest import Server
from tests.providers.conftest import balance, completed_info, gen, generate, live_with
from tests.providers.fakes_google import FakeGoogle, error
from tests.providers.fal_fake import FakeFal

GOOGLE = "/v1beta/models/gemini-3-pro-image-preview:generateContent"
BOOM = error(500, "INTERNAL", "An internal error has occurred.")


def test_a_failing_provider_falls_back_to_the_next_route(server: Server) -> None:
    with FakeGoogle() as google, FakeFal() as fal, live_with(server, google, fal) as (live, t):
        google.fail(GOOGLE, 500, BOOM, times=3)
        job_id = generate(t, gen())
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "completed", job
        assert len(google.calls("POST")) == 3  # one try and two retries
        assert [r.path for r in fal.calls("POST")] == ["/fal-ai/nano-banana-pro"]
        info = completed_info(t, job_id)
        assert info["provider"] == "fal"
        assert [f["provider"] for f in info["fallbacks"]] == ["google"]
        assert info["fallbacks"][0]["error"] == "unavailable"
        assert job["provider_task_id"].startswith("fal:")
        assert balance(t) == {"balance": 5000 - 20, "held": 0, "available": 5000 - 20}


def test_a_refused_platform_key_falls_back_too(server: Server) -> None:
    denied = error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.")
    with FakeGoogle() as google, FakeFal() as fal, live_with(server, google, fal) as (live, t):
        google.fail(GOOGLE, 403, denied)
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "completed", job
        assert len(google.calls("POST")) == 1  # a key problem is not retried at the same place
        assert len(fal.calls("POST")) == 1


def test_an_open_circuit_skips_the_provider_without_calling_it(server: Server) -> None:
    with (
        FakeGoogle() as google,
        FakeFal() as fal,
        live_with(server, google, fal, provider_retries=0, provider_breaker_failures=1) as (
            live,
            t,
        ),
    ):
        google.fail(GOOGLE, 500, BOOM)
        assert live.wait_job(t.client, generate(t, gen()))["status"] == "completed"
        assert len(google.calls("POST")) == 1
        job_id = generate(t, gen())
        assert live.wait_job(t.client, job_id)["status"] == "completed"
        assert len(google.calls("POST")) == 1  # open: not called again
        assert len(fal.calls("POST")) == 2
        info = completed_info(t, job_id)
        assert info["fallbacks"] == [{"provider": "google", "error": "circuit_open"}]


def test_a_refusal_or_a_bad_request_never_moves_on(server: Server) -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "x"}
    bad = error(400, "INVALID_ARGUMENT", "Unsupported aspect ratio.")
    with FakeGoogle() as google, FakeFal() as fal, live_with(server, google, fal) as (live, t):
        google.replies.append(blocked)
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["error"]["code"] == "provider_rejected"
        google.fail(GOOGLE, 400, bad)
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["error"]["code"] == "provider_invalid"
        assert not fal.calls("POST")
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}
