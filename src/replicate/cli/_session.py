"""Which API the command talks to: the configured one, or a local server started for it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ._errors import EXIT_USAGE, CLIError

LOCAL_TOKEN = "r8_local"
#: Where `replicate serve` listens by default (its --host and --port defaults).
SERVE_URL = "http://127.0.0.1:5080"
# A person is waiting: a few quick retries, not the library's minute of backoff.
CLI_RETRY = {"max_attempts": 4}


@contextlib.contextmanager
def open_client(args: Any, console: Any) -> Iterator[Any]:
    """Yield a ``replicate.Client`` for the command, starting a local server for ``--local``."""
    import replicate

    if getattr(args, "local", False):
        from replicate.local import serve

        db = local_db()
        with serve(db=db) as base_url:
            console.local_server = (base_url, SERVE_URL)
            console.note(
                f"Using a local Replicate server at {base_url}; results are kept in {db} "
                "(see them with --local, or `replicate serve --db` that file)"
            )
            with replicate.Client(
                api_token=LOCAL_TOKEN, base_url=base_url, retry=CLI_RETRY
            ) as client:
                yield client
        return
    check_configuration()
    with replicate.Client(retry=CLI_RETRY) as client:
        yield client


def check_configuration() -> None:
    """A usable base URL and a token, or one line saying what to set."""
    base_url = os.environ.get("REPLICATE_BASE_URL")
    if base_url:
        from replicate._http import normalize_base_url

        try:
            normalize_base_url(base_url)
        except ValueError:
            raise CLIError(
                f"REPLICATE_BASE_URL is not an http(s) URL: {base_url!r}; set it to a URL such "
                "as http://127.0.0.1:5080 (what `replicate serve` prints), or unset it",
                EXIT_USAGE,
            ) from None
    if os.environ.get("REPLICATE_API_TOKEN"):
        return
    if base_url:
        raise CLIError(
            f"no API token for the server at {base_url} (from REPLICATE_BASE_URL): set "
            "REPLICATE_API_TOKEN (`replicate serve` prints the one to use)",
            EXIT_USAGE,
        )
    raise CLIError(
        "no API token: set REPLICATE_API_TOKEN (https://replicate.com/account/api-tokens) "
        "or use --local to run on a local server",
        EXIT_USAGE,
    )


def local_db() -> str:
    """The on-disk database of the local server used by ``--local``."""
    from replicate.local.core import default_db_path

    return str(default_db_path())


def hint(args: Any, command: str) -> str:
    """``replicate <command>`` with the flags that reach the same API as this command."""
    return f"replicate {command}" + (" --local" if getattr(args, "local", False) else "")
