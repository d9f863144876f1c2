"""The builtin chat: a deterministic, offline assistant that knows this server.

No language model: it recognises a few intents by keyword in the last user message (what can you
do, what does a model cost, how do I call something, list the models) and answers from the live
catalog and route list. Earlier user messages give context to follow-ups such as "and for
video?" or "and at 4K?". It says plainly that it is the offline assistant.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mediagate.catalog.schemas import Catalog, Model, Product
from mediagate.chat.engines import ChatMessage
from mediagate.chat.knowledge import (
    FEATURES,
    Feature,
    ModelIndex,
    Route,
    best_routes,
    curl_line,
    duration_in,
    features_named,
    price_sentence,
    product_label,
    resolution_in,
    routes_at,
    routes_for,
    short_price,
    unit_credits,
    unit_name,
    words,
)

_PRICE = frozenset(
    {"cost", "price", "pricing", "priced", "credit", "expensive", "cheap", "cheaper", "cheapest"}
)
_HOWTO = frozenset({"call", "use", "using", "endpoint", "curl", "example", "route", "integrate"})
_HOWTO_PHRASES = ("how do", "how can", "how to", "how should", "how would", "show me how")
_LIST = frozenset({"which", "what", "available", "all", "show", "have", "offer", "support"})
_HELLO = frozenset({"hi", "hello", "hey", "hallo", "howdy", "greeting", "help", "feature"})
_HELLO_PHRASES = (
    "what can you",
    "what do you",
    "who are you",
    "what are you",
    "what is this",
    "capabilit",
    "good morning",
    "good evening",
)


@dataclass(frozen=True)
class _Question:
    text: str
    words: set[str]
    models: list[Model]
    features: list[Feature]
    resolution: str | None
    duration: int | None
    routes: list[Route]  # named by path

    @property
    def has_subject(self) -> bool:
        named = (self.models, self.features, self.resolution, self.duration, self.routes)
        return any(named)

    @property
    def intent(self) -> str | None:
        w, text = self.words, self.text
        if ("how much" in text or w & _PRICE) and "balance" not in w:
            return "price"
        if "list" in w or ("model" in w and w & _LIST):
            return "list"
        if self.routes or w & _HOWTO or any(p in text for p in _HOWTO_PHRASES):
            return "howto"
        if w & _HELLO or any(p in text for p in _HELLO_PHRASES):
            return "hello"
        return None


class BuiltinChat:
    """Answers questions about this server from its catalog and routes, the same way every time.

    >>> chat = BuiltinChat(load_catalog(), [("POST", "/v1/generate", "Start a generation")])
    >>> await chat.reply([ChatMessage("user", "How much is nano banana pro?")])
    'nano-banana-pro costs 20 credits per image (1K, 2K); 4K costs 40. ...'
    """

    name = "builtin"

    def __init__(
        self, catalog: Catalog, routes: list[Route], *, base_url: str = "http://localhost:8000"
    ) -> None:
        self.catalog = catalog
        self.routes = list(routes)
        self.base_url = base_url
        self._models = ModelIndex(catalog)

    async def reply(self, messages: list[ChatMessage]) -> str:
        return self.answer(messages)

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        for chunk in re.findall(r"\S+\s*|\s+", self.answer(messages)):
            yield chunk
            await asyncio.sleep(0)  # a long answer should not hold the loop

    def answer(self, messages: list[ChatMessage]) -> str:
        asked = [m.content for m in messages if m.role == "user"]
        if not asked:
            return self._hello()
        question = self._parse(asked[-1])
        earlier = [self._parse(text) for text in reversed(asked[:-1])]
        intent = question.intent
        if intent is None and question.has_subject:
            # A follow-up ("and for video?") carries on what the last question asked.
            intent = next((e.intent for e in earlier if e.intent), None)
            if intent in (None, "hello"):
                intent = "price" if question.models else "list" if question.features else None
        carried: list[Model] = []
        if not question.models and not question.features:
            carried = next((e.models for e in earlier if e.models), [])
        if intent == "price":
            return self._price(question, question.models or carried)
        if intent == "list":
            return self._list(question)
        if intent == "howto":
            return self._howto(question, question.models or carried)
        if intent == "hello":
            return self._hello()
        return self._fallback()

    def _parse(self, text: str) -> _Question:
        lowered = text.lower()
        found = words(lowered)
        return _Question(
            text=lowered,
            words=set(found),
            models=self._models.find(lowered),
            features=features_named(found),
            resolution=resolution_in(lowered),
            duration=duration_in(lowered),
            routes=routes_at(self.routes, lowered),
        )

    def _hello(self) -> str:
        lines = [
            "Hello! I am Mediagate's builtin assistant. I run offline, with no language model: "
            "I answer from this server's live catalog and route list.",
        ]
        offered = []
        for feature in FEATURES:
            serving = routes_for(self.routes, feature.path_words)[:2]
            count = len(self._of_product(feature.product)) if feature.product else 0
            if not serving or (feature.product and not count):
                continue
            where = ", ".join(f"{method} {path}" for method, path, _ in serving)
            models = f"{count} model{'s' if count != 1 else ''}, " if count else ""
            offered.append(f"- {feature.label}: {models}{where}")
        if offered:
            lines += ["This server offers:", *offered]
        else:
            lines.append("I cannot see any generation routes on this server.")
        model, call = self._examples()
        lines.append(
            f'Ask me what a model costs ("how much is {model}?"), how to call an endpoint '
            f'("how do I call {call}?"), or to list the models.'
        )
        return "\n".join(lines)

    def _price(self, question: _Question, models: list[Model]) -> str:
        lines: list[str] = []
        for model in models[:6]:
            lines += self._model_price(model, question.resolution, question.duration)
        if not models:
            products = [f.product for f in question.features if f.product]
            for product in products:
                lines.append(f"{product_label(product).capitalize()} prices:")
                lines += [f"- {price_sentence(self.catalog, m)}" for m in self._of_product(product)]
            if not products:
                lines += self._price_overview(question)
        footer = f"Prices are from the catalog, price_version {self.catalog.price_version}."
        estimate = routes_for(self.routes, ["estimate"])
        if estimate:
            footer += f" {estimate[0][0]} {estimate[0][1]} prices an exact request."
        return "\n".join([*lines, footer])

    def _model_price(self, model: Model, resolution: str | None, duration: int | None) -> list[str]:
        if not resolution and not duration:
            return [price_sentence(self.catalog, model) + "."]
        missing = []
        if resolution and resolution not in model.resolutions:
            missing.append(f"{resolution} (it offers {', '.join(model.resolutions) or 'one'})")
        if duration and model.durations and duration not in model.durations:
            lengths = ", ".join(f"{d} s" for d in model.durations)
            missing.append(f"{duration} s (it offers {lengths})")
        if missing:
            return [
                f"{model.id} does not offer {' or '.join(missing)}.",
                price_sentence(self.catalog, model) + ".",
            ]
        at = f" at {resolution}" if resolution else ""
        credits = unit_credits(model, resolution, duration)
        unit = unit_name(self.catalog, model, duration)
        return [f"{model.id}{at} costs {credits} credits per {unit}."]

    def _price_overview(self, question: _Question) -> list[str]:
        named = [f.label for f in question.features]
        lines = [
            f"The catalog has no per-model credit price for {' or '.join(named)}."
            if named
            else "I did not find a model name in that question."
        ]
        lines.append("Prices by product:")
        for product, info in self.catalog.products.items():
            credits = sorted({m.credits for m in self._of_product(product)})
            if credits:
                span = f"{credits[0]}" if len(credits) == 1 else f"{credits[0]}-{credits[-1]}"
                lines.append(f"- {product_label(product)}: {span} credits per {info.unit}")
        example = self.catalog.models[0].id if self.catalog.models else "a model"
        lines.append(f'Ask about one model, e.g. "how much is {example}?"')
        return lines

    def _list(self, question: _Question) -> str:
        products = [f.product for f in question.features if f.product]
        products = products or [p for p in self.catalog.products if self._of_product(p)]
        version = self.catalog.price_version
        lines = [f"Models by product (credits per unit, price_version {version}):"]
        for product in products:
            unit = self.catalog.products[product].unit
            entries = [short_price(m) for m in self._of_product(product)]
            lines.append(f"- {product_label(product)} (per {unit}): {', '.join(entries)}")
        return "\n".join(lines)

    def _howto(self, question: _Question, models: list[Model]) -> str:
        matched = question.routes
        if not matched:
            # A feature's own words name it; the words of its routes find it.
            wanted = set(question.words)
            for feature in question.features:
                wanted -= feature.words
            for feature in question.features:
                wanted |= feature.path_words
            if models:
                wanted.add("generate")
            matched = best_routes(self.routes, wanted)
        if not matched:
            main = [f"- {m} {p}: {s}" for m, p, s in self.routes if m == "POST"][:8]
            return "\n".join(
                [
                    "I do not know an endpoint for that. The main ones on this server:",
                    *main,
                    "Every endpoint, with its request fields, is in the OpenAPI document at "
                    "/openapi.json.",
                ]
            )
        model = next(iter(models), None)
        for feature in question.features:
            if model is None and feature.product:
                model = next(iter(self._of_product(feature.product)), None)
        lines = []
        for route in matched[:3]:
            method, path, summary = route
            lines.append(f"{method} {path}" + (f": {summary}" if summary else ""))
            lines.append(f"  {curl_line(route, self.base_url, model)}")
        lines.append(
            "Put an API key in MEDIAGATE_KEY; every field is in the OpenAPI document at "
            "/openapi.json."
        )
        return "\n".join(lines)

    def _fallback(self) -> str:
        model, call = self._examples()
        return "\n".join(
            [
                "I am this server's builtin assistant, running offline with a fixed skill set "
                "and no language model, so I cannot answer that. I can tell you what this server "
                "can do, what a model costs, how to call an endpoint, and which models there are.",
                "Try:",
                '- "What can you do?"',
                f'- "How much does {model} cost?"',
                f'- "How do I call {call}?"',
                '- "List the video models"',
            ]
        )

    def _examples(self) -> tuple[str, str]:
        """A model and a route to use in suggestions, from this catalog and route list."""
        model = next((m.id for m in self.catalog.models), "a model")
        posts = routes_for(self.routes, ["generate"]) or [r for r in self.routes if r[0] == "POST"]
        return model, (f"{posts[0][0]} {posts[0][1]}" if posts else "an endpoint")

    def _of_product(self, product: Product | None) -> list[Model]:
        return [m for m in self.catalog.models if m.product == product]
