"""API key format: ``mg_live_<secret>`` / ``mg_test_<secret>``; we keep only a SHA-256.

The secrets are 256-bit random, so a fast hash is enough (no dictionary to attack) and lets a
lookup be a single indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets

_MODE_TAG = {"live": "live", "sandbox": "test"}
PREFIX_LENGTH = 16


def new_secret(mode: str) -> str:
    return f"mg_{_MODE_TAG[mode]}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(("mg_live_", "mg_test_"))
