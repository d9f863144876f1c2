"""Signed, expiring links: HMAC-SHA256 over what the link grants and its expiry time.

Asset links carry ``expires`` and ``signature``; job stream links carry a compact ``token``.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(key: bytes, asset_id: str, expires: int) -> str:
    return hmac.new(key, f"asset:{asset_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_path(key: bytes, asset_id: str, ttl_seconds: int, now: float | None = None) -> str:
    # Expiry is rounded up to a minute so that repeated reads return the same (cacheable) link.
    expires = _rounded_expiry(ttl_seconds, now)
    return f"/v1/assets/{asset_id}?expires={expires}&signature={signature(key, asset_id, expires)}"


def verify(key: bytes, asset_id: str, expires: int, sig: str, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if expires < now:
        return False
    return hmac.compare_digest(signature(key, asset_id, expires), sig)


def _rounded_expiry(ttl_seconds: int, now: float | None) -> int:
    now = time.time() if now is None else now
    return int((now + ttl_seconds) // 60 + 1) * 60


def stream_token(
    key: bytes, job_id: str, workspace_id: str, ttl_seconds: int, now: float | None = None
) -> str:
    """``<expires>.<hmac>``: lets a browser's EventSource, which cannot send headers, follow
    one job of one workspace until the token expires."""
    expires = _rounded_expiry(ttl_seconds, now)
    mac = hmac.new(key, f"stream:{job_id}:{workspace_id}:{expires}".encode(), hashlib.sha256)
    return f"{expires}.{mac.hexdigest()}"


def verify_stream_token(
    key: bytes, token: str, job_id: str, workspace_id: str, now: float | None = None
) -> bool:
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) < (time.time() if now is None else now):
        return False
    expected = hmac.new(
        key, f"stream:{job_id}:{workspace_id}:{expires_text}".encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, mac)


def purpose_signature(key: bytes, purpose: str, subject: str, expires: int) -> str:
    """A link signature for something other than an asset (an upload slot, an editor image)."""
    return hmac.new(key, f"{purpose}:{subject}:{expires}".encode(), hashlib.sha256).hexdigest()


def verify_purpose(
    key: bytes, purpose: str, subject: str, expires: int, sig: str, now: float | None = None
) -> bool:
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(purpose_signature(key, purpose, subject, expires), sig)
