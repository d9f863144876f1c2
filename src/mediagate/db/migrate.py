"""Schema migrations, run programmatically (the CLI, the server start-up and the tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.set_main_option(
        "file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    return cfg


def _outside_event_loop(work: Callable[[], None]) -> None:
    """Alembic's async environment runs its own event loop, which cannot nest in a running
    one; from async code (tests, an embedding application) it runs on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        work()
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(work).result()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run again (Alembic records what it applied)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    _outside_event_loop(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str) -> None:
    """Take the database back to ``revision``."""
    _outside_event_loop(lambda: command.downgrade(alembic_config(url), revision))


def check(url: str) -> None:
    """Raise if the models and the migrations disagree (``alembic check``)."""
    _outside_event_loop(lambda: command.check(alembic_config(url)))
