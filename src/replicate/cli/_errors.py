"""Errors the command line reports as one line and an exit code.

Every failure ends as ``error: <what failed, the value involved, how to fix it>`` on stderr and
one of the exit codes below (listed in ``replicate --help`` and the README).
"""

from __future__ import annotations

import os
import re
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # the API refused the request, or the prediction failed or was canceled
EXIT_USAGE = 2  # bad arguments, inputs, files or configuration: nothing was created
EXIT_UNREACHABLE = 3  # the API could not be reached, or the URL is not a Replicate API
EXIT_INTERRUPTED = 130  # Ctrl-C (a running prediction is canceled first)
EXIT_PIPE_CLOSED = 141  # whoever read the output stopped reading (as `| head`)

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_FAILED}    the API refused the request (not found, authentication, ...) or the prediction
       failed or was canceled
  {EXIT_USAGE}    bad arguments, inputs, files or configuration (nothing was created)
  {EXIT_UNREACHABLE}    the API could not be reached, or REPLICATE_BASE_URL is not a Replicate API
  {EXIT_INTERRUPTED}  interrupted with Ctrl-C (a running prediction is canceled)
  {EXIT_PIPE_CLOSED}  the reader of the output went away (for example `| head`)"""

DEFAULT_BASE_URL = "https://api.replicate.com"
_LOOPBACK = re.compile(r"^https?://(localhost|127\.[0-9.]+|\[::1\]|0\.0\.0\.0)(:\d+)?(/|$)", re.I)


class CLIError(Exception):
    """A problem to report to the user as ``error: <message>`` with exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def api_location() -> tuple[str, str]:
    """The API base URL the command uses and where it came from (for error messages)."""
    configured = os.environ.get("REPLICATE_BASE_URL")
    if configured:
        return configured.rstrip("/"), "from REPLICATE_BASE_URL"
    return DEFAULT_BASE_URL, "the default; set REPLICATE_BASE_URL to change it"


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (where ``replicate serve`` would listen)."""
    return bool(_LOOPBACK.match(url))


def cannot_reach(exc: BaseException) -> CLIError:
    """The one line for a connection failure: the URL, where it came from, what to try."""
    url, source = api_location()
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if is_loopback(url):
        fix = "is `replicate serve` running? Start it, or unset REPLICATE_BASE_URL"
    elif "REPLICATE_BASE_URL" in source and "from" in source:
        fix = "check the URL and your network"
    else:
        fix = "check your network, or use --local to run on a local server"
    return CLIError(f"cannot reach the API at {url} ({source}): {reason}; {fix}", EXIT_UNREACHABLE)


def foreign_answer(error: Any) -> CLIError | None:
    """A one-line error when the answer did not come from a Replicate API (HTML, plain text)."""
    response = getattr(error, "response", None)
    if response is None or isinstance(getattr(error, "body", None), (dict, list)):
        return None
    content_type = response.headers.get("content-type", "").split(";")[0].strip() or "no type"
    if "json" in content_type:
        return None
    url, source = api_location()
    try:
        request = response.request
    except RuntimeError:  # a response built without its request
        request = None
    what = f"{request.method} {request.url.path}" if request is not None else "a request"
    return CLIError(
        f"the server at {url} ({source}) is not the Replicate API: it answered {what} with "
        f"HTTP {response.status_code} {content_type}, not JSON; set REPLICATE_BASE_URL to a "
        "Replicate API (such as the URL `replicate serve` prints)",
        EXIT_UNREACHABLE,
    )


def not_found(kind: str, value: str, hint: str) -> CLIError:
    """The one not-found message of every command: what, which value, how to find the right one."""
    return CLIError(f"{kind} {value!r} not found; {hint}", EXIT_FAILED)


_REQUIRED = re.compile(r"^(?:input:\s*)?([A-Za-z_][\w]*) is required\b")


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
            f"authentication failed ({detail}); set REPLICATE_API_TOKEN to a valid token, "
            "or use --local"
        )
    if status == 404:
        return f"not found ({detail})"
    if status == 422:
        detail = re.sub(r"^input:\s*", "", detail)
        required = _REQUIRED.match(detail)
        if required:
            name = required.group(1)
            return f"invalid input: {name} is required; add -i {name}=..."
        return f"invalid input: {detail}"
    return f"{detail} (HTTP {status})" if status else detail


def exit_code_of_api_error(error: Any) -> int:
    """Invalid inputs are a usage problem; everything else the API refused is a failure."""
    return EXIT_USAGE if getattr(error, "status", None) == 422 else EXIT_FAILED
