"""The native envelope: ``{"code", "message", "data", "errors"}``; code 0 means success."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mediagate.surfaces.errors import FieldErrors

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    code: int = 0
    message: str = "ok"
    data: T
    errors: list[dict[str, str]] | None = None


def ok(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "ok", "data": data, "errors": None}


def render_error(
    status: int, code: str, message: str, details: dict[str, Any], errors: FieldErrors | None
) -> JSONResponse:
    """Errors keep the envelope: ``code`` is the HTTP status, ``message`` the machine code,
    ``data`` the details (``null`` for field validation errors, which go in ``errors``)."""
    data = None if errors else {"error": code, "detail": message, **details}
    return JSONResponse(
        {"code": status, "message": code, "data": data, "errors": errors}, status_code=status
    )
