"""Files: uploads (``/v1/files``), output files (delivery URLs) and content-addressed blobs.

Self-contained: it needs only a database object with ``execute``/``query``/``one``/
``executescript``/``transaction`` (see ``store.Store``), a blob directory, a signing
key and a clock function.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import os
import shutil
import tempfile
import threading
import unicodedata
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

MiB = 1024 * 1024
DEFAULT_MAX_UPLOAD = 100 * MiB
#: The 413 detail of an upload over the limit (as the real API words it).
UPLOAD_TOO_LARGE = "Files must be less than 100MB in size"
DEFAULT_EXPIRY = 24 * 3600.0
DELIVERY_PREFIX = "local-delivery://"

_TABLES = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL,
    content_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, md5 TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, expires_at REAL,
    prediction_id TEXT, deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_order ON files (kind, created_at, id);
CREATE INDEX IF NOT EXISTS files_prediction ON files (prediction_id);
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, refcount INTEGER NOT NULL);
"""


class Database(Protocol):
    """What the file service needs from the database."""

    def execute(self, sql: str, params: Any = ()) -> int: ...
    def executescript(self, sql: str) -> None: ...
    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]: ...
    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None: ...
    def transaction(self) -> Any: ...


class FileTooLarge(Exception):
    """The upload exceeds the size limit."""


