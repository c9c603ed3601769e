"""The floor of the local server benchmark: the least a create must do, on the same stack.

A minimal Starlette app on uvicorn (one process, one event loop, the h11 protocol, as
``replicate serve`` runs) with SQLite on disk (WAL, ``synchronous=NORMAL``, as the local
server's store):

* ``POST /v1/models/{owner}/{name}/predictions`` parses the JSON body, inserts one prediction
  row and, for a ``Prefer: wait`` create of ``replicate/hello-world``, updates it to succeeded
  with the output and answers 201 with the prediction JSON;
* for a streaming create (``"stream": true``) it answers 201 ``starting`` with ``urls.stream``;
  ``GET /v1/streams/{id}`` streams the same SSE events as the local server for
  ``local-demo/stream-text`` (a ``logs`` line, one ``output`` event per token, a ``logs`` line,
  then ``done``) and updates the row to succeeded at the end.

Usage: ``python _floor_server.py DB_PATH``; prints ``listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, status TEXT NOT NULL, input TEXT NOT NULL,
    output TEXT, created_at REAL NOT NULL, completed_at REAL
);
"""


def build(db: str, base_url: str) -> Starlette:
    """The floor app on the SQLite database at ``db``."""
    conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)

    def answer(data: dict[str, Any], status: int = 201) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode()
        return Response(body, status, media_type="application/json")

    async def create(request: Request) -> Response:
        body = json.loads(await request.body())
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        pid = uuid.uuid4().hex[:26]
        now = time.time()
        conn.execute(
            "INSERT INTO predictions (id, model, status, input, created_at) VALUES (?, ?, ?, ?, ?)",
            (pid, model, "starting", json.dumps(body["input"]), now),
        )
        data: dict[str, Any] = {
            "id": pid,
            "model": model,
            "input": body["input"],
            "status": "starting",
            "urls": {"get": f"{base_url}/v1/predictions/{pid}"},
        }
        if body.get("stream"):
            data["urls"]["stream"] = f"{base_url}/v1/streams/{pid}"
            return answer(data)
        output = f"hello {body['input'].get('text', '')}"
        conn.execute(
            "UPDATE predictions SET status = ?, output = ?, completed_at = ? WHERE id = ?",
            ("succeeded", json.dumps(output), time.time(), pid),
        )
        data.update(status="succeeded", output=output)
        return answer(data)

    async def stream(request: Request) -> Response:
        pid = request.path_params["id"]
        row = conn.execute("SELECT input FROM predictions WHERE id = ?", (pid,)).fetchone()
        inp = json.loads(row[0])
        words = str(inp.get("prompt", "")).split() or ["..."]
        count = int(inp.get("max_tokens", 32))

        async def events() -> Any:
            tokens = []
            t = int(time.time())
            yield f"event: logs\nid: {t}:0\ndata: streaming {count} tokens\n\n".encode()
            for i in range(count):
                token = words[i % len(words)] if i == 0 else f" {words[i % len(words)]}"
                tokens.append(token)
                yield f"event: output\nid: {t}:{i + 1}\ndata: {token}\n\n".encode()
            conn.execute(
                "UPDATE predictions SET status = ?, output = ?, completed_at = ? WHERE id = ?",
                ("succeeded", json.dumps(tokens), time.time(), pid),
            )
            yield f"event: logs\nid: {t}:{count + 1}\ndata: done streaming\n\n".encode()
            yield f"event: done\nid: {t}:{count + 2}\ndata: {{}}\n\n".encode()

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return Starlette(
        routes=[
            Route("/v1/models/{owner}/{name}/predictions", create, methods=["POST"]),
            Route("/v1/streams/{id}", stream, methods=["GET"]),
        ]
    )


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = build(sys.argv[1], base_url)
    print(f"listening on {base_url}", flush=True)
    config = uvicorn.Config(app, http="h11", ws="none", lifespan="off", log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
