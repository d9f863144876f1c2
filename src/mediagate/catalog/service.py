"""Catalog use cases shared by every surface: find a model, check a request against it, price it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediagate.catalog.pricing import UNIT_NAMES, Quote, Units, quote, resolve_units
from mediagate.catalog.schemas import Catalog, Model
from mediagate.errors import Conflict, InvalidRequest, NotFound


@dataclass(frozen=True)
class Priced:
    model: Model
    units: Units
    quote: Quote


class CatalogService:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def model(self, model_id: str) -> Model:
        model = self.catalog.model(model_id)
        if model is None:
            raise NotFound(
                f"unknown model {model_id!r}; GET /v1/models/list lists them",
                code="model_not_found",
                model=model_id,
            )
        return model

    def check_price_version(self, price_version: str | None) -> None:
        if price_version is not None and price_version != self.catalog.price_version:
            raise Conflict(
                f"price_version {price_version!r} is stale; the current one is "
                f"{self.catalog.price_version!r}",
                code="price_version_mismatch",
                current_price_version=self.catalog.price_version,
            )

    def price(
        self,
        model_id: str,
        *,
        product: str | None,
        units: dict[str, Any] | None,
        input_count: int,
        prompt: str | None,
        require_prompt: bool,
        price_version: str | None,
    ) -> Priced:
        """Validate a generation request against the catalog and price it.

        An accepted request's answer is remembered: it depends on nothing but these arguments
        and the catalog, and clients send the same few combinations over and over (every
        submit prices, and pricing cost more than the rest of a submit's checks). Refusals are
        not remembered, so the memo only ever holds combinations the catalog offers."""
        # The key: the units pricing reads, each with its type (1 and 1.0 are equal keys, not
        # equal requests), and what the checks below look at.
        raw = units or {}
        values = tuple((type(raw.get(name)), raw.get(name)) for name in UNIT_NAMES)
        key: tuple[Any, ...] | None = (
            "price",
            model_id,
            product,
            values,
            input_count > 0,
            require_prompt and not prompt,
        )
        try:
            hash(key)
        except TypeError:  # a unit value that cannot be a dict key: priced each time
            key = None
        memo = self.catalog.memo()
        if key is not None and price_version in (None, self.catalog.price_version):
            priced: Priced | None = memo.get(key)
            if priced is not None:
                return priced
        self.check_price_version(price_version)
        model = self.model(model_id)
        if product is not None and product != model.product:
            raise InvalidRequest(
                f"{model.id} is a {model.product} model, not {product}",
                code="product_mismatch",
                field="product",
            )
        if input_count and "image" not in model.inputs:
            raise InvalidRequest(
                f"{model.id} takes no input images",
                code="invalid_request",
                field="input_image_urls",
            )
        if model.needs_image and not input_count:
            raise InvalidRequest(
                f"{model.id} needs at least one input image",
                code="invalid_request",
                field="input_image_urls",
            )
        if require_prompt and not input_count and not prompt:
            raise InvalidRequest(
                f"prompt is required for text-to-{model.product}",
                code="invalid_request",
                field="prompt",
            )
        resolved = resolve_units(self.catalog, model, units, image_input=input_count > 0)
        priced = Priced(model, resolved, quote(model, resolved))
        if key is not None:
            memo[key] = priced
        return priced
