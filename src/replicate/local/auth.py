"""Bearer-token auth: any non-empty token by default, or only the configured ones."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from .errors import UNAUTHENTICATED, ApiError


def token_from(request: Request) -> str | None:
    """The token from ``Authorization: Bearer <t>`` (or the legacy ``Token <t>``)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


def authenticate(request: Request, tokens: list[str] | None, username: str) -> str:
    """The account username for the request, or raise the real API's 401."""
    token = token_from(request)
    if token is None:
        raise unauthenticated()
    given = token.encode("utf-8", "replace")
    if tokens is not None and not any(hmac.compare_digest(given, t.encode()) for t in tokens):
        raise unauthenticated()
    return username


def unauthenticated() -> ApiError:
    """401 with exactly the real API's body."""
    return ApiError(401, str(UNAUTHENTICATED["detail"]), title=str(UNAUTHENTICATED["title"]))
