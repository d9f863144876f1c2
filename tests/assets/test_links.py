"""Signed asset links: valid ones serve the file; tampered or expired ones are refused."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from mediagate.assets import signing
from tests.conftest import Server


def _asset_url(server: Server) -> str:
    t = server.tenant()
    task = t.client.post(
        "/v1/generate", json={"model": "google/nano-banana", "prompt": "x", "request_id": "link"}
    ).json()["data"]["task_id"]
    return str(server.wait_job(t.client, task)["outputs"][0]["url"])


def test_tampered_and_expired_links_are_refused(server: Server) -> None:
    url = _asset_url(server)
    client = server.client()
    assert client.get(url).status_code == 200
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    asset_id = parts.path.rsplit("/", 1)[1]
    expires = int(query["expires"][0])
    later = f"{parts.path}?expires={expires + 60}&signature={query['signature'][0]}"
    assert client.get(later).status_code == 403
    flipped = query["signature"][0][:-1] + ("0" if query["signature"][0][-1] != "0" else "1")
    r = client.get(f"{parts.path}?expires={expires}&signature={flipped}")
    assert r.status_code == 403 and r.json()["message"] == "invalid_signature"
    past = int(time.time()) - 1
    sig = signing.signature(server.settings.signing_key, asset_id, past)
    assert client.get(f"{parts.path}?expires={past}&signature={sig}").status_code == 403
    assert client.get(parts.path).status_code == 400


def test_links_are_stable_within_a_minute() -> None:
    key = b"k" * 32
    now = 1_800_000_000.0
    assert signing.signed_path(key, "a", 3600, now) == signing.signed_path(key, "a", 3600, now + 1)
    assert signing.verify(key, "a", 1_800_003_660, signing.signature(key, "a", 1_800_003_660), now)
