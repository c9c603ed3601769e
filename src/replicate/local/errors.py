"""RFC 7807 problem+json errors, shaped like the real API's."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response

NOT_FOUND_DETAIL = "The requested resource could not be found."
UNAUTHENTICATED = {
    "title": "Unauthenticated",
    "detail": "You did not pass a valid authentication token",
    "status": 401,
}
INVALID_VERSION_TITLE = "Invalid version or not permitted"
INVALID_VERSION_DETAIL = (
    "The specified version does not exist (or perhaps you don't have permission to use it?)"
)
INPUT_VALIDATION_TITLE = "Input validation failed"


class ApiError(Exception):
    """An error that becomes a problem+json reply."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        media_type: str = "application/problem+json",
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.extra = extra or {}
        self.headers = headers or {}
        self.media_type = media_type

    def body(self) -> dict[str, Any]:
        """The JSON body: ``title`` (if any), ``detail``, ``status`` and extras."""
        out: dict[str, Any] = {}
        if self.title is not None:
            out["title"] = self.title
        out["detail"] = self.detail
        out["status"] = self.status
        out.update(self.extra)
        return out

    def response(self) -> Response:
        """Render as a Starlette response."""
        return problem(self.body(), self.status, self.headers, self.media_type)


def problem(
    body: dict[str, Any],
    status: int,
    headers: dict[str, str] | None = None,
    media_type: str = "application/problem+json",
) -> Response:
    """A problem+json response with a compact JSON body."""
    return Response(
        json.dumps(body, separators=(",", ":")) + "\n",
        status_code=status,
        headers=headers,
        media_type=media_type,
    )


def not_found(detail: str = NOT_FOUND_DETAIL) -> ApiError:
    """404 with the real API's detail text."""
    return ApiError(404, detail)


def invalid_version() -> ApiError:
    """422 for an unknown or forbidden version."""
    return ApiError(422, INVALID_VERSION_DETAIL, title=INVALID_VERSION_TITLE)


def input_validation(
    lines: list[str], invalid_fields: list[dict[str, str]] | None = None
) -> ApiError:
    """422 ``Input validation failed`` with one ``- ...`` line per problem."""
    extra: dict[str, Any] = {}
    if invalid_fields is not None:
        extra["invalid_fields"] = invalid_fields
    return ApiError(422, "\n".join(lines), title=INPUT_VALIDATION_TITLE, extra=extra)


def throttled(retry_after: int) -> ApiError:
    """429 with the real throttling body and ``Retry-After``."""
    return ApiError(
        429,
        f"Request was throttled. Your rate limit resets in ~{retry_after}s.",
        extra={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


INTERNAL_ERROR = {
    "title": "Internal server error",
    "detail": "Internal server error",
    "status": 500,
}


def http_problem(exc: HTTPException) -> Response:
    """The problem+json answer to Starlette's ``HTTPException`` (the router's 404 and 405)."""
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return problem({"detail": NOT_FOUND_DETAIL, "status": 404}, 404, headers)
    if exc.status_code == 405:
        return problem({"detail": "Method not allowed", "status": 405}, 405, headers)
    return problem({"detail": str(exc.detail), "status": exc.status_code}, exc.status_code, headers)


def log_unhandled() -> str:
    """Log the exception being handled under a new request id; returns the id."""
    import logging
    import secrets

    rid = secrets.token_hex(8)
    logging.getLogger("replicate.local").exception("unhandled error (request %s)", rid)
    return rid


def internal_error(rid: str) -> Response:
    """500 problem+json for an unexpected error logged as request ``rid`` (``x-request-id``)."""
    return problem(dict(INTERNAL_ERROR), 500, {"x-request-id": rid})
