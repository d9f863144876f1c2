"""What the builtin assistant knows: models found by name, prices in words, routes by topic.

Everything is read from the live catalog and route list handed in, so an operator's own catalog
or a new surface shows up in the answers without code changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mediagate.catalog.pricing import Units, quote
from mediagate.catalog.schemas import Catalog, Model, Product

Route = tuple[str, str, str]  # (method, path, summary)

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Words that name a kind of thing, not one model: "image to video" must not pick a model.
_GENERIC = frozenset({"text", "image", "video", "music", "to", "edit", "agent", "preview", "fast"})
_RESTATED_NOTE = re.compile(r"^(\w+ = \d+|per \w+)$")
# Words that say nothing about which endpoint is meant.
_NOISE_WORDS = (
    "a an and api call can curl do does endpoint example for get how i id in is it me my of on "
    "post request route should the this to use using v1 v2 v3 want what which with would"
)


@dataclass(frozen=True)
class Feature:
    """Something the server offers, the words that name it and the route words that serve it."""

    label: str
    words: frozenset[str]
    path_words: frozenset[str]
    product: Product | None = None


FEATURES = (
    Feature("images", frozenset({"image", "picture", "photo"}), frozenset({"generate"}), "image"),
    Feature("video", frozenset({"video", "clip", "movie"}), frozenset({"generate"}), "video"),
    Feature("music", frozenset({"music", "song"}), frozenset({"generate"}), "music"),
    Feature("chat", frozenset({"chat"}), frozenset({"chat"})),
    Feature("the image agent", frozenset({"agent"}), frozenset({"agent"}), "agent"),
    Feature("avatars", frozenset({"avatar"}), frozenset({"avatar"})),
    Feature("the image editor", frozenset({"editor", "edit"}), frozenset({"editor", "edit"})),
)


def stem(word: str) -> str:
    """Crude singular: enough to make "images" meet "image" and "jobs" meet "job"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def words(text: str) -> list[str]:
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())]


_NOISE = frozenset(words(_NOISE_WORDS))


def features_named(message_words: list[str]) -> list[Feature]:
    named = set(message_words)
    if "agent" in named:  # "image agent" is the agent, not images
        named.discard("image")
    return [f for f in FEATURES if f.words & named]


def routes_from_openapi(document: dict[str, Any]) -> list[Route]:
    """``(method, path, summary)`` of every operation in an OpenAPI document, in its order."""
    routes: list[Route] = []
    for path, operations in (document.get("paths") or {}).items():
        for method, operation in operations.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                routes.append((method.upper(), path, str(operation.get("summary") or "")))
    return routes