def safe_basename(name: str, default: str = "file") -> str:
    """The last path segment of ``name`` without control, format or separator characters
    (CR, LF, NUL, bidi overrides, lone surrogates) or quotes; ``default`` if nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(
        ch
        for ch in base
        if ch != '"' and unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ).strip()
    return base if base.strip(".") else default


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """An RFC 6266 ``Content-Disposition`` header for a file name: the sanitised basename
    (:func:`safe_basename`) as an ASCII ``filename`` fallback and, exactly, as
    ``filename*=UTF-8''...`` (RFC 8187 percent-encoding)."""
    base = safe_basename(name)
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", base) if unicodedata.category(ch) != "Mn"
    )
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in plain)
    encoded = urllib.parse.quote(base, safe="!#$&+-.^_`|~")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _iso(ts: float | None) -> str | None:
    from datetime import datetime, timezone

    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FileService:
    """Uploads, output files, signed downloads and blob storage."""

    def __init__(
        self,
        db: Database,
        blob_dir: Path,
        key: bytes,
        now: Callable[[], float],
        *,
        max_upload_size: int = DEFAULT_MAX_UPLOAD,
        expiry: float = DEFAULT_EXPIRY,
    ) -> None:
        self.db = db
        self.blob_dir = Path(blob_dir)
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        (self.blob_dir / "tmp").mkdir(exist_ok=True)
        self.key = key
        self.now = now
        self.max_upload_size = max_upload_size
        self.expiry = expiry
        self._lock = threading.Lock()
        db.executescript(_TABLES)

    # ------------------------------------------------------------------ blobs
    def _blob_path(self, sha: str) -> Path:
        return self.blob_dir / sha[:2] / sha

    def _write_blob(self, src: IO[bytes], limit: int | None) -> tuple[str, str, int]:
        """Copy a stream into the blob store; returns (sha256, md5, size).

        ``limit``: the most bytes accepted (FileTooLarge beyond), None for no limit. It is a
        value, never a setting swapped on ``self``, so concurrent writers cannot leak theirs.
        """
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        fd, tmp = tempfile.mkstemp(dir=self.blob_dir / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = src.read(1024 * 1024)
                    if not chunk:
                        break
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise FileTooLarge()
                    sha.update(chunk)
                    md5.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = sha.hexdigest()
            final = self._blob_path(digest)
            with self._lock:
                final.parent.mkdir(exist_ok=True)
                if final.exists():
                    os.unlink(tmp)
                else:
                    os.replace(tmp, final)
                self.db.execute(
                    "INSERT INTO blobs (sha256, refcount) VALUES (?, 1) "
                    "ON CONFLICT(sha256) DO UPDATE SET refcount = refcount + 1",
                    (digest,),
                )
            return digest, md5.hexdigest(), size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _decref(self, sha: str) -> None:
        with self._lock:
            self.db.execute("UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = ?", (sha,))
            row = self.db.one("SELECT refcount FROM blobs WHERE sha256 = ?", (sha,))
            if row is not None and row["refcount"] <= 0:
                self.db.execute("DELETE FROM blobs WHERE sha256 = ?", (sha,))
                try:
                    os.unlink(self._blob_path(sha))
                except FileNotFoundError:
                    pass

    def blob_path(self, row: dict[str, Any]) -> Path:
        """Where a file's bytes live."""
        return self._blob_path(row["sha256"])

    # ------------------------------------------------------------------ uploads
    def create_upload(
        self,
        owner: str,
        src: IO[bytes],
        filename: str,
        content_type: str,
        metadata: dict[str, Any],
        max_size: int | None = None,
    ) -> dict[str, Any]:
        """Store an uploaded file; raises FileTooLarge over ``max_size`` bytes (default:
        ``max_upload_size`` now)."""
        limit = self.max_upload_size if max_size is None else max_size
        sha, md5, size = self._write_blob(src, limit)
        now = self.now()
        fid = base64.urlsafe_b64encode(str(uuid.uuid4()).encode()).decode().rstrip("=")
        self.db.execute(
            "INSERT INTO files (id, kind, owner, name, content_type, size, sha256, md5, metadata, "
            "created_at, expires_at) VALUES (?, 'upload', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fid,
                owner,
                filename,
                content_type,
                size,
                sha,
                md5,
                json.dumps(metadata),
                now,
                now + self.expiry,
            ),
        )
        row = self.get_upload(owner, fid)
        assert row is not None
        return row

    def _active(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None or row["deleted"]:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= self.now():
            return None
        return row

    def get_upload(self, owner: str, file_id: str) -> dict[str, Any] | None:
        """An active (not deleted, not expired) upload owned by ``owner``."""
        return self._active(
            self.db.one(
                "SELECT * FROM files WHERE id = ? AND kind = 'upload' AND owner = ?",
                (file_id, owner),
            )
        )

    def list_uploads(self, owner: str) -> list[dict[str, Any]]:
        """Active uploads, newest first."""
        rows = self.db.query(
            "SELECT * FROM files WHERE kind = 'upload' AND owner = ? AND deleted = 0 "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at DESC, id DESC",
            (owner, self.now()),
        )
        return rows

    def delete_upload(self, owner: str, file_id: str) -> bool:
        """Delete an upload; False if it does not exist (or expired)."""
        row = self.get_upload(owner, file_id)
        if row is None:
            return False
        self.db.execute("UPDATE files SET deleted = 1 WHERE id = ?", (file_id,))
        self._decref(row["sha256"])
        return True

    def file_json(self, row: dict[str, Any], origin: str) -> dict[str, Any]:
        """The API's file object."""
        return {
            "id": row["id"],
            "name": row["name"],
            "content_type": row["content_type"],
            "size": row["size"],
            "etag": row["md5"],
            "checksums": {"sha256": row["sha256"], "md5": row["md5"]},
            "metadata": json.loads(row["metadata"]),
            "created_at": _iso(row["created_at"]),
            "expires_at": _iso(row["expires_at"]),
            "urls": {"get": f"{origin}/v1/files/{row['id']}"},
        }

    # ------------------------------------------------------------------ signed downloads
    def _signature(self, owner: str, file_id: str, expiry: int) -> str:
        mac = hmac.new(self.key, f"{owner} {file_id} {expiry}".encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    def sign_download(self, owner: str, file_id: str, ttl: float = 3600) -> dict[str, str]:
        """Query parameters of a signed download link valid for ``ttl`` seconds (finite,
        >= 0; ValueError otherwise)."""
        if not isinstance(ttl, (int, float)) or not 0 <= ttl < float("inf"):
            raise ValueError(f"ttl must be a finite number of seconds >= 0, got {ttl!r}")
        expiry = int(self.now() + ttl)
        return {
            "owner": owner,
            "expiry": str(expiry),
            "signature": self._signature(owner, file_id, expiry),
        }

    def verify_download(
        self, file_id: str, owner: str, expiry: str, signature: str
    ) -> dict[str, Any] | None:
        """The upload if the link is valid and unexpired, else None."""
        try:
            exp = int(expiry)
        except (TypeError, ValueError):
            return None
        if exp <= self.now():
            return None
        expected = self._signature(owner, file_id, exp).encode()
        if not hmac.compare_digest(expected, (signature or "").encode("utf-8", "replace")):
            return None
        return self.get_upload(owner, file_id)

    # ------------------------------------------------------------------ output files
    def _delivery_token(self, file_id: str) -> str:
        mac = hmac.new(self.key, f"delivery {file_id}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{file_id}-{mac}"

    def store_output(
        self,
        prediction_id: str,
        src: IO[bytes] | bytes,
        filename: str,
        content_type: str | None = None,
    ) -> str:
        """Store an output file; returns its delivery reference (rendered by ``render``)."""
        import io

        stream = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
        sha, md5, size = self._write_blob(stream, None)  # outputs have no size limit
        ctype = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        fid = uuid.uuid4().hex
        self.db.execute(
            "INSERT INTO files (id, kind, owner, name, content_type, size, sha256, md5, metadata, created_at, "
            "expires_at, prediction_id) VALUES (?, 'output', '', ?, ?, ?, ?, ?, '{}', ?, NULL, ?)",
            (fid, filename, ctype, size, sha, md5, self.now(), prediction_id),
        )
        return f"{DELIVERY_PREFIX}{self._delivery_token(fid)}/{filename}"

    def resolve_delivery(self, token: str, filename: str) -> dict[str, Any] | None:
        """The output file behind a delivery URL, if the token is valid and not removed."""
        if "-" not in token:
            return None
        fid = token.rsplit("-", 1)[0]
        if not hmac.compare_digest(
            self._delivery_token(fid).encode(), token.encode("utf-8", "replace")
        ):
            return None
        row = self.db.one("SELECT * FROM files WHERE id = ? AND kind = 'output'", (fid,))
        if row is None or row["deleted"] or row["name"] != filename:
            return None
        return row

    def remove_prediction_outputs(self, prediction_id: str) -> None:
        """Delete the output files of a prediction (data removal)."""
        rows = self.db.query(
            "SELECT * FROM files WHERE prediction_id = ? AND kind = 'output' AND deleted = 0",
            (prediction_id,),
        )
        for row in rows:
            self.db.execute("UPDATE files SET deleted = 1 WHERE id = ?", (row["id"],))
            self._decref(row["sha256"])

    def inline(self, value: Any, max_size: int = 1024 * 1024) -> Any:
        """Replace delivery references with ``data:`` URIs (files up to ``max_size`` bytes)."""
        if isinstance(value, str) and value.startswith(DELIVERY_PREFIX):
            token, _, filename = value[len(DELIVERY_PREFIX) :].partition("/")
            row = self.resolve_delivery(token, filename)
            if row is None or row["size"] > max_size:
                return value
            data = base64.b64encode(self.blob_path(row).read_bytes()).decode()
            return f"data:{row['content_type']};base64,{data}"
        if isinstance(value, list):
            return [self.inline(v, max_size) for v in value]
        if isinstance(value, dict):
            return {k: self.inline(v, max_size) for k, v in value.items()}
        return value

    @staticmethod
    def render(value: Any, origin: str) -> Any:
        """Replace delivery references in an output value with absolute URLs."""
        if isinstance(value, str):
            if value.startswith(DELIVERY_PREFIX):
                return f"{origin}/delivery/{value[len(DELIVERY_PREFIX) :]}"
            return value
        if isinstance(value, list):
            return [FileService.render(v, origin) for v in value]
        if isinstance(value, dict):
            return {k: FileService.render(v, origin) for k, v in value.items()}
        return value

    # ------------------------------------------------------------------ inputs
    def resolve_input_url(self, url: str) -> dict[str, Any] | None:
        """The file row behind a URL served by this server (upload or delivery), if any."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        path = parts.path
        if path.startswith(DELIVERY_PREFIX):
            path = "/delivery/" + url[len(DELIVERY_PREFIX) :]
        segs = [s for s in path.split("/") if s]
        if len(segs) == 3 and segs[0] == "v1" and segs[1] == "files":
            row = self.db.one("SELECT * FROM files WHERE id = ? AND kind = 'upload'", (segs[2],))
            return self._active(row)
        if len(segs) == 3 and segs[0] == "delivery":
            return self.resolve_delivery(segs[1], segs[2])
        return None

    def materialize(self, row: dict[str, Any], directory: Path) -> Path:
        """Copy a file's bytes to ``directory/<name>`` (for callables that take a Path)."""
        directory.mkdir(parents=True, exist_ok=True)
        name = os.path.basename(row["name"]) or "file"
        target = directory / name
        i = 1
        while target.exists():
            target = directory / f"{i}-{name}"
            i += 1
        shutil.copyfile(self.blob_path(row), target)
        return target

    # ------------------------------------------------------------------ maintenance
    def sweep(self) -> int:
        """Remove the bytes of expired uploads; returns how many were removed."""
        rows = self.db.query(
            "SELECT * FROM files WHERE kind = 'upload' AND deleted = 0 AND expires_at IS NOT NULL AND expires_at <= ?",
            (self.now(),),
        )
        for row in rows:
            self.db.execute("UPDATE files SET deleted = 1 WHERE id = ?", (row["id"],))
            self._decref(row["sha256"])
        return len(rows)
