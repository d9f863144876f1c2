"""The development bootstrap: a ``default`` workspace, its owner and a sandbox key, once."""

from __future__ import annotations

from dataclasses import dataclass

from mediagate.auth.service import ApiKeyService
from mediagate.catalog.loader import load_catalog
from mediagate.config import Settings
from mediagate.db.database import Database
from mediagate.workspaces.repository import WorkspaceRepository
from mediagate.workspaces.service import WorkspaceService

WORKSPACE = "default"
PLAN = "pro"
GRANT = 1000


@dataclass(frozen=True)
class Bootstrapped:
    api_key: str
    created_workspace: bool
    created_key: bool


async def bootstrap(settings: Settings) -> Bootstrapped:
    """Idempotent: a second run reuses the workspace and the key saved in the data dir."""
    key_file = settings.data_dir / "dev-api-key"
    db = Database(settings.resolved_database_url)
    try:
        async with db.writer() as session:
            workspace = await WorkspaceRepository(session).by_name(WORKSPACE)
            created_workspace = workspace is None
            if workspace is None:
                workspace, _ = await WorkspaceService(
                    session, load_catalog(settings.catalog_path)
                ).create(WORKSPACE, plan=PLAN, credits=GRANT)
            if key_file.exists():
                return Bootstrapped(key_file.read_text().strip(), created_workspace, False)
            _, secret = await ApiKeyService(session).create(
                workspace.id, mode="sandbox", name="dev (bootstrap)"
            )
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secret + "\n")
        key_file.chmod(0o600)
        return Bootstrapped(secret, created_workspace, True)
    finally:
        await db.dispose()
