"""API key use cases and bearer authentication."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.auth import tokens
from mediagate.auth.keys import PREFIX_LENGTH, hash_secret, looks_like_key, new_secret
from mediagate.auth.models import ApiKey
from mediagate.auth.principal import MODES, SCOPES, Principal
from mediagate.auth.repository import ApiKeyRepository
from mediagate.clock import utcnow
from mediagate.errors import InvalidRequest, NotFound, Unauthenticated
from mediagate.workspaces.repository import WorkspaceRepository

if TYPE_CHECKING:
    from mediagate.db.database import Database


def parse_scopes(scopes: Iterable[str] | None) -> list[str]:
    """``None`` means every scope; anything unknown is refused rather than silently dropped."""
    if scopes is None:
        return list(SCOPES)
    chosen = [s.strip() for s in scopes if s.strip()]
    unknown = sorted(set(chosen) - set(SCOPES))
    if unknown or not chosen:
        raise InvalidRequest(f"unknown scopes {unknown}; choose from {list(SCOPES)}")
    return sorted(set(chosen), key=SCOPES.index)


class ApiKeyService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = ApiKeyRepository(session)
        self.workspaces = WorkspaceRepository(session)

    async def create(
        self,
        workspace_id: str,
        *,
        member_id: str | None = None,
        scopes: Iterable[str] | None = None,
        mode: str = "live",
        name: str = "",
    ) -> tuple[ApiKey, str]:
        """Make a key and return it with its secret, which is never retrievable again."""
        if mode not in MODES:
            raise InvalidRequest(f"mode must be one of {list(MODES)}")
        if member_id is None:
            owner = await self.workspaces.owner(workspace_id)
            if owner is None:
                raise NotFound("workspace has no owner to own the key")
            member_id = owner.id
        else:
            member = await self.workspaces.member(member_id)
            if member is None or member.workspace_id != workspace_id:
                raise NotFound("no such member in this workspace", code="member_not_found")
        secret = new_secret(mode)
        key = await self.repo.add(
            ApiKey(
                workspace_id=workspace_id,
                member_id=member_id,
                name=name[:200],
                prefix=secret[:PREFIX_LENGTH],
                key_hash=hash_secret(secret),
                scopes=parse_scopes(scopes),
                mode=mode,
            )
        )
        return key, secret

    async def list(self, workspace_id: str) -> Sequence[ApiKey]:
        return await self.repo.for_workspace(workspace_id)

    async def revoke(self, workspace_id: str, ident: str) -> ApiKey:
        key = await self.repo.by_id_or_prefix(workspace_id, ident)
        if key is None:
            raise NotFound(f"no key {ident!r} in this workspace")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
        return key


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or raise 401."""
    if not authorization:
        raise Unauthenticated(
            "missing Authorization header; send 'Bearer <api key>'", code="missing_api_key"
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization must be 'Bearer <api key>'", code="invalid_api_key")
    return token


async def authenticate(
    session: AsyncSession, authorization: str | None, signing_key: bytes
) -> Principal:
    """Resolve an ``Authorization: Bearer`` header to a principal, or raise 401."""
    token = bearer_token(authorization)
    if looks_like_key(token):
        return await _key_principal(session, hash_secret(token))
    return await _access_token_principal(session, token, signing_key)


async def authenticate_cached(
    db: Database, authorization: str | None, signing_key: bytes
) -> Principal:
    """``authenticate``, with API-key principals served from ``db.principals`` while the
    auth epoch stands still; access tokens and failures always go to the database."""
    token = bearer_token(authorization)
    if not looks_like_key(token):
        async with db.reader() as session:
            return await _access_token_principal(session, token, signing_key)
    key_hash = hash_secret(token)
    # Read before the load: a change that commits meanwhile moves the epoch past this entry.
    epoch = await db.auth_epoch()
    if epoch is not None and (cached := db.principals.get(key_hash, epoch)) is not None:
        return cached
    async with db.reader() as session:
        principal = await _key_principal(session, key_hash)
    if epoch is not None:
        db.principals.put(key_hash, epoch, principal)
    return principal


async def _key_principal(session: AsyncSession, key_hash: str) -> Principal:
    found = await ApiKeyRepository(session).with_workspace_by_hash(key_hash)
    if found is None or found[0].revoked_at is not None:
        raise Unauthenticated("invalid or revoked API key", code="invalid_api_key")
    key, workspace, member = found
    return Principal(
        workspace_id=workspace.id,
        plan=workspace.plan,
        member_id=member.id,
        scopes=frozenset(key.scopes),
        mode=key.mode,
        api_key_id=key.id,
        permissions=frozenset(member.permissions),
    )


async def _access_token_principal(
    session: AsyncSession, token: str, signing_key: bytes
) -> Principal:
    try:
        claims = tokens.decode_access_token(token, signing_key)
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("invalid or expired access token", code="invalid_api_key") from exc
    found_member = await WorkspaceRepository(session).member_with_workspace(
        claims["sub"], claims["ws"]
    )
    if found_member is None:
        raise Unauthenticated(
            "the token's member or workspace no longer exists", code="invalid_api_key"
        )
    member, workspace = found_member
    return Principal(
        workspace_id=workspace.id,
        plan=workspace.plan,
        member_id=member.id,
        scopes=frozenset(claims["scopes"]),
        mode=claims["mode"],
        permissions=frozenset(member.permissions),
    )
