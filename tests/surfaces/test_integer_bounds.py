"""Integers that reach a column or an OFFSET are bounded by what the databases store (BIGINT):
one past it is a 400 in the surface's envelope, not the driver's overflow (it was a 500)."""

from __future__ import annotations

from mediagate.db.base import MAX_BIGINT
from mediagate.surfaces.image_editor.schemas import MAX_PER_PAGE
from tests.conftest import Server


def test_offsets_and_pages_at_the_edge(server: Server) -> None:
    t = server.tenant()
    lists = [
        ("/v2/agents?offset={}", MAX_BIGINT),
        ("/api/v1/avatars?offset={}", MAX_BIGINT),
        (
            f"/api/v1/image-editor/jobs?per_page={MAX_PER_PAGE}&page={{}}",
            MAX_BIGINT // MAX_PER_PAGE,
        ),
    ]
    for template, edge in lists:
        r = t.client.get(template.format(edge))
        assert r.status_code == 200, (template, r.text)
        r = t.client.get(template.format(edge + 1))
        assert r.status_code == 400, (template, r.text)


def test_the_editor_file_size_at_the_edge(server: Server) -> None:
    t = server.tenant()
    body = {"file_name": "a.png", "mime_type": "image/png"}
    r = t.client.post("/api/v1/image-editor/upload-url", json={**body, "file_size": MAX_BIGINT})
    assert r.status_code == 201, r.text
    r = t.client.post("/api/v1/image-editor/upload-url", json={**body, "file_size": MAX_BIGINT + 1})
    assert r.status_code == 400 and r.json()["success"] is False, r.text