class ModelIndex:
    """Finds catalog models in free text: "veo 3", "Nano Banana Pro", "v4.5 plus", "seedance".

    Every model answers to its id with the separators taken out, to its id without a provider
    prefix, and to a distinctive word of its id; a prefix shared by several ids ("qwen") names
    them all.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._aliases: dict[str, list[Model]] = {}
        providers = {r.provider for m in catalog.models for r in m.routes}
        counts: dict[str, int] = {}  # how many ids have a word, or a provider prefix
        for model in catalog.models:
            head, _, rest = model.id.lower().partition("/")
            for part in set(re.findall(r"[a-z0-9]+", model.id.lower())):
                counts[part] = counts.get(part, 0) + 1
            if rest:
                counts[head + "/"] = counts.get(head + "/", 0) + 1
        for model in catalog.models:
            lowered = model.id.lower()
            self._add(_squash(lowered), model)
            head, _, rest = lowered.partition("/")
            if rest and not set(re.findall(r"[a-z0-9]+", rest)) <= _GENERIC:
                self._add(_squash(rest), model)
            if rest and counts[head + "/"] > 1:  # a family, not one model
                self._add(_squash(head), model)
            for part in re.findall(r"[a-z0-9]+", lowered):
                distinctive = len(part) >= 5 and counts[part] == 1
                if distinctive and part not in _GENERIC and part not in providers:
                    self._add(part, model)

    def _add(self, alias: str, model: Model) -> None:
        models = self._aliases.setdefault(alias, [])
        if model not in models:
            models.append(model)

    def find(self, text: str) -> list[Model]:
        """Models named in ``text``, in the order they are named; longer names win overlaps."""
        tokens = re.findall(r"[a-z0-9]+", text.lower())
        hits: list[tuple[int, int, list[Model]]] = []
        for start in range(len(tokens)):
            for end in range(start + 1, min(start + 6, len(tokens)) + 1):
                models = self._aliases.get("".join(tokens[start:end]))
                if models:
                    hits.append((start, end, models))
        hits.sort(key=lambda h: (-len("".join(tokens[h[0] : h[1]])), h[0]))
        taken: set[int] = set()
        chosen: list[tuple[int, list[Model]]] = []
        for start, end, models in hits:
            if not taken & set(range(start, end)):
                taken.update(range(start, end))
                chosen.append((start, models))
        found: list[Model] = []
        for _, models in sorted(chosen, key=lambda c: c[0]):
            found.extend(m for m in models if m not in found)
        return found


def _squash(text: str) -> str:
    return "".join(re.findall(r"[a-z0-9]+", text))


def resolution_in(text: str) -> str | None:
    """A resolution named in ``text``, spelled as the catalog spells it: "4K", "1080p"."""
    match = re.search(r"\b(\d{1,2})k\b|\b(\d{3,4})p\b", text.lower())
    if match is None:
        return None
    return f"{match.group(1)}K" if match.group(1) else f"{match.group(2)}p"


def duration_in(text: str) -> int | None:
    """A clip or track length named in ``text``: "12 s", "30s", "8 seconds"."""
    match = re.search(r"\b(\d{1,3})\s*(?:s|sec|secs|seconds?)\b", text.lower())
    return int(match.group(1)) if match else None


def unit_credits(model: Model, resolution: str | None, duration: int | None = None) -> int:
    """Credits for one unit, by the same arithmetic that charges."""
    return quote(model, Units(resolution=resolution, duration=duration)).unit_credits


def unit_name(catalog: Catalog, model: Model, duration: int | None = None) -> str:
    """What one unit of ``model`` is: "image", "8 s clip", "track"."""
    unit = catalog.products[model.product].unit
    length = duration or (model.base_duration if model.product == "video" else None)
    return f"{length} s {unit}" if length else unit


def price_sentence(catalog: Catalog, model: Model) -> str:
    """E.g. "nano-banana-pro costs 20 credits per image (1K, 2K); 4K costs 40"."""
    special = {**model.resolution_multipliers, **model.resolution_credits}
    plain = [r for r in model.resolutions if r not in special]
    text = f"{model.id} costs {model.credits} credits per {unit_name(catalog, model)}"
    if plain:
        text += f" ({', '.join(plain)})"
    elif model.product == "music" and model.durations:
        text += f" ({_or(f'{d}' for d in model.durations)} s)"
    for resolution in model.resolutions:
        if resolution in model.resolution_credits:
            text += f"; {resolution} costs {unit_credits(model, resolution)}"
        elif resolution in model.resolution_multipliers:
            factor = model.resolution_multipliers[resolution]
            text += f"; {resolution} costs {unit_credits(model, resolution)} ({factor:g}x)"
    if model.product == "video" and model.image_to_video_multiplier:
        text += f"; from an input image {model.image_to_video_multiplier:g}x"
    if model.product == "video" and model.base_duration and len(model.durations) > 1:
        text += f"; longer clips cost once per started {model.base_duration} s"
    notes = [n.strip() for n in model.notes.split(";") if n.strip()]
    extra = [n for n in notes if not _RESTATED_NOTE.match(n)]
    return text + (f" ({'; '.join(extra)})" if extra else "")


def _or(items: Iterable[str]) -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"


def product_label(product: Product) -> str:
    """How answers name a product: "images", "video", "image agent"."""
    for feature in FEATURES:
        if feature.product == product:
            return feature.label.removeprefix("the ")
    return product


def short_price(model: Model) -> str:
    """E.g. "nano-banana-pro 20 (4K 40)", for lists."""
    extra = [
        f"{r} {unit_credits(model, r)}"
        for r in model.resolutions
        if r in model.resolution_credits or r in model.resolution_multipliers
    ]
    return f"{model.id} {model.credits}" + (f" ({', '.join(extra)})" if extra else "")


def route_words(route: Route) -> set[str]:
    return set(words(route[1]))


def routes_for(routes: list[Route], path_words: Iterable[str]) -> list[Route]:
    """Routes whose path has one of ``path_words``, POSTs first (they are what one "calls")."""
    wanted = set(path_words)
    matching = [r for r in routes if route_words(r) & wanted]
    return sorted(matching, key=lambda r: r[0] != "POST")


def best_routes(routes: list[Route], wanted: set[str]) -> list[Route]:
    """The routes that share the most words with ``wanted`` (path words count thrice)."""
    query = wanted - _NOISE
    scored: list[tuple[int, int, int, Route]] = []
    for index, route in enumerate(routes):
        path = route_words(route) - _NOISE
        summary = {w for w in words(route[2]) if len(w) >= 4} - _NOISE
        score = 3 * len(path & query) + len(summary & query)
        if score:
            scored.append((-score, len(path), index, route))
    scored.sort()
    return [route for score, _, _, route in scored if score == scored[0][0]]


def routes_at(routes: list[Route], text: str) -> list[Route]:
    """Routes whose path appears literally in ``text`` (``/v1/jobs/abc`` finds the template)."""
    found: list[Route] = []
    for literal in re.findall(r"/[a-z0-9_\-/{}.]+", text.lower()):
        literal = literal.rstrip(".?!,")
        for route in routes:
            template = re.escape(route[1].lower())
            pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", template)
            if re.fullmatch(pattern, literal) and route not in found:
                found.append(route)
    return found


def curl_line(route: Route, base_url: str, model: Model | None) -> str:
    """A one-line ``curl`` skeleton for ``route``; ``model`` fills a generate body."""
    method, path, _ = route
    url = base_url.rstrip("/") + re.sub(r"\{([^}]*)\}", r"<\1>", path)
    parts = ["curl"] + ([] if method == "GET" else ["-X", method]) + [url]
    parts.append('-H "Authorization: Bearer $MEDIAGATE_KEY"')
    body: str | None = None
    path_words = route_words(route)
    if path == "/api/generate":
        body = json.dumps(
            {"prompt": "...", "type": "image", "aspect_ratio": "16:9"}, separators=(",", ":")
        )
    elif "generate" in path_words:
        fields = {"model": model.id if model else "<model>", "prompt": "...", "request_id": "1"}
        body = json.dumps(fields, separators=(",", ":"))
    elif "chat" in path_words and method == "POST":
        body = json.dumps({"message": "Hello"})
    elif method in ("POST", "PUT", "PATCH") and not re.search(r"\}/[^/{]+$", path):
        body = "{...}"  # an action on a resource (".../{id}/cancel") usually has no body
    if body is not None:
        parts += ["-H 'Content-Type: application/json'", f"-d '{body}'"]
    return " ".join(parts)
