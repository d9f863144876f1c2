"""The ``mediagate`` command line: serve, run workers, migrate, and administer workspaces."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mediagate.auth.service import ApiKeyService
from mediagate.byok.service import ProviderKeyService
from mediagate.config import Settings
from mediagate.credits.service import CreditService
from mediagate.db import migrate
from mediagate.db.base import new_id
from mediagate.db.database import Database
from mediagate.errors import DomainError
from mediagate.memory import tune_allocator
from mediagate.workspaces.models import Member
from mediagate.workspaces.service import MemberService, WorkspaceService

app = typer.Typer(
    help="Mediagate: a self-hosted generative-media API server.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ws_app = typer.Typer(help="Workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="Credits.", no_args_is_help=True)
members_app = typer.Typer(help="Members and their permissions.", no_args_is_help=True)
byok_app = typer.Typer(help="The workspace's own provider keys (BYOK).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ws_app, name="workspaces")
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")
app.add_typer(members_app, name="members")
app.add_typer(byok_app, name="provider-keys")
console = Console()
T = TypeVar("T")

WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name")]
MemberArg = Annotated[str, typer.Argument(help="Member name or id")]
ProviderArg = Annotated[str, typer.Argument(help="openai, google, fal, kie or xai")]


def _run(work: Callable[[Settings, Database], Awaitable[T]]) -> T:
    """Run one administrative use case in a write transaction of its own."""
    settings = Settings()

    async def main() -> T:
        db = Database(settings.resolved_database_url)
        try:
            return await work(settings, db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


def _print_rows(header: tuple[str, ...], rows: Sequence[Sequence[object]]) -> None:
    """A table on a terminal; tab-separated lines when piped, so scripts can read it."""
    if console.is_terminal:
        table = Table(*header)
        for row in rows:
            table.add_row(*map(str, row))
        console.print(table)
        return
    for row in (header, *rows):
        typer.echo("\t".join(map(str, row)))


def _catalog(settings: Settings):  # type: ignore[no-untyped-def]
    from mediagate.catalog.loader import load_catalog

    return load_catalog(settings.catalog_path)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to the configured database."""
    settings = Settings()
    migrate.upgrade(settings.resolved_database_url)
    console.print("database is up to date")


@app.command()
def bootstrap() -> None:
    """Create the default workspace and a sandbox key once; print the key and an example."""
    from mediagate.bootstrap import bootstrap as run_bootstrap

    settings = Settings()
    migrate.upgrade(settings.resolved_database_url)
    result = asyncio.run(run_bootstrap(settings))
    base = f"http://{settings.host}:{settings.port}"
    state = "created" if result.created_key else "reused"
    console.print(f"sandbox API key ({state}, saved in {settings.data_dir / 'dev-api-key'}):")
    console.print(result.api_key, soft_wrap=True, highlight=False)
    console.print("try:", highlight=False)
    console.print(
        f"curl -s {base}/v1/generate -H 'Authorization: Bearer {result.api_key}' "
        '-H \'Content-Type: application/json\' -d \'{"model":"nano-banana-pro",'
        '"prompt":"a lighthouse at dawn","request_id":"demo-1"}\'',
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[bool, typer.Option(help="Run job workers in this process")] = True,
) -> None:
    """Migrate, then serve the API (with in-process workers unless --no-workers)."""
    import uvicorn

    from mediagate.app import create_app

    overrides: dict[str, object] = {"embedded_workers": workers}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    migrate.upgrade(settings.resolved_database_url)
    tune_allocator()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
    )


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Parallel jobs")] = None,
) -> None:
    """Run job workers in this process until SIGINT/SIGTERM."""
    from mediagate.jobs.worker import Worker
    from mediagate.runtime import Runtime
    from mediagate.webhooks.dispatcher import Dispatcher

    settings = Settings(embedded_workers=False)
    tune_allocator()

    async def main() -> None:
        runtime = Runtime.from_settings(settings)
        await runtime.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print(f"worker running on {settings.resolved_database_url.split('://')[0]}")
        dispatcher = Dispatcher(runtime, poll_seconds=settings.worker_poll_seconds)
        try:
            await asyncio.gather(
                Worker(runtime, concurrency=concurrency).run_until(stop), dispatcher.run_until(stop)
            )
        finally:
            await runtime.close()

    asyncio.run(main())


