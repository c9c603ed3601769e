"""Uploaded files: the :class:`File` resource and the ``files`` namespace (docs/files.md).

Uploads are ``multipart/form-data`` bodies streamed from their source in chunks (never read whole
into memory). A seekable source gives a replayable body (:meth:`_UploadStream.rewind`), so the
retry transport can re-send an upload answered with 429; async uploads read the chunks in a worker
thread so the event loop is never blocked by disk I/O.
"""

from __future__ import annotations

import asyncio
import io
import json
import mimetypes
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import quote, urlencode

import httpx
from typing_extensions import NotRequired

from ._http import (
    UPLOAD_MIN_READ,
    Operation,
    check_response,
    json_object_of,
    returns_true,
    with_min_read,
)
from .exceptions import wrap_transport_error
from .resource import Namespace, Resource

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .helpers import FileOutput
    from .pagination import PageList

__all__ = ["File", "FileEncodingStrategy", "Files"]

FileEncodingStrategy = Literal["base64", "url"]
"""How ``run()``/``predictions.create`` send file inputs: uploaded (``"url"``) or inline (``"base64"``)."""

#: Bytes read from the source per chunk of an upload body: small enough that the allocator
#: serves each read from memory it keeps (measured: 1 MiB reads, each a fresh mapping, cost
#: 10% more CPU and 1.9 MiB of peak memory; ``benchmarks/scenarios/upload.py``).
UPLOAD_CHUNK = 64 * 1024
#: The same for async uploads, whose reads each go to a worker thread and back: larger, so
#: that the hand-off is paid per MiB (64 KiB reads made them 8x slower).
ASYNC_UPLOAD_CHUNK = 1024 * 1024
_CREATE_PARAMS = frozenset({"filename", "content_type", "metadata"})
_EXTRAS = frozenset({"extra_headers", "extra_query", "extra_body"})


class File(Resource):
    """A file uploaded to Replicate (``files.create``); pass ``file.urls["get"]`` as a model input."""

    id: str | None = None
    """The file id."""

    name: str | None = None
    """The file name given at upload."""

    content_type: str | None = None
    """The content type given (or guessed) at upload."""

    size: int | None = None
    """The size in bytes."""

    etag: str | None = None
    """The entity tag of the content."""

    checksums: dict[str, str] | None = None
    """Checksums of the content (``sha256``, possibly ``md5``)."""

    metadata: dict[str, Any] | None = None
    """The metadata given at upload."""

    created_at: str | None = None
    """When the file was created (ISO 8601)."""

    expires_at: str | None = None
    """When the file expires (ISO 8601)."""

    urls: dict[str, str] | None = None
    """URLs of the file; ``get`` serves its content."""


# --------------------------------------------------------------------------------------------
# The streamed multipart body
# --------------------------------------------------------------------------------------------


def _quote_param(value: str) -> bytes:
    """A multipart header parameter value (HTML5 form encoding: escape quotes and newlines)."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    )
    return escaped.encode("utf-8")


def _seekable(source: Any) -> bool:
    try:
        return bool(source.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _remaining_size(source: Any) -> int | None:
    """The byte size of a binary seekable source from offset 0, or ``None`` when unknown."""
    if isinstance(source, io.TextIOBase):
        return None
    if _seekable(source):
        try:
            position = source.tell()
            end = source.seek(0, os.SEEK_END)
            source.seek(position)
            return int(end)
        except (OSError, ValueError, TypeError):
            return None
    return None


class _UploadStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A ``multipart/form-data`` body: the form fields, then the file part read in chunks.

    Implements the ``rewind()`` protocol of :class:`replicate._retry.ReplayableStream`;
    ``replayable`` is false for sources that cannot seek back to their start (they are sent once).
    """

    def __init__(
        self,
        source: Any,
        *,
        filename: str,
        content_type: str,
        fields: list[tuple[str, str]],
    ) -> None:
        self.boundary = os.urandom(16).hex()
        boundary = self.boundary.encode("ascii")
        head = bytearray()
        for name, value in fields:
            head += b"--" + boundary + b"\r\n"
            head += b'Content-Disposition: form-data; name="' + _quote_param(name) + b'"\r\n\r\n'
            head += value.encode("utf-8") + b"\r\n"
        head += b"--" + boundary + b"\r\n"
        head += b'Content-Disposition: form-data; name="content"; filename="'
        head += _quote_param(filename) + b'"\r\n'
        head += b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
        self._head = bytes(head)
        self._tail = b"\r\n--" + boundary + b"--\r\n"
        self._source = source
        self._memory: bytes | None = None
        if isinstance(source, bytes | bytearray | memoryview):
            self._memory = bytes(source)
            size: int | None = len(self._memory)
            self.replayable = True
        else:
            self.replayable = _seekable(source)
            size = _remaining_size(source) if self.replayable else None
        self.content_length = None if size is None else len(self._head) + size + len(self._tail)
        self._started = False

    @property
    def headers(self) -> dict[str, str]:
        """The entity headers of this body."""
        headers = {"Content-Type": f"multipart/form-data; boundary={self.boundary}"}
        if self.content_length is not None:
            headers["Content-Length"] = str(self.content_length)
        else:
            headers["Transfer-Encoding"] = "chunked"
        return headers

    def rewind(self) -> None:
        """Go back to the start of the body (seeks the source to offset 0)."""
        if self._memory is None:
            if not self.replayable:
                raise OSError("the upload source cannot be rewound")
            self._source.seek(0)
        self._started = False

    def _begin(self) -> None:
        if self._started:
            # httpx iterates a body once per send; a second pass without rewind() is a bug.
            self.rewind()
        self._started = True

    def __iter__(self) -> Iterator[bytes]:
        self._begin()
        yield self._head
        if self._memory is not None:
            if self._memory:
                yield self._memory
        else:
            read = self._source.read
            while True:
                chunk = read(UPLOAD_CHUNK)
                if not chunk:
                    break
                yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        yield self._tail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._begin()
        yield self._head
        if self._memory is not None:
            if self._memory:
                yield self._memory
        else:
            loop = asyncio.get_running_loop()
            read = self._source.read
            while True:
                chunk = await loop.run_in_executor(None, read, ASYNC_UPLOAD_CHUNK)
                if not chunk:
                    break
                yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        yield self._tail

    def close(self) -> None:
        """Nothing to release: the namespace closes files it opened itself."""

    async def aclose(self) -> None:
        """Nothing to release: the namespace closes files it opened itself."""


