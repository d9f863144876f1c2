"""POST /auth/moltbook/exchange: identity JWTs signed by a key the test generates."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import AUDIENCE, ISSUER, Server


def _token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"agent-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "exp": now + 300,
        "name": "Test Agent",
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256")


def test_exchange_returns_a_working_15_minute_token(server: Server) -> None:
    client = server.client()
    token = _token(server.identity_key)
    r = client.post("/auth/moltbook/exchange", json={"identity_token": token})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["token_type"] == "Bearer" and data["expires_in"] == 900
    claims = jwt.decode(data["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900

    agent = server.client(data["access_token"])
    assert agent.get("/v1/credits/balance").json()["data"]["balance"] == 0
    server.cli(
        "credits",
        "grant",
        "--workspace",
        f"moltbook-{jwt.decode(token, options={'verify_signature': False})['sub']}",
        "100",
    )
    r = agent.post(
        "/v1/generate", json={"model": "z-image", "prompt": "hello", "request_id": "agent-1"}
    )
    assert r.status_code == 200
    assert server.wait_job(agent, r.json()["data"]["task_id"])["status"] == "completed"


def test_the_same_identity_maps_to_the_same_member(server: Server) -> None:
    client = server.client()
    sub = f"agent-{uuid.uuid4().hex[:8]}"
    first = client.post(
        "/auth/moltbook/exchange", json={"identity_token": _token(server.identity_key, sub=sub)}
    ).json()
    second = client.post(
        "/auth/moltbook/exchange", json={"token": _token(server.identity_key, sub=sub)}
    ).json()
    assert first["data"]["member_id"] == second["data"]["member_id"]
    assert first["data"]["workspace_id"] == second["data"]["workspace_id"]


def test_bad_identity_tokens_are_401(server: Server) -> None:
    client = server.client()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = server.identity_key
    bad = [
        _token(stranger),
        _token(key, iss="https://evil.test"),
        _token(key, aud="someone-else"),
        _token(key, exp=int(time.time()) - 10),
        _token(key, sub=None),
        "not.a.jwt",
        jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
            "a-shared-secret-of-enough-length-" * 2,
            algorithm="HS256",
        ),
    ]
    for token in bad:
        r = client.post("/auth/moltbook/exchange", json={"identity_token": token})
        assert r.status_code == 401, token
        assert r.json()["message"] == "invalid_identity_token"


def test_exchange_validation(server: Server) -> None:
    client = server.client()
    assert client.post("/auth/moltbook/exchange", json={}).status_code == 400
    r = client.post("/auth/moltbook/exchange", json={"identity_token": "x" * 8193})
    assert r.status_code == 400


def test_expired_access_token_is_refused(server: Server) -> None:
    from mediagate.auth.tokens import issue_access_token

    stale = issue_access_token(
        member_id="m",
        workspace_id="w",
        scopes=["generate"],
        mode="sandbox",
        signing_key=server.settings.signing_key,
        ttl_seconds=-1,
    )
    assert server.client(stale).get("/v1/credits/balance").status_code == 401
