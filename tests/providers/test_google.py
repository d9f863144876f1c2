"""Google's Gemini Developer API against a loopback stand-in: the exact requests we send
(through the google-genai SDK for images, REST for Veo), the results we store, and how
faults, refusals and cancels come out."""

from __future__ import annotations

import base64
import io
import time

from PIL import Image

from tests.conftest import Server, poll
from tests.providers.conftest import (
    balance,
    completed_info,
    data_url,
    gen,
    generate,
    live_with,
    png,
)
from tests.providers.fakes_google import KEY, FakeGoogle, error, image_reply, proto_bytes

IMAGE_PATH = "/v1beta/models/gemini-3-pro-image-preview:generateContent"


def test_images_go_one_request_each_with_the_mapped_image_config(server: Server) -> None:
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        units = {"count": 2, "aspect_ratio": "16:9", "resolution": "2K"}
        job = live.wait_job(t.client, generate(t, gen(units=units)))
        assert job["status"] == "completed", job
        sent = google.calls("POST")
        assert [r.path for r in sent] == [IMAGE_PATH, IMAGE_PATH]
        for request in sent:
            assert request.headers["x-goog-api-key"] == KEY
            assert request.headers["user-agent"].startswith("google-genai-sdk/")
            assert request.json == {
                "contents": [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}],
                "generationConfig": {
                    "responseModalities": ["TEXT", "IMAGE"],
                    "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
                },
            }
        assert job["engine"] == "google" and job["provider_task_id"] is None
        outputs = job["outputs"]
        assert [(o["mime_type"], o["width"], o["height"]) for o in outputs] == [
            ("image/png", 64, 36),
            ("image/png", 64, 36),
        ]
        stored = live.client().get(outputs[0]["url"])
        assert stored.status_code == 200 and stored.content == png(64, 36)
        assert stored.headers["content-type"] == "image/png"
        assert balance(t) == {"balance": 5000 - 40, "held": 0, "available": 5000 - 40}


def test_an_edit_sends_the_input_images_inline(server: Server) -> None:
    source = png(32, 32, (10, 200, 10))
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        body = gen("google/nano-banana", input_image_urls=[data_url(source)])
        job = live.wait_job(t.client, generate(t, body))
        assert job["status"] == "completed", job
        (request,) = google.calls("POST")
        assert request.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
        text, image = request.json["contents"][0]["parts"]
        assert text == {"text": "a lighthouse at dusk"}
        assert image["inlineData"]["mime_type"] == "image/png"
        sent = proto_bytes(image["inlineData"]["data"])
        assert Image.open(io.BytesIO(sent)).size == (32, 32)
        # No ratio asked for: none is sent, so the edit keeps the source's shape (and this model
        # has one size, so no imageSize either).
        assert "imageConfig" not in request.json["generationConfig"]
        assert (job["outputs"][0]["width"], job["outputs"][0]["height"]) == (64, 64)
        assert balance(t)["balance"] == 5000 - 8


def test_veo_runs_as_an_operation_and_the_video_is_fetched_with_the_key(server: Server) -> None:
    with FakeGoogle(polls=2) as google, live_with(server, google) as (live, t):
        units = {"resolution": "1080p", "aspect_ratio": "9:16"}
        job = live.wait_job(t.client, generate(t, gen("veo3", units=units)))
        assert job["status"] == "completed", job
        (submit,) = google.calls("POST")
        assert submit.path == "/v1beta/models/veo-3.0-generate-001:predictLongRunning"
        assert submit.headers["x-goog-api-key"] == KEY
        assert submit.json == {
            "instances": [{"prompt": "a lighthouse at dusk"}],
            "parameters": {"aspectRatio": "9:16", "resolution": "1080p", "durationSeconds": 8},
        }
        (name,) = google.operations
        assert name.startswith("models/veo-3.0-generate-001/operations/")
        assert job["provider_task_id"] == f"google:{name}"
        polls = google.calls("GET", f"/v1beta/{name}")
        assert len(polls) == 3 and all(p.headers["x-goog-api-key"] == KEY for p in polls)
        (download,) = google.calls("GET", "/v1beta/files/")
        assert download.query == {"alt": "media"}
        assert download.headers["x-goog-api-key"] == KEY
        (video,) = job["outputs"]
        assert video["mime_type"] == "video/mp4"
        stored = live.client().get(video["url"]).content
        assert stored == next(iter(google.videos.values()))
        assert stored[4:8] == b"ftyp" and len(stored) == video["bytes"]
        assert balance(t)["balance"] == 5000 - 350


def test_veo_image_to_video_sends_the_first_frame(server: Server) -> None:
    frame = png(40, 30, (0, 0, 250))
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        body = gen("veo3_fast", input_image_urls=[data_url(frame)], units={"aspect_ratio": "1:1"})
        job = live.wait_job(t.client, generate(t, body))
        assert job["status"] == "completed", job
        (submit,) = google.calls("POST")
        assert submit.path == "/v1beta/models/veo-3.0-fast-generate-001:predictLongRunning"
        (instance,) = submit.json["instances"]
        assert instance["image"]["mimeType"] == "image/png"
        assert base64.b64decode(instance["image"]["bytesBase64Encoded"]) == frame
        # Veo 3 makes 16:9 or 9:16 only: the route sends its default for anything else.
        assert submit.json["parameters"] == {
            "aspectRatio": "16:9",
            "resolution": "720p",
            "durationSeconds": 8,
        }
        assert balance(t)["balance"] == 5000 - 75  # 50 x 1.5 for image-to-video


