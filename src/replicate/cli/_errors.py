"""Errors the command line reports as one line and an exit code."""

from __future__ import annotations

from typing import Any


class CLIError(Exception):
    """A problem to report to the user as ``error: <message>`` with exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def describe_api_error(error: Any) -> str:
    """One line for a ``ReplicateError``: the status and the server's explanation."""
    status = getattr(error, "status", None)
    detail = getattr(error, "detail", None) or getattr(error, "title", None) or "request failed"
    detail = " ".join(str(detail).split())
    body = getattr(error, "body", None)
    if isinstance(body, dict) and isinstance(body.get("invalid_fields"), list):
        fields = []
        for item in body["invalid_fields"]:
            if isinstance(item, dict):
                where = item.get("field") or item.get("name") or ""
                what = item.get("description") or item.get("message") or ""
                fields.append(f"{where}: {what}".strip(": "))
        if fields:
            detail = "; ".join(fields)
    if status == 401:
        return (
            f"authentication failed ({detail}). Set REPLICATE_API_TOKEN to a valid token, "
            "or use --local"
        )
    if status == 404:
        return f"not found ({detail})"
    if status == 422:
        return f"invalid input: {detail}"
    return f"{detail} (HTTP {status})" if status else detail
