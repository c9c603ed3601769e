"""Bearer-token auth: any non-empty token by default, or only the configured ones.

Configured tokens are plain ``TOKEN`` values (all one account, the server's username) or
``NAME=TOKEN`` values: separate accounts whose predictions, files, trainings, models and
deployments are isolated from each other (another account's objects are 404).
"""

from __future__ import annotations

import functools
import hmac
import re

from starlette.requests import Request

from .errors import UNAUTHENTICATED, ApiError
from .util import header


def token_from(request: Request) -> str | None:
    """The token from ``Authorization: Bearer <t>`` (or the legacy ``Token <t>``)."""
    scheme, _, value = (header(request.scope, b"authorization") or "").partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,38}$")


def split_token(value: str) -> tuple[str | None, str]:
    """``NAME=TOKEN`` -> ``(NAME, TOKEN)``; a plain token -> ``(None, TOKEN)``.

    NAME is a Replicate-style username (lower-case letters, digits, ``-``, ``_``).
    """
    name, sep, token = value.partition("=")
    if sep and token.strip("=") and _ACCOUNT.match(name):
        return name, token
    return None, value


def account_tokens(tokens: list[str], username: str) -> list[tuple[bytes, str]]:
    """``(token bytes, account)`` pairs: plain tokens belong to ``username``."""
    out = []
    for value in tokens:
        name, token = split_token(value)
        out.append((token.encode(), name or username))
    return out


@functools.lru_cache(maxsize=16)
def _pairs(tokens: tuple[str, ...], username: str) -> tuple[tuple[bytes, str], ...]:
    """:func:`account_tokens`, worked out once per configuration (not per request)."""
    return tuple(account_tokens(list(tokens), username))


def authenticate(request: Request, tokens: list[str] | None, username: str) -> str:
    """The account username for the request, or raise the real API's 401."""
    token = token_from(request)
    if token is None:
        raise unauthenticated()
    if tokens is None:
        return username
    given = token.encode("utf-8", "replace")
    account = None
    for value, name in _pairs(tuple(tokens), username):
        if hmac.compare_digest(given, value) and account is None:
            account = name
    if account is None:
        raise unauthenticated()
    return account


def unauthenticated() -> ApiError:
    """401 with exactly the real API's body."""
    return ApiError(401, str(UNAUTHENTICATED["detail"]), title=str(UNAUTHENTICATED["title"]))
