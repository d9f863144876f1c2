"""A stand-in for the worker's run context, for driving an offline engine directly."""

from __future__ import annotations

from typing import Any

from mediagate.engines.base import Output


class RecordingContext:
    """Records progress, serves the inputs it was given, and cancels on request: ``canceled()``
    turns true once ``cancel_at`` progress events were recorded."""

    def __init__(self, *, inputs: dict[str, bytes] | None = None, cancel_at: int | None = None):
        self.events: list[tuple[float, str, dict[str, Any] | None]] = []
        self.inputs = inputs or {}
        self.cancel_at = cancel_at
        self.loaded: list[str] = []

    async def progress(
        self,
        fraction: float,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        preview: Output | None = None,
    ) -> None:
        self.events.append((fraction, message, details))

    async def load_input(self, url: str) -> bytes:
        if url not in self.inputs:
            raise AssertionError(f"the engine asked for an input it was not given: {url}")
        self.loaded.append(url)
        return self.inputs[url]

    async def save_provider_task_id(self, task_id: str) -> None:
        raise AssertionError("an offline engine has no provider task")

    def canceled(self) -> bool:
        return self.cancel_at is not None and len(self.events) >= self.cancel_at
