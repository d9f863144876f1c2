"""The one place that reads the environment: every setting is ``MEDIAGATE_<NAME>``."""

from __future__ import annotations

import functools
import secrets
import ssl
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration.

    >>> Settings(data_dir=Path("/tmp/mg")).resolved_database_url
    'sqlite+aiosqlite:////tmp/mg/mediagate.db'
    """

    model_config = SettingsConfigDict(env_prefix="MEDIAGATE_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Absolute base for links in responses when the server sits behind a proxy;
    # otherwise links are built from the request's own base URL.
    public_base_url: str | None = None
    secret_key: str | None = None
    redis_url: str | None = None
    catalog_path: Path | None = None

    embedded_workers: bool = True
    worker_concurrency: int = 4
    worker_poll_seconds: float = 1.0
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    shutdown_grace_seconds: float = 20.0
    cancel_grace_seconds: float = 2.0
    max_streams_per_process: int = 1000
    stream_heartbeat_seconds: float = 15.0
    stream_poll_seconds: float = 1.0

    # The generate & chat API: the model each type uses, and the chat model for live keys
    # (any OpenAI-compatible server: OpenAI, vLLM, Ollama, llama.cpp).
    default_image_model: str = "nano-banana-pro"
    default_video_model: str = "wan-2.6"
    chat_base_url: str | None = None
    chat_api_key: str | None = None
    chat_model: str | None = None

    # The image agent's planner for live keys: an OpenAI-compatible chat model.
    agent_llm_base_url: str | None = None
    agent_llm_api_key: str | None = None
    agent_llm_model: str | None = None

    # Hosted providers for live keys: a provider is used only once its key is set.
    # MEDIAGATE_<PROVIDER>_BASE_URL points an adapter elsewhere (a proxy, a test server).
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    google_api_key: str | None = None
    google_base_url: str | None = None
    fal_api_key: str | None = None
    fal_base_url: str | None = None
    kie_api_key: str | None = None
    kie_base_url: str | None = None
    xai_api_key: str | None = None
    xai_base_url: str | None = None
    provider_request_timeout_seconds: float = 60.0
    provider_poll_seconds: float = 2.0
    # Extra tries at one provider on 429/5xx/timeouts before falling back to the next route.
    provider_retries: int = 2
    provider_backoff_seconds: float = 1.0
    # A Retry-After longer than this is not waited out: the next route is tried instead.
    provider_max_backoff_seconds: float = 30.0
    provider_breaker_failures: int = 5
    provider_breaker_cooldown_seconds: float = 30.0
    max_output_bytes: int = 512 * 1024 * 1024

    # The local engine (extra `mediagate[local]`): a diffusers pipeline saved with save_pretrained,
    # used for catalog models with a "local" route once the directory is set. The device defaults
    # to CUDA when torch sees one, else the CPU; images are scaled down so that their long side is
    # at most local_max_side (keep it near the size the model was trained at).
    local_model_dir: Path | None = None
    local_device: str | None = None
    local_steps: int = Field(25, ge=1, le=200)
    local_max_side: int = Field(1024, ge=64, le=4096)

    asset_url_ttl_seconds: int = 3600
    max_input_image_bytes: int = 30 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    fetch_allow_private: bool = False
    # Networks (CIDRs) fetches of user-given URLs may reach although they are private, e.g. an
    # intranet image store: MEDIAGATE_FETCH_ALLOWED_NETWORKS='["10.20.0.0/16"]'.
    fetch_allowed_networks: list[str] = Field(default_factory=list)
    # A PEM bundle of extra certificate authorities trusted for fetches of user-given URLs
    # (a private CA in front of an intranet image store), on top of the system's.
    fetch_ca_file: Path | None = None
    webhook_allow_private: bool = False

    # Identity exchange: a JWT from a trusted issuer becomes a short-lived access token.
    moltbook_issuer: str | None = None
    moltbook_audience: str | None = None
    moltbook_public_keys: Path | None = Field(
        default=None, description="PEM file with one or more public keys, or a JWKS JSON file"
    )
    moltbook_plan: Literal["free", "pro", "enterprise"] = "free"
    moltbook_key_mode: Literal["live", "sandbox"] = "live"
    access_token_ttl_seconds: int = 900

    def provider_setting(self, provider: str, what: Literal["api_key", "base_url"]) -> str | None:
        value = getattr(self, f"{provider}_{what}", None)
        return value if isinstance(value, str) and value else None

    @property
    def fetch_ssl_context(self) -> ssl.SSLContext | None:
        return None if self.fetch_ca_file is None else _trusting(self.fetch_ca_file)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'mediagate.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def signing_key(self) -> bytes:
        """The server secret; generated once and kept in the data dir when not configured."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret-key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "assets"


@functools.cache
def _trusting(ca_file: Path) -> ssl.SSLContext:
    """The system's trust store plus an operator's extra certificate authorities."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(ca_file))
    return context