class _Upload:
    """A prepared upload: the body stream, whether we opened the source, and the operation."""

    def __init__(self, stream: _UploadStream, opened: Any, op: Operation[File]) -> None:
        self.stream = stream
        self.opened = opened
        self.op = op

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()


def _unsupported() -> ValueError:
    return ValueError("Unsupported file type. Must be a file path or file-like object.")


# --------------------------------------------------------------------------------------------
# The namespace
# --------------------------------------------------------------------------------------------


class Files(Namespace):
    """The ``files`` namespace: upload, inspect, list, delete and download files.

    Every method also accepts the keyword-only escape hatches ``extra_headers``, ``extra_query``
    and ``extra_body`` (for ``create`` the ``extra_body`` items are sent as extra form fields).
    """

    class CreateFileParams(TypedDict):
        """The keyword parameters of :meth:`create` (1.0.x name)."""

        filename: NotRequired[str]
        content_type: NotRequired[str]
        metadata: NotRequired[dict[str, Any]]

    # ---------------------------------------------------------------- create

    def create(self, file: Any, **params: Any) -> File:
        """Upload a file (``POST /v1/files``, ``multipart/form-data``).

        ``file`` is a path (``str`` or ``os.PathLike``, opened and closed here), a file object
        (binary or text; text is sent as UTF-8), or ``bytes``/``bytearray``/``memoryview``.
        ``params``: ``filename``, ``content_type``, ``metadata`` (a JSON-serialisable dict).
        The body is streamed in chunks and re-sent from the start if the API answers 429.
        """
        upload = self._prepare(file, params)
        try:
            api = self._client
            http = api._get_sync_client()
            request = self._build(http, upload)
            try:
                response = http.send(request)
            except httpx.RequestError as exc:
                raise wrap_transport_error(exc) from exc
            return upload.op.parse(check_response(response))
        finally:
            upload.close()

    async def async_create(self, file: Any, **params: Any) -> File:
        """Async twin of :meth:`create` (file chunks are read in a worker thread)."""
        upload = self._prepare(file, params)
        try:
            api = self._client
            http = api._get_async_client()
            request = self._build(http, upload)
            try:
                response = await http.send(request)
            except httpx.RequestError as exc:
                raise wrap_transport_error(exc) from exc
            return upload.op.parse(check_response(response))
        finally:
            upload.close()

    @staticmethod
    def _build(http: httpx.Client | httpx.AsyncClient, upload: _Upload) -> httpx.Request:
        op = upload.op
        # Build with the client (base URL, default headers, timeout), then swap in the streamed
        # body: httpx would wrap a stream passed as ``content`` in a non-replayable iterator.
        built = http.build_request(op.method, op.path, **op.request_kwargs())
        headers = built.headers.copy()
        for name in ("Content-Length", "Transfer-Encoding", "Content-Type"):
            headers.pop(name, None)
        headers.update(upload.stream.headers)
        return httpx.Request(
            built.method,
            built.url,
            headers=headers,
            stream=upload.stream,
            extensions=built.extensions,
        )

    def _prepare(self, file: Any, params: dict[str, Any]) -> _Upload:
        unknown = set(params) - _CREATE_PARAMS - _EXTRAS
        if unknown:
            raise TypeError(
                f"files.create() got unexpected keyword argument(s): {', '.join(sorted(unknown))}"
            )
        filename = params.get("filename")
        content_type = params.get("content_type")
        metadata = params.get("metadata")
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"filename must be a string, not {type(filename).__name__}")
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"content_type must be a string, not {type(content_type).__name__}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        extra_body = params.get("extra_body") or {}
        if not isinstance(extra_body, Mapping):
            raise TypeError("extra_body must be a mapping")

        opened: Any = None
        source: Any
        default_name: str | None = None
        if isinstance(file, str | os.PathLike):
            path = os.fspath(file)
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            source = opened = open(path, "rb")  # noqa: SIM115 - closed by _Upload.close()
            default_name = os.path.basename(path)
        elif isinstance(file, bytes | bytearray | memoryview):
            source = file
        elif isinstance(file, io.IOBase) or callable(getattr(file, "read", None)):
            source = file
            name = getattr(file, "name", None)
            if isinstance(name, bytes):
                name = os.fsdecode(name)
            if isinstance(name, str) and name:
                default_name = os.path.basename(name)
            if _seekable(file):
                file.seek(0)
        else:
            raise _unsupported()

        try:
            name = filename or default_name or "file"
            ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
            fields: list[tuple[str, str]] = []
            if metadata:
                fields.append(("metadata", json.dumps(dict(metadata))))
            for key, value in extra_body.items():
                fields.append((str(key), value if isinstance(value, str) else json.dumps(value)))
            stream = _UploadStream(source, filename=name, content_type=ctype, fields=fields)
            api = self._client
            op: Operation[File] = Operation(
                "POST",
                "/v1/files",
                parse=lambda response: File._from_api(json_object_of(response), api),
                timeout=with_min_read(api._config.timeout, UPLOAD_MIN_READ),
            ).with_extras(params.get("extra_headers"), params.get("extra_query"))
        except BaseException:
            if opened is not None:
                opened.close()
            raise
        return _Upload(stream, opened, op)

    # ---------------------------------------------------------------- get / list / delete

    def get(self, file_id: str, **options: Unpack[RequestOptions]) -> File:
        """Get a file's metadata (``GET /v1/files/{file_id}``)."""
        return self._call(self._get(file_id).with_options(options))

    async def async_get(self, file_id: str, **options: Unpack[RequestOptions]) -> File:
        """Async twin of :meth:`get`."""
        return await self._acall(self._get(file_id).with_options(options))

    def _get(self, file_id: str) -> Operation[File]:
        api = self._client
        return Operation(
            "GET",
            f"/v1/files/{_file_id(file_id)}",
            parse=lambda response: File._from_api(json_object_of(response), api),
        )

    def list(self, cursor: Any = ..., **options: Unpack[RequestOptions]) -> PageList[File]:
        """A page of files (``GET /v1/files``): a ``list`` of :class:`File`, as in 1.0.x.

        The list also carries ``next`` / ``previous``: pass ``page.next`` as ``cursor`` for the
        next page, or use ``replicate.paginate(files.list)``.
        """
        return self._call(self._list(cursor).with_options(options))

    async def async_list(
        self, cursor: Any = ..., **options: Unpack[RequestOptions]
    ) -> PageList[File]:
        """Async twin of :meth:`list`."""
        return await self._acall(self._list(cursor).with_options(options))

    def _list(self, cursor: Any) -> Operation[PageList[File]]:
        from .pagination import _cursor_url, _list_parser

        target = _cursor_url(self._client, cursor)
        return Operation("GET", target or "/v1/files", parse=_list_parser(File, self._client))

    def delete(self, file_id: str, **options: Unpack[RequestOptions]) -> bool:
        """Delete a file (``DELETE /v1/files/{file_id}``); ``True`` on success."""
        return self._call(self._delete(file_id).with_options(options))

    async def async_delete(self, file_id: str, **options: Unpack[RequestOptions]) -> bool:
        """Async twin of :meth:`delete`."""
        return await self._acall(self._delete(file_id).with_options(options))

    def _delete(self, file_id: str) -> Operation[bool]:
        return Operation("DELETE", f"/v1/files/{_file_id(file_id)}", parse=returns_true)

    # ---------------------------------------------------------------- download

    def download(
        self, file_id: str, *, owner: str, expiry: int | str, signature: str
    ) -> FileOutput:
        """A lazy :class:`~replicate.helpers.FileOutput` for a signed file download URL.

        ``GET /v1/files/{file_id}/download?owner=…&expiry=…&signature=…`` is requested only when
        the content is read, iterated or saved.
        """
        from .helpers import FileOutput

        for name, value in (("owner", owner), ("signature", signature)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        if isinstance(expiry, bool) or not isinstance(expiry, int | str) or expiry == "":
            raise ValueError("expiry must be a unix timestamp (int or str)")
        query = urlencode({"owner": owner, "expiry": str(expiry), "signature": signature})
        url = f"{self._client.base_url}/v1/files/{_file_id(file_id)}/download?{query}"
        return FileOutput(url, self._client)

    async def async_download(
        self, file_id: str, *, owner: str, expiry: int | str, signature: str
    ) -> FileOutput:
        """Async twin of :meth:`download` (no I/O either: read with ``aread()``/``asave()``)."""
        return self.download(file_id, owner=owner, expiry=expiry, signature=signature)


def _file_id(file_id: Any) -> str:
    if not isinstance(file_id, str) or not file_id:
        raise ValueError("file_id must be a non-empty string")
    return quote(file_id, safe="")
