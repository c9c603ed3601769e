"""Trained weights over HTTP: the URL a trained Cog version's runtime gets as ``COG_WEIGHTS``.

On the platform a trained version's runtime is started with ``COG_WEIGHTS`` set to an
http(s) URL of its weights, and Cog's runtime hands that value to ``setup(weights)`` as it
is (Cog 0.23 passes the string; models fetch it, e.g. ``requests.get(weights)``, or make it
a local file with ``cog.Path``). The local server does the same: it serves each trained
version's weights at ``/weights/{version_id}-{mac}/{file name}`` on its own origin (no token:
the HMAC makes the URL unguessable, like delivery URLs), and gives the runtime that URL.
See docs/local-server.md, "Your own Cog models".
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ..errors import not_found
from ..routing import Wrap
from ._common import catalogue_of

if TYPE_CHECKING:
    from ..core import Core


def _mac(core: Core, version_id: str) -> str:
    return hmac.new(core.files.key, f"weights {version_id}".encode(), hashlib.sha256).hexdigest()[
        :32
    ]


def weights_url(core: Core, path: str | Path) -> str | None:
    """The URL of a trained version's materialised weights file, on the server's own origin.

    None when ``path`` is not a trained version's weights or the server does not know its
    own URL yet (a core used without a socket).
    """
    origin = core.self_url
    if origin is None:
        return None
    p = Path(path)
    root = catalogue_of(core).weights_dir()
    try:
        version_id, name = p.resolve().relative_to(root.resolve()).parts
    except ValueError:
        return None
    token = f"{version_id}-{_mac(core, version_id)}"
    return f"{origin}/weights/{token}/{urllib.parse.quote(name)}"


def routes(core: Core, wrap: Wrap) -> list[Route]:
    """``GET /weights/{token}/{filename}``: a trained version's weights."""

    async def weights(request: Request) -> Response:
        from .trainings import Trained

        version_id, _, mac = request.path_params["token"].rpartition("-")
        if not version_id or not hmac.compare_digest(
            _mac(core, version_id).encode(), mac.encode("utf-8", "replace")
        ):
            raise not_found()
        row = core.store.one(
            "SELECT weights, weights_name FROM trained_versions WHERE version_id = ?",
            (version_id,),
        )
        name = Path(row["weights_name"]).name or "weights" if row is not None else ""
        if row is None or name != request.path_params["filename"]:
            raise not_found()
        trained = Trained(core, catalogue_of(core))
        path = trained.weights_path(version_id, row["weights_name"], bytes(row["weights"]))
        return FileResponse(path, media_type="application/octet-stream")

    return [Route("/weights/{token}/{filename}", wrap(weights), methods=["GET"])]
