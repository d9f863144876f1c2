"""The engine protocol: what a generation backend implements and what it may call back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mediagate.catalog.schemas import Model


@dataclass(frozen=True)
class Output:
    data: bytes
    mime_type: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


@dataclass(frozen=True)
class EngineResult:
    outputs: list[Output]
    # What was actually delivered, for the charge (e.g. fewer images than asked -> less).
    delivered_count: int
    info: dict[str, Any] = field(default_factory=dict)


class EngineError(Exception):
    """A failure the job records. ``retryable`` failures go back to the queue with backoff."""

    def __init__(
        self, message: str, *, code: str = "engine_error", retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class JobSpec:
    """The engine's view of a job: no database objects cross this seam."""

    id: str
    workspace_id: str
    model: Model
    prompt: str | None
    units: dict[str, Any]
    input_urls: list[str]
    params: dict[str, Any]
    provider_task_id: str | None = None
    mode: str = "live"


class RunContext(Protocol):
    async def progress(
        self,
        fraction: float,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        preview: Output | None = None,
    ) -> None: ...
    async def load_input(self, url: str) -> bytes: ...
    async def save_provider_task_id(self, task_id: str) -> None: ...
    def canceled(self) -> bool: ...


class Engine(Protocol):
    name: str
    # An offline engine runs on this machine with no upstream call, so sandbox keys may use it.
    offline: bool

    def serves(self, model: Model) -> bool: ...

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult: ...
