"""Credit arithmetic: one function prices an estimate, a hold and a charge alike."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mediagate.catalog.schemas import Catalog, Model
from mediagate.errors import InvalidRequest

ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9")


@dataclass(frozen=True)
class Units:
    """What is being bought, after defaults were applied and limits checked."""

    count: int = 1
    resolution: str | None = None
    duration: int | None = None
    aspect_ratio: str | None = None
    image_input: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "resolution": self.resolution,
            "duration": self.duration,
            "aspect_ratio": self.aspect_ratio,
        }


@dataclass(frozen=True)
class Quote:
    credits: int
    unit_credits: int
    breakdown: list[dict[str, object]] = field(default_factory=list)


def resolve_units(
    catalog: Catalog, model: Model, raw: dict[str, object] | None, *, image_input: bool
) -> Units:
    """Fill defaults and refuse values the model does not offer, naming the allowed ones."""
    raw = dict(raw or {})
    info = catalog.products[model.product]
    count = raw.get("count") if raw.get("count") is not None else 1
    if not isinstance(count, int) or isinstance(count, bool) or count not in info.counts:
        raise InvalidRequest(
            f"units.count must be one of {info.counts}",
            code="invalid_units",
            field="units.count",
            allowed=info.counts,
        )

    resolution = raw.get("resolution")
    if model.resolutions:
        resolution = resolution or info.default_resolution or model.resolutions[0]
        if resolution not in model.resolutions:
            raise InvalidRequest(
                f"units.resolution must be one of {model.resolutions} for {model.id}",
                code="invalid_units",
                field="units.resolution",
                allowed=model.resolutions,
            )
    elif resolution is not None:
        raise InvalidRequest(
            f"{model.id} takes no resolution", code="invalid_units", field="units.resolution"
        )

    duration = raw.get("duration")
    if model.durations:
        duration = (
            duration if duration is not None else (info.default_duration or model.durations[0])
        )
        if (
            not isinstance(duration, int)
            or isinstance(duration, bool)
            or duration not in model.durations
        ):
            raise InvalidRequest(
                f"units.duration must be one of {model.durations} seconds for {model.id}",
                code="invalid_units",
                field="units.duration",
                allowed=model.durations,
            )
    elif duration is not None:
        raise InvalidRequest(
            f"{model.id} takes no duration", code="invalid_units", field="units.duration"
        )

    aspect = raw.get("aspect_ratio")
    if model.product in ("image", "video"):
        aspect = aspect or info.default_aspect_ratio or "1:1"
        if aspect not in ASPECT_RATIOS:
            raise InvalidRequest(
                f"units.aspect_ratio must be one of {list(ASPECT_RATIOS)}",
                code="invalid_units",
                field="units.aspect_ratio",
                allowed=list(ASPECT_RATIOS),
            )
    elif aspect is not None:
        raise InvalidRequest(
            f"{model.id} takes no aspect_ratio", code="invalid_units", field="units.aspect_ratio"
        )
    return Units(
        count=count,
        resolution=resolution,  # type: ignore[arg-type]
        duration=duration,
        aspect_ratio=aspect,  # type: ignore[arg-type]
        image_input=image_input,
    )


def quote(model: Model, units: Units) -> Quote:
    """Price ``units`` of ``model``. Multipliers are applied in order and rounded up once."""
    breakdown: list[dict[str, object]] = [{"item": "base", "credits": model.credits}]
    unit = float(model.credits)
    if units.resolution in model.resolution_credits:
        unit = float(model.resolution_credits[units.resolution])
        breakdown.append({"item": f"resolution {units.resolution}", "credits": int(unit)})
    elif units.resolution in model.resolution_multipliers:
        factor = model.resolution_multipliers[units.resolution]
        unit *= factor
        breakdown.append({"item": f"resolution {units.resolution}", "multiplier": factor})
    if units.image_input and model.product == "video" and model.image_to_video_multiplier:
        unit *= model.image_to_video_multiplier
        breakdown.append({"item": "image-to-video", "multiplier": model.image_to_video_multiplier})
    if (
        model.product == "video"
        and units.duration
        and model.base_duration
        and units.duration > model.base_duration
    ):
        segments = math.ceil(units.duration / model.base_duration)
        unit *= segments
        breakdown.append({"item": f"duration {units.duration}s", "multiplier": segments})
    unit_credits = math.ceil(unit - 1e-9)
    if units.count != 1:
        breakdown.append({"item": "count", "multiplier": units.count})
    return Quote(credits=unit_credits * units.count, unit_credits=unit_credits, breakdown=breakdown)
