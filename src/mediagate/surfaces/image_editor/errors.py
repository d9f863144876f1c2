"""This surface's errors: exactly ``{"success": false, "error": "<message>"}``.

Its spec lists 500 for a failing provider, so our 502/503 (provider or model unavailable) are
reported as 500 here; 413 (an upload over the size limit) keeps its own status.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from mediagate.surfaces.errors import FieldErrors


def render_error(
    status: int, code: str, message: str, details: dict[str, Any], errors: FieldErrors | None
) -> JSONResponse:
    if status in (502, 503) and code != "too_many_streams":
        status = 500
    if errors:
        message = "invalid request: " + "; ".join(
            f"{e['field']}: {e['message']}" for e in errors[:5]
        )
    return JSONResponse({"success": False, "error": message}, status_code=status)
