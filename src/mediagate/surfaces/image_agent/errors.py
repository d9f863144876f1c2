"""This surface's errors: the native envelope with ``data: null`` and ``errors`` always a list
of ``{field, message}``."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from mediagate.surfaces.errors import FieldErrors


def render_error(
    status: int, code: str, message: str, details: dict[str, Any], errors: FieldErrors | None
) -> JSONResponse:
    if not errors:
        errors = [{"field": str(details.get("field", "")), "message": message}]
    return JSONResponse(
        {"code": status, "message": code, "data": None, "errors": errors}, status_code=status
    )
