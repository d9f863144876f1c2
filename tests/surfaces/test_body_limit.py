"""Request bodies are capped per route, with 413 in each surface's envelope: at once when
Content-Length is over the limit, and as the bytes arrive when the body is chunked."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from mediagate.surfaces.body_limit import BODY_SLACK, DEFAULT_MAX_BODY, base64_size
from mediagate.surfaces.native.schemas import MAX_INPUT_IMAGES
from tests.conftest import Server


def _json_of_size(size: int, **fields: str) -> bytes:
    """A JSON object with ``fields`` and a padding field, exactly ``size`` bytes long."""
    empty = json.dumps({**fields, "pad": ""}).encode()
    return json.dumps({**fields, "pad": "x" * (size - len(empty))}).encode()


def _chunks(body: bytes) -> Iterator[bytes]:
    """The body without a Content-Length: httpx sends a generator chunked."""
    for at in range(0, len(body), 65536):
        yield body[at : at + 65536]


def _post(client: httpx.Client, path: str, body: bytes, *, chunked: bool) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return client.post(path, content=_chunks(body) if chunked else body, headers=headers)


def test_the_default_limit_at_its_edge_declared_and_chunked(server: Server) -> None:
    t = server.tenant()
    at_limit = _json_of_size(DEFAULT_MAX_BODY, url="https://example.com/hook")
    over = _json_of_size(DEFAULT_MAX_BODY + 1, url="https://example.com/hook")
    for chunked in (False, True):
        r = _post(t.client, "/v1/webhooks", at_limit, chunked=chunked)
        assert r.status_code == 400, r.text  # read whole: the unknown field is what fails
        assert r.json()["errors"][0]["field"] == "pad"
        r = _post(t.client, "/v1/webhooks", over, chunked=chunked)
        assert r.status_code == 413, r.text
        assert r.json()["message"] == "payload_too_large"
        assert str(DEFAULT_MAX_BODY) in r.json()["data"]["detail"]


def test_each_surface_answers_in_its_own_envelope(server: Server) -> None:
    t = server.tenant()
    body = _json_of_size(DEFAULT_MAX_BODY + 1)
    for chunked in (False, True):
        r = _post(t.client, "/api/chat", body, chunked=chunked)
        assert r.status_code == 413 and r.json()["code"] == 413, r.text
        r = _post(t.client, "/v2/agents", body, chunked=chunked)
        assert r.status_code == 413 and r.json()["message"] == "payload_too_large", r.text
        r = _post(t.client, "/api/v1/avatars/save", body, chunked=chunked)
        assert r.json()["error"]["code"] == "payload_too_large", r.text
        r = _post(t.client, "/api/v1/image-editor/estimate-credits", body, chunked=chunked)
        assert r.status_code == 413 and r.json()["success"] is False, r.text


def test_a_large_body_is_refused_before_authentication(server: Server) -> None:
    """FastAPI reads a body parameter before it authenticates: the cap comes first."""
    anonymous = server.client()
    body = _json_of_size(8 * DEFAULT_MAX_BODY)
    for chunked in (False, True):
        r = _post(anonymous, "/api/v1/avatars/save", body, chunked=chunked)
        assert r.status_code == 413, r.text


def test_routes_with_images_get_what_their_images_add_up_to(server: Server) -> None:
    # Small images, so that the native submit's limit is small enough to reach here.
    with server.sibling(max_input_image_bytes=3000) as small:
        t = small.tenant()
        limit = MAX_INPUT_IMAGES * base64_size(3000) + BODY_SLACK
        assert limit > DEFAULT_MAX_BODY
        fields = {"request_id": "edge", "model": "z-image"}
        for chunked in (False, True):
            r = _post(t.client, "/v1/generate", _json_of_size(limit, **fields), chunked=chunked)
            assert r.status_code == 400 and r.json()["errors"][0]["field"] == "pad", r.text
            r = _post(t.client, "/v1/generate", _json_of_size(limit + 1, **fields), chunked=chunked)
            assert r.status_code == 413, r.text
            # The estimate takes the same images.
            r = _post(t.client, "/v1/credits/estimate", _json_of_size(limit + 1), chunked=chunked)
            assert r.status_code == 413, r.text
        # Avatars take six references of 15 MB as base64: well over the default.
        r = _post(
            t.client, "/api/v1/avatars/generate", _json_of_size(2 * DEFAULT_MAX_BODY), chunked=False
        )
        assert r.status_code == 400, r.text
