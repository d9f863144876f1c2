"""Whatever a client sends, the answer is a 4xx in the surface's envelope, never a 500.

Every operation the OpenAPI documents with a JSON body gets a minimal body built from its
schema, then each top-level field (and each field of an object field) replaced in turn by a
value of the wrong kind, past any limit, or one a database cannot store; and raw bodies that
do not parse. Query parameters get the same treatment. Each of these once found a 500: a NUL
character or an integer past BIGINT on PostgreSQL, JSON nested past the parser's recursion
limit, a multipart body with the wrong boundary."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import httpx

from mediagate.db.base import MAX_BIGINT
from tests.conftest import Server

EXTREMES: list[Any] = [
    MAX_BIGINT + 1,
    -(MAX_BIGINT + 2),
    -1,
    1.5,
    "",
    "x" * 20_000,
    [],
    {},
    None,
    "a\x00b",
    {"k": MAX_BIGINT + 1},
]
RAW_BODIES = [b"{not json", b"[1]", b"null", b"[" * 5000 + b"]" * 5000]
QUERY_VALUES = [str(MAX_BIGINT + 1), "-1", "a%00b", "x" * 3000]
REQUESTS_PER_KEY = 500  # below the enterprise plan's 600 a minute
# Waits for its job to finish, and this server runs no workers: only bodies that fail to parse
# are sent there (its fields are swept in tests/surfaces/image_editor).
SYNCHRONOUS = {"/api/v1/image-editor/process"}


class _Keys:
    """Clients of fresh tenants, a new one every few hundred requests (per-minute limits)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sent = 0
        self.client = server.tenant(credits=10**9).client

    def next(self) -> httpx.Client:
        self.sent += 1
        if self.sent % REQUESTS_PER_KEY == 0:
            self.client = self.server.tenant(credits=10**9).client
        return self.client


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _sample(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """A small value the schema accepts, required fields only."""
    schema = _resolve(schema, defs)
    for option in schema.get("anyOf", []):
        if _resolve(option, defs).get("type") != "null":
            return _sample(option, defs, depth)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", []) if depth < 4 else []
        return {
            name: _sample(sub, defs, depth + 1)
            for name, sub in schema.get("properties", {}).items()
            if name in required
        }
    if kind == "array":
        return [_sample(schema.get("items", {}), defs, depth + 1)] * schema.get("minItems", 1)
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return "https://example.com/a.png" if "url" in str(schema.get("title", "")).lower() else "xyz"


def _variants(body: dict[str, Any], schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    for name, sub in schema.get("properties", {}).items():
        for value in EXTREMES:
            yield {**body, name: value}
        for option in [sub, *sub.get("anyOf", [])]:
            inner = _resolve(option, defs)
            for inner_name in inner.get("properties", {}) if inner.get("type") == "object" else ():
                for value in EXTREMES:
                    nested = copy.deepcopy(body)
                    nested[name] = {**(nested.get(name) or {}), inner_name: value}
                    yield nested


def _check(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])


def test_bad_input_is_never_a_500(server: Server) -> None:
    with server.sibling(own_database=True, embedded_workers=False) as quiet:
        spec = quiet.client().get("/openapi.json").json()
        schemas = spec["components"]["schemas"]
        keys = _Keys(quiet)
        for path, operations in spec["paths"].items():
            concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
            for method, operation in operations.items():
                for parameter in operation.get("parameters", []):
                    if parameter["in"] != "query":
                        continue
                    for value in QUERY_VALUES:
                        url = f"{concrete}?{parameter['name']}={value}"
                        _check(keys.next().request(method.upper(), url), f"{method} {url}")
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" not in content:
                    continue
                top = content["application/json"]["schema"]
                defs = {**schemas, **top.get("$defs", {})}
                schema = _resolve(top, defs)
                for raw in RAW_BODIES:
                    r = keys.next().request(
                        method.upper(),
                        concrete,
                        content=raw,
                        headers={"content-type": "application/json"},
                    )
                    _check(r, f"{method} {path} {raw[:20]!r}")
                if path in SYNCHRONOUS:
                    continue
                for body in _variants(_sample(schema, defs), schema, defs):
                    r = keys.next().request(
                        method.upper(),
                        concrete,
                        json=body,
                        headers={"Idempotency-Key": str(uuid.uuid4())},
                    )
                    _check(r, f"{method} {path} {str(body)[:200]}")
        assert keys.sent > 1000  # the sweep reached every operation it should
