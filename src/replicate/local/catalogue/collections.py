"""Collections and ``GET /v1/search`` (docs/local-server.md, "Endpoints").

Bundled collections: ``local-demos`` (every demo model) and ``streaming-language-models``
(``local-demo/stream-text``); more through :func:`add_collection`. Search is emulated: a
case-insensitive token match over models (owner, name, description, README, tags),
collections (name, slug, description, and the collections holding a matched model) and a
small fixed list of local help pages.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import not_found
from ..routes_base import json_response, keyset_page
from ..routing import Wrap, api_of
from ._common import catalogue_of

if TYPE_CHECKING:
    from ..core import Core

SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 50

BUNDLED_COLLECTIONS: list[dict[str, Any]] = [
    {
        "slug": "streaming-language-models",
        "name": "Streaming language models",
        "description": "Language models that support streaming responses. See https://replicate.com/docs/streaming",
        "full_description": "## Streaming\n\nModels whose output is a token iterator: read it with "
        "`replicate.stream()` or the prediction's `urls.stream` (server-sent events).\n",
        "models": ["local-demo/stream-text"],
    },
    {
        "slug": "local-demos",
        "name": "Local demos",
        "description": "Demo models bundled with the local Replicate server",
        "full_description": "## Local demos\n\nSmall models that run offline inside the local "
        "server: text, streaming, files, failures, slow runs and trainings.\n",
        "models": [
            "replicate/hello-world",
            "local-demo/stream-text",
            "local-demo/make-file",
            "local-demo/fail",
            "local-demo/sleep",
            "local-demo/hello-trainable",
        ],
    },
]

HELP_PAGES: list[dict[str, str]] = [
    {"name": "Run hello-world on the local server", "href": "/docs/local/hello-world"},
    {"name": "Streaming output with server-sent events", "href": "/docs/local/streaming"},
    {"name": "Webhooks: signing and verification", "href": "/docs/local/webhooks"},
    {"name": "Files: upload, download and file outputs", "href": "/docs/local/files"},
    {"name": "Trainings: fine-tune a model into a new version", "href": "/docs/local/trainings"},
    {"name": "Deployments and releases", "href": "/docs/local/deployments"},
    {"name": "Test controls: faults, clock and request log", "href": "/docs/local/test-controls"},
]


def add_collection(
    core: Core,
    slug: str,
    name: str,
    description: str,
    models: list[str],
    *,
    full_description: str | None = None,
) -> None:
    """Create or replace a collection of ``owner/name`` models."""
    cat = catalogue_of(core)
    with cat.lock:
        existing = core.store.one("SELECT created_at FROM collections WHERE slug = ?", (slug,))
        created = existing["created_at"] if existing else core.clock.now()
        core.store.execute(
            "INSERT OR REPLACE INTO collections (slug, name, description, full_description, models, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (slug, name, description, full_description, json.dumps(list(models)), created),
        )


def seed_bundled(core: Core) -> None:
    """Upsert the bundled collections (only when the demo models are registered)."""
    if not core.config.demo_models:
        return
    for c in BUNDLED_COLLECTIONS:
        add_collection(
            core,
            c["slug"],
            c["name"],
            c["description"],
            c["models"],
            full_description=c["full_description"],
        )


def _tokens(text: str) -> list[str]:
    return [t for t in text.lower().split() if t]


def _score(tokens: list[str], fields: list[tuple[str, float]]) -> float:
    """Sum of the weights of the fields each token occurs in (0 when nothing matches)."""
    total = 0.0
    for tok in tokens:
        total += sum(weight for text, weight in fields if tok in text.lower())
    return round(total, 6)


class Collections:
    """Handlers of the collection and search endpoints for one core."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.cat = catalogue_of(core)

    def _rows(self) -> list[dict[str, Any]]:
        rows = self.core.store.query(
            "SELECT * FROM collections ORDER BY created_at DESC, slug DESC"
        )
        for r in rows:
            r["id"] = r["slug"]
            r["models"] = json.loads(r["models"])
        return rows

    def _models(self, refs: list[str], account: str | None) -> list[dict[str, Any]]:
        out = []
        for ref in refs:
            owner, _, name = ref.partition("/")
            m = self.core.registry.get_model(owner, name)
            if m is not None and (m["visibility"] == "public" or m["owner"] == account):
                out.append(m)
        return out

    async def list(self, request: Request) -> Response:
        """``GET /v1/collections``: ``{name, slug, description}`` pages."""

        api = api_of(request)
        api.account(request)
        origin = api.origin(request)
        page, nxt, prev = keyset_page(
            request, origin, self._rows(), self.cat.page_size("collections")
        )
        results = [
            {"name": r["name"], "slug": r["slug"], "description": r["description"]} for r in page
        ]
        return json_response({"next": nxt, "previous": prev, "results": results})

    async def get(self, request: Request) -> Response:
        """``GET /v1/collections/{slug}``: the collection with full model objects."""

        api = api_of(request)
        account = api.account(request)
        row = self.core.store.one(
            "SELECT * FROM collections WHERE slug = ?", (request.path_params["slug"],)
        )
        if row is None:
            raise not_found()
        origin = api.origin(request)
        models = self._models(json.loads(row["models"]), account)
        return json_response(
            {
                "name": row["name"],
                "slug": row["slug"],
                "description": row["description"],
                "full_description": row["full_description"],
                "models": [api.model_json(m, origin) for m in models],
            }
        )

    async def search(self, request: Request) -> Response:
        """``GET /v1/search?query=&limit=`` (public models, collections, help pages)."""

        api = api_of(request)
        qp = request.query_params
        query = qp.get("query")
        if query is None or not query.strip():
            return _bad_request('Query parameter "query" is required')
        limit = SEARCH_DEFAULT_LIMIT
        raw_limit = qp.get("limit")
        if raw_limit is not None:
            try:
                limit = int(raw_limit)
            except ValueError:
                limit = 0
            if not SEARCH_MIN <= limit <= SEARCH_MAX_LIMIT:
                return _bad_request(
                    f'Query parameter "limit" must be an integer between {SEARCH_MIN} and {SEARCH_MAX_LIMIT}'
                )
        tokens = _tokens(query)
        origin = api.origin(request)
        scored: list[tuple[float, dict[str, Any]]] = []
        for m in self.core.store.query("SELECT * FROM models WHERE visibility = 'public'"):
            tags = json.loads(m["tags"] or "[]")
            score = _score(
                tokens,
                [
                    (m["name"], 1.0),
                    (m["owner"], 0.5),
                    (m["description"] or "", 0.4),
                    (" ".join(tags), 0.3),
                    (m["readme"] or "", 0.1),
                ],
            )
            if score > 0:
                scored.append((score, m))
        scored.sort(key=lambda sm: (-sm[0], sm[1]["owner"], sm[1]["name"]))
        matched = scored[:limit]
        models = [
            {
                "model": api.model_json(m, origin),
                "metadata": {
                    "generated_description": _generated_description(m),
                    "tags": json.loads(m["tags"] or "[]"),
                    "score": score,
                },
            }
            for score, m in matched
        ]
        found = {f"{m['owner']}/{m['name']}" for _, m in scored}
        collections = []
        for c in self._rows():
            refs = [f"{m['owner']}/{m['name']}" for m in self._models(c["models"], None)]
            hit = _score(tokens, [(c["name"], 1), (c["slug"], 1), (c["description"], 1)]) > 0
            if hit or found.intersection(refs):
                collections.append(
                    {
                        "name": c["name"],
                        "slug": c["slug"],
                        "description": c["description"],
                        "models": refs,
                    }
                )
        pages = [p for p in HELP_PAGES if _score(tokens, [(p["name"], 1), (p["href"], 1)]) > 0]
        return json_response(
            {"query": query, "models": models, "collections": collections, "pages": pages}
        )


SEARCH_MIN = 1


def _generated_description(m: dict[str, Any]) -> str | None:
    parts = [m["description"] or ""]
    readme = (m["readme"] or "").strip()
    if readme:
        body = [ln for ln in readme.splitlines() if ln.strip() and not ln.startswith("#")]
        if body:
            parts.append(" ".join(body))
    text = " ".join(p.strip().rstrip(".") + "." for p in parts if p.strip())
    return text or None


def _bad_request(detail: str) -> Response:
    """400 with the plain ``{detail}`` JSON body the spec declares for ``/search``."""
    return Response(
        json.dumps({"detail": detail, "status": 400}, separators=(",", ":")),
        status_code=400,
        media_type="application/json",
    )


def routes(core: Core, wrap: Wrap) -> list[Route]:
    """The collection and search routes."""
    seed_bundled(core)
    c = Collections(core)
    return [
        Route("/v1/collections", wrap(c.list), methods=["GET"]),
        Route("/v1/collections/{slug}", wrap(c.get), methods=["GET"]),
        Route("/v1/search", wrap(c.search), methods=["GET"]),
    ]
