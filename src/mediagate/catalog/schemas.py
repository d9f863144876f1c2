"""The shape of ``catalog.json`` (validated on load, so a bad operator file fails at start-up)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Product = Literal["image", "video", "music", "agent", "avatar"]
InputKind = Literal["text", "image"]


class Route(BaseModel):
    """One way to serve a model: a provider, its model name, and how our parameters map."""

    provider: str
    upstream: str
    # The provider's model for requests that carry input images, where it differs.
    image_upstream: str | None = None
    # Provider field -> how to fill it from our units (see ``providers.mapping``).
    params: dict[str, object] = Field(default_factory=dict)
    # The resolutions this route delivers, where it offers fewer than the model; a request for
    # another one skips the route rather than paying for a resolution it would not get.
    resolutions: list[str] | None = None

    def delivers(self, resolution: object) -> bool:
        return self.resolutions is None or resolution is None or resolution in self.resolutions

    def upstream_for(self, has_images: bool) -> str:
        return self.image_upstream if has_images and self.image_upstream else self.upstream


class Model(BaseModel):
    id: str
    product: Product
    credits: int = Field(ge=0)
    notes: str = ""
    inputs: list[InputKind] = Field(default_factory=lambda: list[InputKind](["text"]))
    resolutions: list[str] = Field(default_factory=list)
    durations: list[int] = Field(default_factory=list)
    base_duration: int | None = None
    # Absolute per-unit prices at a resolution (e.g. veo3 1080p = 350) ...
    resolution_credits: dict[str, int] = Field(default_factory=dict)
    # ... or multipliers of the base price (e.g. ~1.8x at 1080p).
    resolution_multipliers: dict[str, float] = Field(default_factory=dict)
    image_to_video_multiplier: float | None = None
    routes: list[Route] = Field(default_factory=list)
    # Per-model overrides of the catalog's job defaults.
    timeout_seconds: int | None = Field(None, gt=0)
    max_attempts: int | None = Field(None, ge=1)

    @property
    def accepts_text(self) -> bool:
        return "text" in self.inputs

    @property
    def needs_image(self) -> bool:
        return self.inputs == ["image"]


class ProductInfo(BaseModel):
    unit: str
    counts: list[int] = Field(default_factory=lambda: [1])
    default_resolution: str | None = None
    default_aspect_ratio: str | None = None
    default_duration: int | None = None


class Plan(BaseModel):
    requests_per_minute: int
    byok: bool = False
    # None means unlimited.
    daily_quotas: dict[str, int | None] = Field(default_factory=dict)


class JobDefaults(BaseModel):
    max_attempts: int = 3
    timeout_seconds: int = 600


class Catalog(BaseModel):
    price_version: str
    products: dict[Product, ProductInfo]
    models: list[Model]
    plans: dict[str, Plan]
    jobs: JobDefaults = Field(default_factory=JobDefaults)

    def timeout_for(self, model: Model) -> int:
        return model.timeout_seconds or self.jobs.timeout_seconds

    def max_attempts_for(self, model: Model) -> int:
        return model.max_attempts or self.jobs.max_attempts

    def model(self, model_id: str) -> Model | None:
        return self._by_id().get(model_id)

    def _by_id(self) -> dict[str, Model]:
        cached: dict[str, Model] | None = getattr(self, "_index", None)
        if cached is None:
            cached = {m.id: m for m in self.models}
            object.__setattr__(self, "_index", cached)
        return cached

    def memo(self) -> dict[Any, Any]:
        """A dict that lives as long as this catalog, for answers derived from it alone (a
        loaded catalog never changes)."""
        memo: dict[Any, Any] | None = getattr(self, "_memo", None)
        if memo is None:
            memo = {}
            object.__setattr__(self, "_memo", memo)
        return memo
