"""``Prefer: wait[=N]`` (RFC 7240) on job-creating endpoints: hold the response until the job
ends or N seconds pass. One code path for every surface: create, then wait for the end."""

from __future__ import annotations

from mediagate.errors import InvalidRequest

MAX_WAIT_SECONDS = 300
DEFAULT_WAIT_SECONDS = 60


def wait_seconds(prefer: str | None) -> int | None:
    """The wait the client asked for, or None. ``wait`` alone means 60 s; above 300 is refused."""
    if not prefer:
        return None
    for preference in prefer.split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        if not value:
            return DEFAULT_WAIT_SECONDS
        if not value.isdigit() or not 1 <= int(value) <= MAX_WAIT_SECONDS:
            raise InvalidRequest(
                f"Prefer: wait must be 1-{MAX_WAIT_SECONDS} seconds",
                code="invalid_prefer",
                field="Prefer",
            )
        return int(value)
    return None
