"""This surface's errors: ``{"error": {"type", "code", "message", "param"}}``, in the style of
the API's ``req_`` ids and ``object`` fields."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from mediagate.surfaces.errors import FieldErrors

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def render_error(
    status: int, code: str, message: str, details: dict[str, Any], errors: FieldErrors | None
) -> JSONResponse:
    param = details.get("field")
    if errors:
        param = errors[0]["field"]
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return JSONResponse(
        {
            "error": {
                "type": _TYPES.get(status, "api_error"),
                "code": code,
                "message": message,
                "param": param,
            }
        },
        status_code=status,
    )
