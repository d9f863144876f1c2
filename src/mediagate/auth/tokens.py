"""Short-lived access tokens that we issue (HS256 with the server secret)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import jwt

from mediagate.clock import utcnow

ISSUER = "mediagate"
AUDIENCE = "mediagate-api"


def _token_key(signing_key: bytes) -> bytes:
    # A key of its own for tokens (never the raw server secret), always 256 bits long.
    return hashlib.sha256(b"mediagate-access-token:" + signing_key).digest()


def issue_access_token(
    *,
    member_id: str,
    workspace_id: str,
    scopes: list[str],
    mode: str,
    signing_key: bytes,
    ttl_seconds: int,
) -> str:
    now = utcnow()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": member_id,
        "ws": workspace_id,
        "scopes": scopes,
        "mode": mode,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, _token_key(signing_key), algorithm="HS256")


def decode_access_token(token: str, signing_key: bytes) -> dict[str, Any]:
    return jwt.decode(
        token,
        _token_key(signing_key),
        algorithms=["HS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "sub", "aud", "iss"]},
    )
