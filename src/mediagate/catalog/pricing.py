"""Credit arithmetic: one function prices an estimate, a hold and a charge alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mediagate.catalog.schemas import Catalog, Model
from mediagate.errors import InvalidRequest

# The keys of a request's ``units`` that ``resolve_units`` reads.
UNIT_NAMES = ("count", "resolution", "duration", "aspect_ratio")
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


def _pick(
    model: Model, name: str, value: object, allowed: Sequence[object], default: object
) -> Any:
    """``value`` (or ``default`` when absent) if it is one of ``allowed``; an empty ``allowed``
    means the model takes no such unit at all."""
    field_name = f"units.{name}"
    if not allowed:
        if value is not None:
            raise InvalidRequest(
                f"{model.id} takes no {name}", code="invalid_units", field=field_name
            )
        return None
    chosen = default if value is None else value
    if chosen is None:
        return None  # not asked for, and no default: the engine decides (e.g. the source's shape)
    if isinstance(chosen, bool) or chosen not in allowed:
        raise InvalidRequest(
            f"{field_name} must be one of {list(allowed)} for {model.id}",
            code="invalid_units",
            field=field_name,
            allowed=list(allowed),
        )
    return chosen


def resolve_units(
    catalog: Catalog, model: Model, raw: dict[str, object] | None, *, image_input: bool
) -> Units:
    """Fill defaults and refuse values the model does not offer, naming the allowed ones."""
    raw = raw or {}
    info = catalog.products[model.product]
    visual = model.product in ("image", "video")
    return Units(
        count=_pick(model, "count", raw.get("count"), info.counts, 1),
        resolution=_pick(
            model,
            "resolution",
            raw.get("resolution"),
            model.resolutions,
            info.default_resolution or next(iter(model.resolutions), None),
        ),
        duration=_pick(
            model,
            "duration",
            raw.get("duration"),
            model.durations,
            info.default_duration or next(iter(model.durations), None),
        ),
        # An image edit keeps its source's shape unless a ratio is asked for.
        aspect_ratio=_pick(
            model,
            "aspect_ratio",
            raw.get("aspect_ratio"),
            ASPECT_RATIOS if visual else (),
            None
            if image_input and model.product == "image"
            else info.default_aspect_ratio or "1:1",
        ),
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
