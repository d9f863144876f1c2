"""The models and the migrations agree, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediagate.db import migrate
from tests.conftest import database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_models_match_migrations(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url:
        migrate.check(url)  # raises when autogenerate would find a difference
        migrate.upgrade(url)  # a second upgrade is a no-op
