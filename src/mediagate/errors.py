"""Domain errors: each carries a machine-readable code, an HTTP status and details.

Surfaces render them once, in their own envelope; services never build HTTP responses.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details


# PostgreSQL cannot store U+0000 in text; both databases refuse it at the edge alike.
NUL_REFUSED = "text may not contain NUL (U+0000) characters"


class InvalidRequest(DomainError):
    code, status = "invalid_request", 400


class Unauthenticated(DomainError):
    code, status = "unauthorized", 401


class Forbidden(DomainError):
    code, status = "forbidden", 403


class NotFound(DomainError):
    code, status = "not_found", 404


class Conflict(DomainError):
    code, status = "conflict", 409


class InsufficientCredits(DomainError):
    code, status = "insufficient_credits", 402


class Unavailable(DomainError):
    code, status = "model_unavailable", 503


class PayloadTooLarge(DomainError):
    code, status = "payload_too_large", 413


class Unprocessable(DomainError):
    """Well-formed, but it cannot be done as asked (no key configured, a provider's refusal)."""

    code, status = "unprocessable", 422