def test_a_429_is_retried_after_its_retry_after(server: Server) -> None:
    slow = error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.fail(IMAGE_PATH, 429, slow, headers={"Retry-After": "0.4"})
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "completed", job
        first, second = google.calls("POST")
        assert second.at - first.at >= 0.4
        assert balance(t)["balance"] == 5000 - 20


def test_a_429_without_the_header_waits_out_googles_retry_info(server: Server) -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.5s"}
    slow = error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_info)
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.fail(IMAGE_PATH, 429, slow)
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "completed", job
        first, second = google.calls("POST")
        assert second.at - first.at >= 0.5


def test_server_errors_are_retried(server: Server) -> None:
    boom = error(500, "INTERNAL", "An internal error has occurred.")
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.fail(IMAGE_PATH, 500, boom, times=2)
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "completed", job
        assert len(google.calls("POST")) == 3
        # While polling Veo a 503 is retried too, without a second (paid) submission.
        google.fail(
            "/v1beta/models/veo-3.0-fast-generate-001/operations",
            503,
            error(503, "UNAVAILABLE", "The service is currently unavailable."),
            times=2,
        )
        job = live.wait_job(t.client, generate(t, gen("veo3_fast")))
        assert job["status"] == "completed", job
        assert len(google.calls("POST", "/v1beta/models/veo")) == 1


def test_exhausted_retries_fail_the_job_and_release_the_hold(server: Server) -> None:
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.fail(IMAGE_PATH, 503, error(503, "UNAVAILABLE", "overloaded"), times=3)
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_unavailable"
        assert len(google.calls("POST")) == 3
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}


def test_safety_refusals_fail_at_once_with_nothing_charged(server: Server) -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "modelVersion": "x"}
    withheld = {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}]}
    filtered = {
        "raiMediaFilteredCount": 1,
        "raiMediaFilteredReasons": [
            "The prompt could not be submitted: it may violate our policies."
        ],
    }
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        for reply, detail in ((blocked, "PROHIBITED_CONTENT"), (withheld, "IMAGE_SAFETY")):
            google.replies.append(reply)
            job = live.wait_job(t.client, generate(t, gen()))
            assert job["status"] == "failed"
            assert job["error"]["code"] == "provider_rejected"
            assert detail in job["error"]["message"]
        assert len(google.calls("POST")) == 2  # never retried
        google.outcomes.append(filtered)
        job = live.wait_job(t.client, generate(t, gen("veo3")))
        assert job["error"]["code"] == "provider_rejected"
        assert "violate our policies" in job["error"]["message"]
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}


def test_when_some_images_are_withheld_only_the_delivered_ones_are_charged(
    server: Server,
) -> None:
    withheld = {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}]}
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.replies.append(withheld)
        job_id = generate(t, gen(units={"count": 2}))
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "completed", job
        assert len(google.calls("POST")) == 2
        assert len(job["outputs"]) == 1
        assert balance(t)["balance"] == 5000 - 20
        (missing,) = completed_info(t, job_id)["missing_images"]
        assert missing["error"] == "rejected" and "IMAGE_SAFETY" in missing["message"]


def test_a_text_only_answer_is_a_failure_not_a_refusal(server: Server) -> None:
    talk = image_reply(b"", "gemini-3-pro-image-preview")
    talk["candidates"][0]["content"]["parts"] = [{"text": "What style would you like?"}]
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.replies.append(talk)
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "failed"
        # A failure, so the next route would be tried; none is configured here.
        assert job["error"]["code"] == "provider_unavailable"
        assert "google: failed" in job["error"]["message"]
        assert balance(t)["balance"] == 5000


def test_a_failed_operation_and_a_bad_request_come_out_differently(server: Server) -> None:
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.outcomes.append(error(13, "INTERNAL", "Video generation failed."))
        job = live.wait_job(t.client, generate(t, gen("veo3_fast")))
        assert job["error"]["code"] == "provider_unavailable"
        assert "google: failed" in job["error"]["message"]
        google.fail(IMAGE_PATH, 400, error(400, "INVALID_ARGUMENT", "Unsupported aspect ratio"))
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["error"]["code"] == "provider_invalid"
        assert "Unsupported aspect ratio" in job["error"]["message"]
        assert balance(t)["balance"] == 5000


def test_a_wrong_key_is_an_auth_failure(server: Server) -> None:
    with (
        FakeGoogle() as google,
        live_with(server, google, google_api_key="not-the-key") as (
            live,
            t,
        ),
    ):
        job = live.wait_job(t.client, generate(t, gen()))
        assert job["status"] == "failed"
        assert job["error"]["code"] == "provider_auth_failed"
        assert len(google.calls("POST")) == 1  # not retried
        assert google.requests[0].headers["x-goog-api-key"] == "not-the-key"


def test_cancel_stops_polling_veo_which_has_no_cancel_call(server: Server) -> None:
    with FakeGoogle() as google, live_with(server, google) as (live, t):
        google.hold = True
        job_id = generate(t, gen("veo3"))
        poll(lambda: {"n": len(google.calls("GET"))}, lambda v: v["n"] > 0, 20)
        r = t.client.post(f"/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200
        job = live.wait_job(t.client, job_id)
        assert job["status"] == "canceled"
        # The Developer API has no cancel for operations: nothing but the submission was
        # POSTed, and polling stopped once the job was canceled.
        assert [r.path for r in google.calls("POST")] == [
            "/v1beta/models/veo-3.0-generate-001:predictLongRunning"
        ]
        polled = len(google.calls("GET"))
        time.sleep(0.3)  # six poll intervals
        assert len(google.calls("GET")) == polled
        assert balance(t) == {"balance": 5000, "held": 0, "available": 5000}
