"""The clock seam: everything that asks for the time asks here, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to (for tests and simulations).

    >>> c = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)); c.advance(seconds=5).second
    5
    """

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, **delta: float) -> datetime:
        self._at += timedelta(**delta)
        return self._at


def utcnow() -> datetime:
    return datetime.now(UTC)
