"""Resolves an input reference (our own signed asset link, a data URL, or a remote URL) to
bytes, within a size limit. Remote URLs go through the SSRF guard."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from mediagate.assets import signing
from mediagate.assets.storage import Storage
from mediagate.assets.uploads import base64_size
from mediagate.engines.base import EngineError
from mediagate.net.guard import FetchRefused, fetch


class InputLoader:
    def __init__(
        self,
        *,
        storage: Storage,
        signing_key: bytes,
        max_bytes: int,
        allow_private: bool,
        asset_sha: dict[str, str],
        allowed_networks: Sequence[str] = (),
    ) -> None:
        self.storage = storage
        self.signing_key = signing_key
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.allowed_networks = allowed_networks
        # asset id -> sha256 for our own assets the job may reference (looked up by the caller).
        self.asset_sha = asset_sha

    async def load(self, url: str) -> bytes:
        if url.startswith("data:"):
            return self._data_url(url)
        own = own_asset_id(url, self.signing_key)
        if own is not None:
            sha = self.asset_sha.get(own)
            if sha is None:
                raise EngineError("the referenced asset does not exist", code="invalid_input_image")
            return self.storage.get(sha)
        try:
            fetched = await fetch(
                url,
                max_bytes=self.max_bytes,
                allow_private=self.allow_private,
                trusted_networks=self.allowed_networks,
                allowed_schemes=("https", "http"),
            )
        except FetchRefused as exc:
            raise EngineError(
                f"could not fetch input image {url[:200]}: {exc}", code="input_fetch_failed"
            ) from exc
        return fetched.content

    def _data_url(self, url: str) -> bytes:
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise EngineError("data URLs must be base64-encoded", code="invalid_input_image")
        if len(payload) > base64_size(self.max_bytes) + 4:
            raise EngineError("input image is too large", code="invalid_input_image")
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error as exc:
            raise EngineError("data URL is not valid base64", code="invalid_input_image") from exc


def own_asset_id(url: str, signing_key: bytes) -> str | None:
    """The asset id if ``url`` is a valid signed link to one of our assets (any host)."""
    parts = urlsplit(url)
    segments = parts.path.rstrip("/").split("/")
    if len(segments) != 4 or segments[1:3] != ["v1", "assets"]:
        return None
    query = parse_qs(parts.query)
    try:
        expires = int(query["expires"][0])
        sig = query["signature"][0]
    except (KeyError, ValueError, IndexError):
        return None
    return segments[3] if signing.verify(signing_key, segments[3], expires, sig) else None
