"""Signed, expiring links to assets: HMAC-SHA256 over the asset id and the expiry time."""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(key: bytes, asset_id: str, expires: int) -> str:
    return hmac.new(key, f"asset:{asset_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_path(key: bytes, asset_id: str, ttl_seconds: int, now: float | None = None) -> str:
    # Expiry is rounded up to a minute so that repeated reads return the same (cacheable) link.
    now = time.time() if now is None else now
    expires = int((now + ttl_seconds) // 60 + 1) * 60
    return f"/v1/assets/{asset_id}?expires={expires}&signature={signature(key, asset_id, expires)}"


def verify(key: bytes, asset_id: str, expires: int, sig: str, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if expires < now:
        return False
    return hmac.compare_digest(signature(key, asset_id, expires), sig)
