"""Pricing through ``CatalogService``: remembered answers are the answers; refusals stay so."""

from __future__ import annotations

from typing import Any

import pytest

from mediagate.catalog.loader import load_catalog
from mediagate.catalog.service import CatalogService
from mediagate.errors import Conflict, InvalidRequest


def _price(service: CatalogService, units: dict[str, Any] | None = None, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "product": None,
        "units": units,
        "input_count": 0,
        "prompt": "a lighthouse",
        "require_prompt": True,
        "price_version": None,
    }
    return service.price("veo3", **{**args, **kw})


def test_a_remembered_price_is_the_price_of_a_fresh_catalog() -> None:
    service = CatalogService(load_catalog())
    units = {"resolution": "1080p", "duration": 8}
    first = _price(service, units)
    assert _price(service, dict(units)) is first  # the same request: answered from the memo
    fresh = _price(CatalogService(load_catalog()), units)
    assert (first.units, first.quote) == (fresh.units, fresh.quote)
    assert first.quote.credits == 350  # veo3 at 1080p
    # Anything pricing reads makes another entry.
    assert _price(service, units, input_count=1).quote != first.quote  # image-to-video
    assert _price(service, {**units, "resolution": "720p"}).quote.credits < 350


def test_refusals_are_never_remembered() -> None:
    catalog = load_catalog()
    service = CatalogService(catalog)
    _price(service)
    entries = len(catalog.memo())
    for _ in range(2):
        with pytest.raises(InvalidRequest):
            _price(service, {"resolution": "8K"})
        with pytest.raises(InvalidRequest):
            _price(service, prompt=None)
        # The same request as the remembered one, with a stale price version.
        with pytest.raises(Conflict):
            _price(service, price_version="2020-01-01-v0")
    assert len(catalog.memo()) == entries
    current = _price(service, price_version=catalog.price_version)
    assert current is _price(service)


def test_units_that_cannot_be_remembered_are_priced_each_time() -> None:
    service = CatalogService(load_catalog())
    with pytest.raises(InvalidRequest):
        _price(service, {"resolution": ["1080p"]})  # a list: not a dict key, and not offered
