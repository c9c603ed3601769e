"""Which API the command talks to: the configured one, or a local server started for it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ._errors import CLIError

LOCAL_TOKEN = "r8_local"
# A person is waiting: a few quick retries, not the library's minute of backoff.
CLI_RETRY = {"max_attempts": 4}


@contextlib.contextmanager
def open_client(args: Any, console: Any) -> Iterator[Any]:
    """Yield a ``replicate.Client`` for the command, starting a local server for ``--local``."""
    import replicate

    if getattr(args, "local", False):
        try:
            from replicate.local import serve
        except ImportError as exc:
            raise CLIError(
                f'--local needs the local server extra: pip install "replicate[local]" ({exc})'
            ) from None
        with serve(db=_local_db()) as base_url:
            console.note(f"Using a local Replicate server at {base_url} (results are local)")
            with replicate.Client(
                api_token=LOCAL_TOKEN, base_url=base_url, retry=CLI_RETRY
            ) as client:
                yield client
        return
    if not os.environ.get("REPLICATE_API_TOKEN") and not os.environ.get("REPLICATE_BASE_URL"):
        raise CLIError(
            "no API token: set REPLICATE_API_TOKEN (https://replicate.com/account/api-tokens) "
            "or use --local to run on a local server",
            code=2,
        )
    with replicate.Client(retry=CLI_RETRY) as client:
        yield client


def _local_db() -> str:
    """The on-disk database of the local server used by ``--local``."""
    from replicate.local.core import default_db_path

    return str(default_db_path())