@ws_app.command("create")
def workspaces_create(
    name: str,
    plan: Annotated[str, typer.Option(help="free, pro or enterprise")] = "free",
    credits: Annotated[int, typer.Option(help="One-time credit grant")] = 0,
) -> None:
    """Create a workspace with an owner member."""

    async def work(settings: Settings, db: Database) -> str:
        async with db.writer() as session:
            workspace, _ = await WorkspaceService(session, _catalog(settings)).create(
                name, plan=plan, credits=credits
            )
            return workspace.id

    workspace_id = _run(work)
    console.print(f"workspace {name} ({plan}) created: {workspace_id}")


@ws_app.command("list")
def workspaces_list() -> None:
    """List workspaces with their plan and credits."""

    async def work(settings: Settings, db: Database) -> list[tuple[str, str, int, int]]:
        from mediagate.workspaces.repository import WorkspaceRepository

        async with db.reader() as session:
            rows = []
            for ws in await WorkspaceRepository(session).all():
                bal = await CreditService(session).balance(ws.id)
                rows.append((ws.name, ws.plan, bal.balance, bal.available))
            return rows

    _print_rows(("name", "plan", "balance", "available"), _run(work))


@keys_app.command("create")
def keys_create(
    workspace: WorkspaceOpt,
    scopes: Annotated[str | None, typer.Option(help="Comma-separated; default all")] = None,
    mode: Annotated[str, typer.Option(help="live or sandbox")] = "live",
    name: Annotated[str, typer.Option(help="A label")] = "",
    member: Annotated[
        str | None, typer.Option(help="Member name or id that owns the key; default the owner")
    ] = None,
) -> None:
    """Create an API key; the secret is printed once and never stored."""

    async def work(settings: Settings, db: Database) -> str:
        async with db.writer() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            owner = await MemberService(session).find(ws.id, member) if member else None
            _, secret = await ApiKeyService(session).create(
                ws.id,
                member_id=owner.id if owner else None,
                scopes=scopes.split(",") if scopes is not None else None,
                mode=mode,
                name=name,
            )
            return secret

    console.print(_run(work), soft_wrap=True, highlight=False)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOpt) -> None:
    """List a workspace's keys (prefix only; secrets are not stored)."""

    async def work(settings: Settings, db: Database) -> list[list[str]]:
        async with db.reader() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            return [
                [
                    k.id,
                    k.prefix + "…",
                    k.name,
                    k.mode,
                    ",".join(k.scopes),
                    "revoked" if k.revoked_at else "active",
                ]
                for k in await ApiKeyService(session).list(ws.id)
            ]

    _print_rows(("id", "prefix", "name", "mode", "scopes", "state"), _run(work))


@keys_app.command("revoke")
def keys_revoke(
    workspace: WorkspaceOpt, key: Annotated[str, typer.Argument(help="Key id or prefix")]
) -> None:
    """Revoke a key at once."""

    async def work(settings: Settings, db: Database) -> str:
        async with db.writer() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            return (await ApiKeyService(session).revoke(ws.id, key)).id

    console.print(f"revoked {_run(work)}")


@credits_app.command("grant")
def credits_grant(
    workspace: WorkspaceOpt,
    amount: int,
    note: Annotated[str, typer.Option(help="Why")] = "cli grant",
) -> None:
    """Grant credits to a workspace."""

    async def work(settings: Settings, db: Database) -> int:
        async with db.writer() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            service = CreditService(session)
            await service.grant(ws.id, amount, key=f"cli-grant:{new_id()}", note=note)
            return (await service.balance(ws.id)).balance

    console.print(f"granted {amount}; balance {_run(work)}")


@credits_app.command("balance")
def credits_balance(workspace: WorkspaceOpt) -> None:
    """Show balance, held and available credits."""

    async def work(settings: Settings, db: Database) -> tuple[int, int, int]:
        async with db.reader() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            bal = await CreditService(session).balance(ws.id)
            return bal.balance, bal.held, bal.available

    balance, held, available = _run(work)
    console.print(f"balance {balance}  held {held}  available {available}")


def _member_row(member: Member) -> tuple[str, str, str, str]:
    return member.id, member.name, member.role, ",".join(member.permissions) or "-"


