"""The Starlette application: the Replicate HTTP API under ``/v1`` plus local extras.

This module only assembles the parts: handlers live in mixins (``routes_predictions``,
``routes_models``, ``routes_files``, ``routes_local``) over ``routes_base`` (JSON
replies, pagination); ``routing`` is what they and the ``catalogue`` share. Nothing else
in ``replicate.local`` imports this module but the entry points that build the app
(``server``, ``cli``).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from .catalogue import install
from .core import Core
from .files import UPLOAD_TOO_LARGE
from .front import Front
from .gate import MULTIPART_OVERHEAD
from .routes_files import FileRoutes
from .routes_local import LocalRoutes, control_routes
from .routes_models import ModelRoutes
from .routes_predictions import PredictionRoutes
from .routing import CoreApi, Handler, Router, wrap

__all__ = ["LocalApi", "build_app"]

# ---------------------------------------------------------------------------- the app


class LocalApi(PredictionRoutes, ModelRoutes, FileRoutes, LocalRoutes):
    """Route handlers bound to one ``Core``."""


class _App(Starlette):
    """Starlette whose middleware stack is :class:`~.front.Front` over the router.

    ``Front`` does what Starlette's error middlewares would (404/405 and 500 problem+json)
    besides the request log, faults, rate-limit headers and body limit, in one layer.
    """

    front: dict[str, Any]

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return Front(app, **self.front)


def _body_limit(core: Core) -> Any:
    """``(limit, detail)`` of a request body for the input gate: uploads have their own."""

    def limit_for(method: str, path: str) -> tuple[int, str | None]:
        if method == "POST" and path == "/v1/files":
            return core.files.max_upload_size + MULTIPART_OVERHEAD, UPLOAD_TOO_LARGE
        return core.config.max_body_size, None

    return limit_for


def build_app(core: Core, *, lifespan: Any = None) -> Starlette:
    """The ASGI application for a ``Core``."""
    api = LocalApi(core)

    def r(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, wrap(handler), methods=methods)

    routes = [
        *control_routes(api, r),
        r("/v1/account", api.account_get, ["GET"]),
        r("/v1/hardware", api.hardware_list, ["GET"]),
        r("/v1/webhooks/default/secret", api.webhook_secret, ["GET"]),
        r("/v1/predictions", api.predictions_list, ["GET"]),
        r("/v1/predictions", api.predictions_create, ["POST"]),
        r("/v1/predictions/{id}", api.predictions_get, ["GET"]),
        r("/v1/predictions/{id}/cancel", api.predictions_cancel, ["POST"]),
        r("/v1/models", api.models_list, ["GET"]),
        r("/v1/models", api.models_create, ["POST"]),
        r("/v1/models", api.models_search, ["QUERY"]),
        r("/v1/models/{owner}/{name}", api.models_get, ["GET"]),
        r("/v1/models/{owner}/{name}", api.models_update, ["PATCH"]),
        r("/v1/models/{owner}/{name}", api.models_delete, ["DELETE"]),
        r("/v1/models/{owner}/{name}/examples", api.models_examples, ["GET"]),
        r("/v1/models/{owner}/{name}/predictions", api.models_predictions_create, ["POST"]),
        r("/v1/models/{owner}/{name}/readme", api.models_readme, ["GET"]),
        r("/v1/models/{owner}/{name}/versions", api.versions_list, ["GET"]),
        r("/v1/models/{owner}/{name}/versions/{version_id}", api.versions_get, ["GET"]),
        r("/v1/models/{owner}/{name}/versions/{version_id}", api.versions_delete, ["DELETE"]),
        r("/v1/files", api.files_list, ["GET"]),
        r("/v1/files", api.files_create, ["POST"]),
        r("/v1/files/{file_id}", api.files_get, ["GET"]),
        r("/v1/files/{file_id}", api.files_delete, ["DELETE"]),
        r("/v1/files/{file_id}/download", api.files_download, ["GET"]),
        r("/v1/streams/{token}", api.stream, ["GET"]),
        r("/delivery/{token}/{filename}", api.delivery, ["GET"]),
        r("/", api.web_index, ["GET"]),
        r("/web/p/{id}", api.web_prediction, ["GET"]),
        r("/web/{owner}/{name}", api.web_model, ["GET"]),
    ]

    app = _App(lifespan=lifespan)
    app.router = Router(routes, lifespan=lifespan)
    # Deployments, trainings, collections and search.
    install(app, core)
    core_api: CoreApi = api  # what the catalogue may ask of the core routes
    app.state.core = core
    app.state.api = core_api
    app.front = {
        "core": core,
        "faults": api.faults,
        "requests": api.requests,
        "limit_for": _body_limit(core),
    }
    return app
