"""The rest of the API catalogue: deployments, trainings, collections and search.

``build_app`` mounts it::

    install(app, core)            # or: app.router.routes.extend(catalogue_routes(core, wrap))

The catalogue keeps its own tables (``deployments``, ``deployment_releases``,
``collections``, ``trained_versions``) in the core's database, created on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..routing import Wrap, wrap
from ._common import catalogue_of
from .collections import add_collection
from .trainings import register_trainer

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.routing import Route

    from ..core import Core

__all__ = [
    "add_collection",
    "catalogue_routes",
    "install",
    "register_trainer",
    "reset",
    "version_in_use",
]


def catalogue_routes(core: Core, wrap: Wrap) -> list[Route]:
    """Routes of deployments, trainings, collections and ``/v1/search`` for ``core``.

    ``wrap`` turns an ``async def handler(request)`` that raises ``ApiError`` into an
    endpoint (:func:`replicate.local.routing.wrap`). Also seeds the bundled collections, registers
    the built-in trainers and re-attaches trained versions stored by an earlier run.
    """
    from . import collections, deployments, trainings, weights

    catalogue_of(core)
    return [
        *deployments.routes(core, wrap),
        *trainings.routes(core, wrap),
        *collections.routes(core, wrap),
        *weights.routes(core, wrap),
    ]


def install(app: Starlette, core: Core) -> None:
    """Add the catalogue routes to an app built by ``build_app`` (before it serves)."""
    app.router.routes.extend(catalogue_routes(core, wrap))


def reset(core: Core) -> None:
    """Clear deployments and the versions made by trainings (part of ``Core.reset``)."""
    store = core.store
    catalogue_of(core)
    with store.transaction():
        store.execute("DELETE FROM deployment_releases")
        store.execute("DELETE FROM deployments")
        store.execute("DELETE FROM versions WHERE id IN (SELECT version_id FROM trained_versions)")
        store.execute("DELETE FROM trained_versions")


def version_in_use(core: Core, version_id: str) -> str | None:
    """Why ``version_id`` cannot be deleted (a deployment or a running training uses it), or None."""
    from .deployments import Deployments
    from .trainings import Trained

    if Deployments(core).uses_version(version_id):
        return "The version is used by a deployment."
    if Trained(core, catalogue_of(core)).is_training_base(version_id):
        return "The version is the base of a running training."
    return None