@members_app.command("list")
def members_list(workspace: WorkspaceOpt) -> None:
    """List a workspace's members with their role and permissions."""

    async def work(settings: Settings, db: Database) -> list[tuple[str, str, str, str]]:
        async with db.reader() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            return [_member_row(m) for m in await MemberService(session).list(ws.id)]

    _print_rows(("id", "name", "role", "permissions"), _run(work))


@members_app.command("add")
def members_add(
    workspace: WorkspaceOpt,
    name: str,
    permissions: Annotated[
        str, typer.Option(help="Comma-separated: access_image_editor, manage_keys, manage_billing")
    ] = "",
) -> None:
    """Add a member; it has no permissions unless given."""

    async def work(settings: Settings, db: Database) -> str:
        async with db.writer() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            added = await MemberService(session).add(
                ws.id, name, permissions=permissions.split(",")
            )
            return added.id

    console.print(f"member {name} added: {_run(work)}")


def _change_permission(workspace: str, member: str, permission: str, *, grant: bool) -> str:
    async def work(settings: Settings, db: Database) -> str:
        async with db.writer() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            service = MemberService(session)
            change = service.grant if grant else service.revoke
            changed = await change(ws.id, member, permission)
            return ",".join(changed.permissions) or "-"

    return _run(work)


@members_app.command("grant")
def members_grant(workspace: WorkspaceOpt, member: MemberArg, permission: str) -> None:
    """Give a member a permission."""
    console.print(f"{member}: {_change_permission(workspace, member, permission, grant=True)}")


@members_app.command("revoke")
def members_revoke(workspace: WorkspaceOpt, member: MemberArg, permission: str) -> None:
    """Take a permission from a member."""
    console.print(f"{member}: {_change_permission(workspace, member, permission, grant=False)}")


@byok_app.command("set")
def provider_keys_set(
    workspace: WorkspaceOpt,
    provider: ProviderArg,
    key: Annotated[
        str, typer.Argument(help="The provider's API key, stored encrypted; - reads stdin")
    ],
) -> None:
    """Set or replace the workspace's key for a provider (enabled)."""
    if key == "-":  # keeps the key out of shell history and the process list
        key = sys.stdin.readline().strip()

    async def work(settings: Settings, db: Database) -> tuple[str, bool]:
        async with db.writer() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            saved, created = await ProviderKeyService(session, settings).set(ws.id, provider, key)
            return saved.key_last4, created

    last4, created = _run(work)
    console.print(f"{provider} key …{last4} {'set' if created else 'replaced'}")


@byok_app.command("list")
def provider_keys_list(workspace: WorkspaceOpt) -> None:
    """List the workspace's provider keys (last four characters only)."""

    async def work(settings: Settings, db: Database) -> list[tuple[str, str, str, str, str]]:
        async with db.reader() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            return [
                (
                    k.provider,
                    "…" + k.key_last4,
                    "enabled" if k.enabled else "disabled",
                    k.created_at.isoformat(),
                    k.updated_at.isoformat(),
                )
                for k in await ProviderKeyService(session, settings).list(ws.id)
            ]

    _print_rows(("provider", "key", "state", "created", "updated"), _run(work))


def _provider_key_change(workspace: str, provider: str, change: str) -> None:
    async def work(settings: Settings, db: Database) -> None:
        async with db.writer() as session:
            ws = await WorkspaceService(session, _catalog(settings)).get_by_name(workspace)
            service = ProviderKeyService(session, settings)
            if change == "deleted":
                await service.delete(ws.id, provider)
            else:
                await service.set_enabled(ws.id, provider, change == "enabled")

    _run(work)
    console.print(f"{provider} key {change}")


@byok_app.command("enable")
def provider_keys_enable(workspace: WorkspaceOpt, provider: ProviderArg) -> None:
    """Let jobs use the workspace's key for a provider."""
    _provider_key_change(workspace, provider, "enabled")


@byok_app.command("disable")
def provider_keys_disable(workspace: WorkspaceOpt, provider: ProviderArg) -> None:
    """Keep the key but stop jobs from using it."""
    _provider_key_change(workspace, provider, "disabled")


@byok_app.command("delete")
def provider_keys_delete(workspace: WorkspaceOpt, provider: ProviderArg) -> None:
    """Delete the workspace's key for a provider."""
    _provider_key_change(workspace, provider, "deleted")
