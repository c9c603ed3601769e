"""The loopback HTTP server a Cog runtime calls back: webhooks, file uploads, input files.

The worker runs each prediction the way the platform does (``Prefer: respond-async`` and a
webhook), so the runtime reports progress here; files it uploads are kept as
:class:`CogFile` values until the local server stores them at its own URLs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.server
import json
import mimetypes
import re
import secrets
import shutil
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .events import CogFile

__all__ = ["CallbackServer", "decode_data_uri", "safe_filename"]

_DATA_URI_RE = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),(.*)$", re.DOTALL)


class CallbackServer:
    """Loopback HTTP server receiving the runtime's webhooks and file uploads.

    Every route sits under a random secret prefix. Webhook snapshots go to ``on_webhook``
    (called in the server's thread); uploaded files are saved under ``files_dir`` and
    become :class:`CogFile` values; ``input_url`` serves local input files to the runtime.
    """

    def __init__(
        self, on_webhook: Callable[[dict[str, Any]], None], files_dir: Path, *, name: str
    ) -> None:
        self.on_webhook = on_webhook
        self.files_dir = files_dir
        self.secret = secrets.token_urlsafe(16)
        self.files: dict[str, CogFile] = {}
        self.inputs: dict[str, Path] = {}
        self.upload_lock = threading.Lock()
        self._counter = 0
        self._lock = threading.Lock()
        handler = self._make_handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/{self.secret}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"cog-callbacks-{name}",
            daemon=True,
        )
        self.thread.start()

    @property
    def webhook_url(self) -> str:
        return f"{self.base}/webhook"

    @property
    def upload_url(self) -> str:
        return f"{self.base}/upload/"

    @property
    def files_prefix(self) -> str:
        return f"{self.base}/files/"

    def input_url(self, path: Path) -> str:
        """A URL on this server that serves a local input file to the runtime."""
        token = secrets.token_urlsafe(12)
        route = f"inputs/{token}/{urllib.parse.quote(safe_filename(path.name))}"
        with self._lock:
            self.inputs[route] = path
        return f"{self.base}/{route}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def store(
        self, data_iter: Iterable[bytes], filename: str, content_type: str, prediction_id: str
    ) -> tuple[str, CogFile]:
        """Save one file; return its internal URL and the :class:`CogFile`."""
        filename = safe_filename(filename)
        with self._lock:
            self._counter += 1
            token = f"{self._counter:06d}"
        folder = self.files_dir / (safe_filename(prediction_id) or "unknown") / token
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        with path.open("wb") as f:
            for chunk in data_iter:
                f.write(chunk)
        cog_file = CogFile(path=path, filename=filename, content_type=content_type)
        url = f"{self.files_prefix}{token}/{urllib.parse.quote(filename)}"
        with self._lock:
            self.files[url] = cog_file
        return url, cog_file

    def _make_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body_chunks(self) -> Iterable[bytes]:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size_line = self.rfile.readline().split(b";", 1)[0].strip()
                        size = int(size_line or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return
                        remaining = size
                        while remaining:
                            chunk = self.rfile.read(min(remaining, 1 << 16))
                            if not chunk:
                                return
                            remaining -= len(chunk)
                            yield chunk
                        self.rfile.readline()
                else:
                    remaining = int(self.headers.get("Content-Length") or 0)
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 16))
                        if not chunk:
                            return
                        remaining -= len(chunk)
                        yield chunk

            def _reply(self, status: int, headers: Mapping[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _route(self) -> str | None:
                prefix = f"/{server.secret}/"
                return self.path[len(prefix) :] if self.path.startswith(prefix) else None

            def do_POST(self) -> None:
                route = self._route()
                body = b"".join(self._body_chunks())
                if route != "webhook":
                    self._reply(404)
                    return
                try:
                    snapshot = json.loads(body)
                except ValueError:
                    self._reply(400)
                    return
                self._reply(200)
                if isinstance(snapshot, dict):
                    server.on_webhook(snapshot)

            def do_GET(self) -> None:
                route = self._route()
                found = server.inputs.get(route or "")
                if found is None or not found.is_file():
                    self._reply(404)
                    return
                size = found.stat().st_size
                content_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                with found.open("rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1 << 16)

            def do_PUT(self) -> None:
                route = self._route()
                if route is None or not route.startswith("upload/"):
                    for _ in self._body_chunks():
                        pass
                    self._reply(404)
                    return
                filename = urllib.parse.unquote(route[len("upload/") :]) or "output"
                content_type = self.headers.get("Content-Type") or (
                    mimetypes.guess_type(filename)[0] or "application/octet-stream"
                )
                prediction_id = self.headers.get("X-Prediction-Id") or "unknown"
                # One upload at a time: the runtime orders file outputs by when their
                # uploads finish, so answering in arrival order keeps the model's order.
                with server.upload_lock:
                    url, _ = server.store(
                        self._body_chunks(), filename, content_type, prediction_id
                    )
                    self._reply(201, {"Location": url})

        return Handler

    def convert_output(self, value: Any, prediction_id: str, path: str = "") -> Any:
        """Replace this server's file URLs and ``data:`` URIs with :class:`CogFile`.

        ``path`` locates the value in the output (``"2"`` for the third chunk, ``"image"``
        for a field); inline files are named after it (``output-2.png``, ``image.png``),
        and the same file at the same place maps to the same :class:`CogFile`.
        """
        if isinstance(value, list):
            return [
                self.convert_output(v, prediction_id, f"{path}-{i}" if path else str(i))
                for i, v in enumerate(value)
            ]
        if isinstance(value, dict):
            return {
                k: self.convert_output(v, prediction_id, f"{path}-{k}" if path else str(k))
                for k, v in value.items()
            }
        if isinstance(value, str):
            if value.startswith(self.files_prefix):
                found = self.files.get(value)
                if found is not None:
                    return found
            if value.startswith("data:"):
                decoded = decode_data_uri(value)
                if decoded is not None:
                    data, content_type = decoded
                    ext = mimetypes.guess_extension(content_type) or ".bin"
                    digest = hashlib.sha256(value.encode()).hexdigest()
                    key = f"data:{prediction_id}:{path}:{digest}"
                    cached = self.files.get(key)
                    if cached is not None:
                        return cached
                    stem = (
                        "output"
                        if not path
                        else (path if not path[0].isdigit() else f"output-{path}")
                    )
                    _, cog_file = self.store([data], f"{stem}{ext}", content_type, prediction_id)
                    self.files[key] = cog_file
                    return cog_file
        return value


def safe_filename(name: str) -> str:
    """A file name safe to create locally: no directories, no leading dot, ASCII."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name[:200] or "output"


def decode_data_uri(value: str) -> tuple[bytes, str] | None:
    """``data:text/plain;base64,aGk=`` -> ``(b"hi", "text/plain")``; None if malformed."""
    match = _DATA_URI_RE.match(value)
    if match is None:
        return None
    content_type = match.group(1) or "text/plain"
    params = match.group(2)
    payload = match.group(3)
    try:
        if ";base64" in params:
            return base64.b64decode(payload, validate=False), content_type
        return urllib.parse.unquote_to_bytes(payload), content_type
    except (binascii.Error, ValueError):
        return None
