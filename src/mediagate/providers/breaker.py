"""A circuit breaker per provider (and per BYOK workspace), kept in process memory.

closed -> (``failures`` provider faults in a row) -> open -> (``cooldown`` passes) ->
half-open: one probe request goes through; its success closes the breaker, its failure opens
it again. Only provider faults count (429, 5xx, timeouts, auth, failed tasks); a request the
provider refused as bad or unsafe says nothing about the provider's health.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mediagate.clock import Clock


@dataclass
class CircuitBreaker:
    failures: int
    cooldown_seconds: float
    clock: Clock
    state: str = "closed"
    _count: int = 0
    _opened_at: float = 0.0
    _probing: bool = field(default=False, repr=False)

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open":
            if self._now() - self._opened_at < self.cooldown_seconds:
                return False
            self.state = "half_open"
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self.state, self._count, self._probing = "closed", 0, False

    def failure(self) -> None:
        self._count += 1
        if self.state == "half_open" or self._count >= self.failures:
            self.state, self._opened_at, self._probing = "open", self._now(), False

    def _now(self) -> float:
        return self.clock.now().timestamp()


class Breakers:
    def __init__(self, failures: int, cooldown_seconds: float, clock: Clock) -> None:
        self._failures = failures
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._by_key: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, provider: str, owner: str = "platform") -> CircuitBreaker:
        key = (provider, owner)
        if key not in self._by_key:
            self._by_key[key] = CircuitBreaker(self._failures, self._cooldown, self._clock)
        return self._by_key[key]
