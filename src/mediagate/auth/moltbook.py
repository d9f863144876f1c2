"""The identity exchange: a JWT from a configured issuer becomes a 15-minute access token.

The issuer's public keys come from a PEM file (one or more keys) or a JWKS file. The identity
``(iss, sub)`` maps to one member; an identity seen for the first time gets its own workspace
on the configured plan, so agents from the same issuer never share credits by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.auth import tokens
from mediagate.auth.principal import SCOPES
from mediagate.catalog.schemas import Catalog
from mediagate.config import Settings
from mediagate.errors import DomainError, Unauthenticated
from mediagate.workspaces.repository import WorkspaceRepository
from mediagate.workspaces.service import WorkspaceService

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"]
AGENT_SCOPES = [s for s in SCOPES if s != "admin"]


@dataclass(frozen=True)
class Exchanged:
    access_token: str
    expires_in: int
    workspace_id: str
    member_id: str
    created: bool


@lru_cache(maxsize=4)
def _load_keys(path: Path) -> tuple[Any, ...]:
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return tuple(jwt.PyJWK(k).key for k in json.loads(text)["keys"])
    blocks = text.split("-----END PUBLIC KEY-----")
    return tuple(
        load_pem_public_key((b + "-----END PUBLIC KEY-----").encode())
        for b in blocks
        if "BEGIN PUBLIC KEY" in b
    )


def verify_identity(token: str, settings: Settings) -> dict[str, Any]:
    if not (settings.moltbook_issuer and settings.moltbook_public_keys):
        raise DomainError(
            "identity exchange is not configured on this server",
            code="exchange_not_configured",
            status=501,
        )
    last_error: Exception | None = None
    for key in _load_keys(settings.moltbook_public_keys):
        try:
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=settings.moltbook_issuer,
                audience=settings.moltbook_audience,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": settings.moltbook_audience is not None,
                },
            )
        except jwt.InvalidSignatureError as exc:
            last_error = exc  # try the next key: issuers rotate keys
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(
                f"identity token rejected: {exc}", code="invalid_identity_token"
            ) from exc
    raise Unauthenticated(f"identity token rejected: {last_error}", code="invalid_identity_token")


async def exchange(
    session: AsyncSession, token: str, settings: Settings, catalog: Catalog
) -> Exchanged:
    claims = verify_identity(token, settings)
    subject = f"{claims['iss']}|{claims['sub']}"
    repo = WorkspaceRepository(session)
    member = await repo.member_by_subject(subject)
    created = member is None
    if member is None:
        label = str(claims.get("name") or claims["sub"])[:60]
        _, member = await WorkspaceService(session, catalog).create(
            f"moltbook-{claims['sub']}"[:100],
            plan=settings.moltbook_plan,
            owner_name=label,
            owner_subject=subject,
        )
    access = tokens.issue_access_token(
        member_id=member.id,
        workspace_id=member.workspace_id,
        scopes=AGENT_SCOPES,
        mode=settings.moltbook_key_mode,
        signing_key=settings.signing_key,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    return Exchanged(
        access_token=access,
        expires_in=settings.access_token_ttl_seconds,
        workspace_id=member.workspace_id,
        member_id=member.id,
        created=created,
    )
