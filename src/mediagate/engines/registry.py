"""Chooses the engine for a job: sandbox keys use the builtin engine; live keys walk the
model's routes in order and take the first provider that is configured."""

from __future__ import annotations

from mediagate.catalog.schemas import Model
from mediagate.engines.base import Engine
from mediagate.errors import Unavailable


class EngineRegistry:
    def __init__(self, engines: list[Engine]) -> None:
        self._engines = {e.name: e for e in engines}

    def get(self, name: str) -> Engine:
        return self._engines[name]

    def resolve(self, model: Model, mode: str) -> str:
        if mode == "sandbox":
            for offline in self._engines.values():
                if offline.offline and offline.serves(model):
                    return offline.name
            raise Unavailable(
                f"{model.id} has no offline engine yet, so sandbox keys cannot run it",
                model=model.id,
            )
        for route in model.routes:
            candidate = self._engines.get(route.provider)
            if candidate is not None and candidate.serves(model):
                return route.provider
        providers = sorted({r.provider for r in model.routes})
        raise Unavailable(
            f"{model.id} is unavailable: none of its providers ({', '.join(providers)}"
            ") is configured on this server",
            model=model.id,
            providers=providers,
        )

    def available(self, model: Model, mode: str) -> bool:
        try:
            self.resolve(model, mode)
        except Unavailable:
            return False
        return True
