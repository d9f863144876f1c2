"""Request bodies are capped per route, with 413 in each surface's envelope: at once when
Content-Length is over the limit, and as the bytes arrive when the body is chunked."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from mediagate.assets.uploads import base64_size
from mediagate.surfaces.input_guard import BODY_SLACK, DEFAULT_MAX_BODY, _NulSearch
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


# --------------------------------------------------------------------------- NUL characters

NUL_ESCAPES = [b'"a\\u0000b"', b'"\\\\\\u0000"', b'"\\\\\\\\\\\\\\u0000"']
NOT_NUL = [b'"\\\\u0000"', b'"\\\\\\\\u0000"', b'"u0000"', b'"\\u0001"']


@pytest.mark.parametrize("text", NUL_ESCAPES)
def test_a_nul_escape_is_found_wherever_the_chunks_split_it(text: bytes) -> None:
    body = b'{"prompt": ' + text + b"}"
    assert "\x00" in json.loads(body)["prompt"]
    assert _NulSearch().found_in(body)
    for cut in range(1, len(body)):
        search = _NulSearch()
        assert search.found_in(body[:cut]) or search.found_in(body[cut:]), cut
    search = _NulSearch()  # one byte at a time: the backslash run spans many chunks
    assert any(search.found_in(body[i : i + 1]) for i in range(len(body)))


@pytest.mark.parametrize("text", NOT_NUL)
def test_an_escaped_backslash_before_u0000_is_text(text: bytes) -> None:
    body = b'{"prompt": ' + text + b"}"
    assert json.loads(body)["prompt"].find("\x00") == -1
    for cut in range(len(body) + 1):
        search = _NulSearch()
        assert not search.found_in(body[:cut]) and not search.found_in(body[cut:]), cut
    search = _NulSearch()
    assert not any(search.found_in(body[i : i + 1]) for i in range(len(body)))


def test_nul_is_refused_in_bodies_paths_and_queries(server: Server) -> None:
    """PostgreSQL cannot store U+0000 (it failed the statement: a 500); both databases refuse
    it at the edge with a 400 in the surface's envelope."""
    t = server.tenant()
    nul = "a\x00b"
    bodies = [
        ("/v1/generate", {"request_id": "nul", "model": "z-image", "prompt": nul}),
        ("/v1/webhooks", {"url": "https://example.com/hook", "description": nul}),
        ("/api/chat", {"message": nul}),
        ("/v2/agents", {"name": nul, "instructions": "x"}),
        ("/api/v1/avatars/generate", {"prompt": "a portrait", "metadata": {"k": nul}}),
    ]
    for path, body in bodies:
        raw = json.dumps(body).encode()
        assert b"\\u0000" in raw
        for chunked in (False, True):
            r = _post(t.client, path, raw, chunked=chunked)
            assert r.status_code == 400 and "NUL" in r.text, (path, r.text)
    r = t.client.post("/v1/generate", json=bodies[0][1])
    assert r.json()["message"] == "invalid_request", r.text
    r = t.client.post("/api/v1/avatars/generate", json=bodies[4][1])
    assert r.json()["error"]["type"] == "invalid_request_error", r.text
    for url in ("/v1/jobs/a%00b", "/v1/webhooks/deliveries?job_id=a%00b"):
        r = t.client.get(url)
        assert r.status_code == 400 and "NUL" in r.text, (url, r.text)
        assert r.json()["data"]["field"] in ("path", "query")
    form = {"instructions": nul}
    r = t.client.post("/v2/image/agent", data=form, files={"images": ("a.png", _png())})
    assert r.status_code == 400 and "NUL" in r.text, r.text


def test_a_backslash_before_u0000_is_kept_as_text(server: Server) -> None:
    t = server.tenant()
    text = "escape sequences like \\u0000 are text"
    r = t.client.post("/v1/webhooks", json={"url": "https://example.com/h", "description": text})
    assert r.status_code in (200, 201), r.text
    assert r.json()["data"]["description"] == text


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()
