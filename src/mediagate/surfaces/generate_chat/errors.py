"""This surface's errors: exactly ``{"error": "<descriptive message>", "code": <status>}``.

Its spec names 502 for an unavailable engine or provider, so our 503 ``model_unavailable`` is
reported as 502 here.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from mediagate.surfaces.errors import FieldErrors


def render_error(
    status: int, code: str, message: str, details: dict[str, Any], errors: FieldErrors | None
) -> JSONResponse:
    if status == 503 and code != "too_many_streams":
        status = 502
    if errors:
        message = "invalid parameters: " + "; ".join(
            f"{e['field']}: {e['message']}" for e in errors[:5]
        )
    return JSONResponse({"error": message, "code": status}, status_code=status)
