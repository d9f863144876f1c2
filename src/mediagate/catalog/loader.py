"""Loads the catalog: the packaged file, or the operator's file when configured."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from mediagate.catalog.schemas import Catalog

PACKAGED = Path(__file__).with_name("catalog.json")


@lru_cache(maxsize=4)
def load_catalog(path: Path | None = None) -> Catalog:
    return Catalog.model_validate_json((path or PACKAGED).read_text())
