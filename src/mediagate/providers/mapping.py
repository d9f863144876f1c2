"""Route parameter mapping: how our units become a provider's request fields.

Each catalog route carries ``params``, a map from the provider's field name to a spec:

- a literal (number, bool, list, object, or a string without braces) is sent as is;
- ``"{name}"`` sends our value ``name`` with its type (``"{count}"`` -> ``2``);
- a string mixing text and placeholders is formatted (``"{duration}s"`` -> ``"8s"``);
- ``{"from": "resolution", "map": {"1K": "1024x1024"}, "default": "auto"}`` translates a value
  through a table (a value missing from the table falls back to ``default``, or drops the field);
  ``"from": "{resolution} {aspect_ratio}"`` looks up several values at once (``"1080p 16:9"``).

The values: ``prompt``, ``count``, ``resolution``, ``aspect_ratio``, ``duration``,
``image_urls`` (the input images as data URLs), ``image_url`` (the first of them),
``image_count``. A field whose value is missing (no input image, no duration) is left out, so
one route serves both text-to-X and X-from-image requests.
"""

from __future__ import annotations

import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class MappingError(Exception):
    """A route names a value we do not have: an operator's catalog mistake."""


def values_for(prompt: str | None, units: dict[str, Any], image_urls: list[str]) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "count": units.get("count") or 1,
        "resolution": units.get("resolution"),
        "aspect_ratio": units.get("aspect_ratio"),
        "duration": units.get("duration"),
        "image_urls": image_urls or None,
        "image_url": image_urls[0] if image_urls else None,
        "image_count": len(image_urls),
    }


def map_params(spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The provider's fields for one request; fields whose value is missing are left out.

    >>> spec = {"n": "{count}", "size": {"from": "resolution", "map": {"1K": "1024"}},
    ...         "mode": "fast", "seconds": "{duration}"}
    >>> map_params(spec, {"count": 2, "resolution": "1K", "duration": None})
    {'n': 2, 'size': '1024', 'mode': 'fast'}
    """
    mapped: dict[str, Any] = {}
    for field, rule in spec.items():
        value = _resolve(rule, values)
        if value is not None:
            mapped[field] = value
    return mapped


def _resolve(rule: Any, values: dict[str, Any]) -> Any:
    if isinstance(rule, dict) and "from" in rule:
        # "from" names one value, or combines several: "{resolution} {aspect_ratio}".
        origin = rule["from"]
        source = _resolve(origin, values) if "{" in origin else _value(origin, values)
        table = rule.get("map")
        if table is None:
            return source if source is not None else rule.get("default")
        key = str(source) if source is not None else None
        if key is not None and key in table:
            return table[key]
        return rule.get("default")
    if not isinstance(rule, str) or "{" not in rule:
        return rule
    whole = _PLACEHOLDER.fullmatch(rule)
    if whole:
        return _value(whole.group(1), values)
    names = _PLACEHOLDER.findall(rule)
    if any(_value(name, values) is None for name in names):
        return None
    return _PLACEHOLDER.sub(lambda m: str(_value(m.group(1), values)), rule)


def _value(name: str, values: dict[str, Any]) -> Any:
    if name not in values:
        raise MappingError(f"route parameter names an unknown value {{{name}}}")
    return values[name]
